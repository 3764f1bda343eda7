#include "membership/scheduler.h"

#include <algorithm>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/thread_name.h"

namespace peergrid {
namespace {

class ThreadScheduler final : public Scheduler {
 public:
  explicit ThreadScheduler(absl::string_view name)
      : name_(name), thread_([this] {
          SetCurrentThreadName(name_);
          Loop();
        }) {}
  ~ThreadScheduler() override { Shutdown(); }

  absl::Time Now() override { return absl::Now(); }

  void RunAfter(absl::Duration delay, std::function<void()> fn) override {
    absl::MutexLock lock(&mu_);
    if (shutdown_) return;
    const absl::Time due = absl::Now() + delay;
    // The loop sleeps until the earliest timer: only a new earliest one
    // needs to wake it (a wake costs more than most timers' work).
    if (timers_.empty() || due < timers_.front().due) wakeup_ = true;
    timers_.push_back({due, next_sequence_++, std::move(fn)});
    std::push_heap(timers_.begin(), timers_.end(), Later);
  }

  void Shutdown() override {
    {
      absl::MutexLock lock(&mu_);
      if (shutdown_) return;
      shutdown_ = true;
    }
    thread_.join();
    absl::MutexLock lock(&mu_);
    timers_.clear();
  }

 private:
  struct Timer {
    absl::Time due;
    uint64_t sequence;
    std::function<void()> fn;
  };
  static bool Later(const Timer& a, const Timer& b) {
    return a.due != b.due ? a.due > b.due : a.sequence > b.sequence;
  }

  void Loop() {
    while (true) {
      std::function<void()> fn;
      {
        absl::MutexLock lock(&mu_);
        while (!shutdown_) {
          absl::Time now = absl::Now();
          if (!timers_.empty() && timers_.front().due <= now) break;
          absl::Time wake =
              timers_.empty() ? absl::InfiniteFuture() : timers_.front().due;
          mu_.AwaitWithDeadline(
              absl::Condition(
                  +[](ThreadScheduler* self) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                    return self->shutdown_ || self->wakeup_;
                  },
                  this),
              wake);
          wakeup_ = false;
        }
        if (shutdown_) return;
        std::pop_heap(timers_.begin(), timers_.end(), Later);
        fn = std::move(timers_.back().fn);
        timers_.pop_back();
      }
      fn();
    }
  }

  const std::string name_;
  absl::Mutex mu_;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  bool wakeup_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Timer> timers_ ABSL_GUARDED_BY(mu_);
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<Scheduler> NewThreadScheduler(absl::string_view name) {
  return std::make_unique<ThreadScheduler>(name);
}

}  // namespace peergrid
