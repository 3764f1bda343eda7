#include "node/advertiser.h"

#include <utility>

#include "absl/time/clock.h"

namespace peergrid {
namespace {

bool PlacementFieldsDiffer(const v1::Advertisement& a,
                           const v1::Advertisement& b) {
  return a.cores_donated() != b.cores_donated() ||
         a.cores_free() != b.cores_free() ||
         a.tasks_running() != b.tasks_running() ||
         a.tasks_queued() != b.tasks_queued();
}

}  // namespace

Advertiser::Advertiser(BuildFn build, PublishFn publish,
                       absl::Duration interval, absl::Duration refresh)
    : build_(std::move(build)),
      publish_(std::move(publish)),
      interval_(interval),
      refresh_(refresh) {
  thread_ = std::thread([this] { Run(); });
}

Advertiser::~Advertiser() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void Advertiser::Run() {
  v1::Advertisement last = build_();
  publish_(last);
  absl::Time last_published = absl::Now();
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), interval_);
      if (stopping_) return;
    }
    v1::Advertisement current = build_();
    const absl::Time now = absl::Now();
    if (PlacementFieldsDiffer(current, last) ||
        now - last_published >= refresh_) {
      last = current;
      last_published = now;
      publish_(std::move(current));
    }
  }
}

}  // namespace peergrid
