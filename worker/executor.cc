#include "worker/executor.h"

#include <algorithm>
#include <thread>

#include "oneapi/tbb/global_control.h"
#include "oneapi/tbb/task_arena.h"

namespace peergrid::worker {

struct Executor::Arena {
  explicit Arena(int slots) {
    // An arena wider than the machine is capped by TBB unless allowed.
    const int hw = static_cast<int>(std::thread::hardware_concurrency());
    if (slots + 1 > hw) {
      parallelism = std::make_unique<tbb::global_control>(
          tbb::global_control::max_allowed_parallelism,
          static_cast<size_t>(slots + 1));
    }
    arena = std::make_unique<tbb::task_arena>(slots, 0);
    arena->initialize();
  }
  std::unique_ptr<tbb::global_control> parallelism;
  std::unique_ptr<tbb::task_arena> arena;
};

Slots& Slots::operator=(Slots&& other) noexcept {
  if (this != &other) {
    Release();
    executor_ = other.executor_;
    cpus_ = other.cpus_;
    other.executor_ = nullptr;
    other.cpus_ = 0;
  }
  return *this;
}

void Slots::Release() {
  if (executor_ != nullptr) {
    executor_->Release(cpus_);
    executor_ = nullptr;
    cpus_ = 0;
  }
}

Executor::Executor(int max_slots, Poster poster)
    : max_slots_(std::max(1, max_slots)),
      poster_(std::move(poster)),
      arena_(std::make_unique<Arena>(max_slots_)),
      limit_(max_slots_) {}

Executor::~Executor() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](Executor* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(e->mu_) {
        return e->queue_.empty() && e->runners_ == 0 && e->used_ == 0;
      },
      this));
}

void Executor::Submit(int cpus, TaskFn fn, bool posted) {
  Item item;
  item.cpus = std::clamp(cpus, 1, max_slots_);
  item.posted = posted && poster_ != nullptr;
  item.fn = std::move(fn);
  Starts starts;
  {
    absl::MutexLock lock(&mu_);
    queue_.push_back(std::move(item));
    starts = CollectLocked();
  }
  Launch(std::move(starts));
}

void Executor::SetLimit(int slots) {
  Starts starts;
  {
    absl::MutexLock lock(&mu_);
    limit_ = std::clamp(slots, 0, max_slots_);
    starts = CollectLocked();
  }
  Launch(std::move(starts));
}

Executor::Stats Executor::stats() const {
  absl::MutexLock lock(&mu_);
  Stats s;
  s.limit = limit_;
  s.used = used_;
  s.running = running_;
  s.queued = static_cast<int>(queue_.size());
  s.peak_used = peak_used_;
  s.peak_running = peak_running_;
  return s;
}

void Executor::ResetPeak() {
  absl::MutexLock lock(&mu_);
  peak_used_ = used_;
  peak_running_ = running_;
}

void Executor::TakeLocked(const Item& item) {
  used_ += item.cpus;
  ++running_;
  peak_used_ = std::max(peak_used_, used_);
  peak_running_ = std::max(peak_running_, running_);
}

Executor::Starts Executor::CollectLocked() {
  Starts s;
  while (!queue_.empty() && queue_.front().posted &&
         used_ + queue_.front().cpus <= limit_) {
    TakeLocked(queue_.front());
    s.posted.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  // An arena runner starts only if the head task fits; an idle runner
  // exits, so `runners_` counts threads busy or about to look.
  if (queue_.empty() || used_ + queue_.front().cpus > limit_) return s;
  const int free_threads = max_slots_ - runners_;
  const int startable =
      std::min<int>(static_cast<int>(queue_.size()), limit_ - used_);
  s.runners = std::max(0, std::min(free_threads, startable));
  runners_ += s.runners;
  return s;
}

void Executor::Launch(Starts starts) {
  for (int i = 0; i < starts.runners; ++i) {
    arena_->arena->enqueue([this] { RunLoop(); });
  }
  for (Item& item : starts.posted) RunPosted(std::move(item));
}

void Executor::RunPosted(Item item) {
  poster_([this, item = std::move(item)]() mutable {
    SlotLease lease(this, item.cpus);
    item.fn(lease);
    item.fn = nullptr;
    if (!lease.detached_) Release(item.cpus);
  });
}

void Executor::Release(int cpus) {
  Starts starts;
  {
    absl::MutexLock lock(&mu_);
    used_ -= cpus;
    --running_;
    starts = CollectLocked();
  }
  Launch(std::move(starts));
}

void Executor::RunLoop() {
  int release = 0;  // Slots of the previous task to give back.
  for (;;) {
    Item item;
    Starts starts;
    {
      absl::MutexLock lock(&mu_);
      if (release > 0) {
        used_ -= release;
        --running_;
        release = 0;
      }
      if (queue_.empty() || used_ + queue_.front().cpus > limit_) {
        --runners_;
        return;
      }
      if (queue_.front().posted) {
        starts = CollectLocked();
      } else {
        item = std::move(queue_.front());
        queue_.pop_front();
        TakeLocked(item);
        starts = CollectLocked();
      }
    }
    Launch(std::move(starts));
    if (!item.fn) continue;
    SlotLease lease(this, item.cpus);
    item.fn(lease);
    item.fn = nullptr;
    if (!lease.detached_) release = item.cpus;
  }
}

}  // namespace peergrid::worker
