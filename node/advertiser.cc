#include "node/advertiser.h"

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"
#include "common/thread_name.h"

namespace peergrid {
Advertiser::Advertiser(FiguresFn figures, BuildFn build, PublishFn publish,
                       absl::Duration interval, absl::Duration refresh)
    : figures_(std::move(figures)),
      build_(std::move(build)),
      publish_(std::move(publish)),
      interval_(interval),
      refresh_(refresh) {
  thread_ = std::thread([this] {
    SetCurrentThreadName("pg-advertiser");
    Run();
  });
}

Advertiser::~Advertiser() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void Advertiser::Poke() {
  if (poked_.exchange(true, std::memory_order_acq_rel)) return;
  // Taking and releasing the mutex makes the waiting thread re-evaluate its
  // condition, which reads poked_.
  absl::MutexLock lock(&mu_);
}

void Advertiser::Run() {
  Figures last = figures_();
  publish_(build_());
  absl::Time last_published = absl::Now();
  bool settling = false;  // The figures changed at the last look.
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      const auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || poked_.load(std::memory_order_acquire);
      };
      const absl::Duration until_refresh = std::max(
          refresh_ - (absl::Now() - last_published), absl::ZeroDuration());
      if (settling) {
        // Paced: pokes arriving meanwhile are answered at the next look.
        mu_.AwaitWithTimeout(absl::Condition(&stopping_),
                             std::min(interval_, until_refresh));
      } else {
        mu_.AwaitWithTimeout(absl::Condition(&woken), until_refresh);
      }
      if (stopping_) return;
    }
    poked_.store(false, std::memory_order_release);
    const Figures current = figures_();
    const absl::Time now = absl::Now();
    settling = !(current == last);
    if (settling || now - last_published >= refresh_) {
      last = current;
      last_published = now;
      publish_(build_());
    }
  }
}

}  // namespace peergrid
