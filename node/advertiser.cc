#include "node/advertiser.h"

#include <utility>

#include "absl/time/clock.h"

namespace peergrid {
Advertiser::Advertiser(FiguresFn figures, BuildFn build, PublishFn publish,
                       absl::Duration interval, absl::Duration refresh)
    : figures_(std::move(figures)),
      build_(std::move(build)),
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
  Figures last = figures_();
  publish_(build_());
  absl::Time last_published = absl::Now();
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), interval_);
      if (stopping_) return;
    }
    const Figures current = figures_();
    const absl::Time now = absl::Now();
    if (!(current == last) || now - last_published >= refresh_) {
      last = current;
      last_published = now;
      publish_(build_());
    }
  }
}

}  // namespace peergrid
