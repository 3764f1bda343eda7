// Executor: runs tasks on a oneTBB arena sized to the donated cores, each
// task holding `cpus` slots from the moment it starts until it releases
// them. The number of slots in use never exceeds the current limit.
//
// Tasks start in FIFO order (a task asking for more slots than are free
// waits, and so do the tasks behind it). A task function runs on an arena
// thread, or, if submitted with `posted` and the Executor has a poster, is
// handed to the poster (the worker's exec starter threads: a spawn blocks
// its thread until the child execs, and waking TBB workers for it would
// make idle workers spin on a machine the children need). If it returns
// without detaching its lease, its slots are released on return. Tasks
// that wait for something outside the process (a child process) call
// `lease.Detach()` and release the returned Slots later from any thread,
// so that no thread blocks while the slots stay held.
//
// Thread safety: all methods are thread-safe. The arena belongs to the
// Executor alone; nothing else runs on it.
#ifndef PEERGRID_WORKER_EXECUTOR_H_
#define PEERGRID_WORKER_EXECUTOR_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace peergrid::worker {

class Executor;

// Slots held by a started task, released on destruction or Release().
class Slots {
 public:
  Slots() = default;
  Slots(Slots&& other) noexcept { *this = std::move(other); }
  Slots& operator=(Slots&& other) noexcept;
  ~Slots() { Release(); }
  void Release();
  int cpus() const { return cpus_; }

 private:
  friend class Executor;
  friend class SlotLease;
  Slots(Executor* executor, int cpus) : executor_(executor), cpus_(cpus) {}
  Executor* executor_ = nullptr;
  int cpus_ = 0;
};

// Handed to a running task function.
class SlotLease {
 public:
  // Keeps the slots past the function's return.
  Slots Detach() {
    detached_ = true;
    return Slots(executor_, cpus_);
  }
  int cpus() const { return cpus_; }

 private:
  friend class Executor;
  SlotLease(Executor* executor, int cpus) : executor_(executor), cpus_(cpus) {}
  Executor* executor_;
  int cpus_;
  bool detached_ = false;
};

class Executor {
 public:
  using TaskFn = absl::AnyInvocable<void(SlotLease&)>;

  struct Stats {
    int limit = 0;         // Current slot limit.
    int used = 0;          // Slots held.
    int running = 0;       // Tasks started and not yet released.
    int queued = 0;        // Tasks waiting for slots.
    int peak_used = 0;     // Highest `used` since the last ResetPeak().
    int peak_running = 0;  // Highest `running` since the last ResetPeak().
  };

  // Runs a function on another thread (or later on the calling one).
  using Poster = std::function<void(absl::AnyInvocable<void()>)>;

  // `max_slots` >= 1 sizes the arena; the limit starts there.
  explicit Executor(int max_slots, Poster poster = nullptr);
  // Waits until the queue is empty and every slot is released: the owner
  // cancels its tasks first.
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Queues `fn` to run once `cpus` slots are free (cpus is clamped to
  // [1, max_slots]). Never blocks.
  void Submit(int cpus, TaskFn fn, bool posted = false);
  // Changes the limit (clamped to [0, max_slots]). Running tasks keep their
  // slots; no task starts while used + cpus > limit.
  void SetLimit(int slots);
  int max_slots() const { return max_slots_; }
  Stats stats() const;
  void ResetPeak();

 private:
  friend class Slots;
  struct Item {
    int cpus = 1;
    bool posted = false;
    TaskFn fn;
  };
  // What to launch once the lock is dropped.
  struct Starts {
    int runners = 0;
    std::vector<Item> posted;
  };
  void Release(int cpus);
  void RunLoop();
  // Takes the startable posted items off the head of the queue (their
  // slots taken) and counts the arena runners to start.
  Starts CollectLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TakeLocked(const Item& item) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Launch(Starts starts);
  void RunPosted(Item item);

  const int max_slots_;
  const Poster poster_;
  struct Arena;  // The tbb::task_arena (kept out of this header).
  std::unique_ptr<Arena> arena_;

  mutable absl::Mutex mu_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  int limit_ ABSL_GUARDED_BY(mu_);
  int used_ ABSL_GUARDED_BY(mu_) = 0;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  int runners_ ABSL_GUARDED_BY(mu_) = 0;
  int peak_used_ ABSL_GUARDED_BY(mu_) = 0;
  int peak_running_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace peergrid::worker

#endif  // PEERGRID_WORKER_EXECUTOR_H_
