// A fixed set of threads running posted functions in FIFO order. Used to
// start exec tasks (see Executor's poster). Thread-safe.
#ifndef PEERGRID_WORKER_THREAD_POOL_H_
#define PEERGRID_WORKER_THREAD_POOL_H_

#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/thread_name.h"

namespace peergrid::worker {

class ThreadPool {
 public:
  // `name` names the threads (see common/thread_name.h).
  ThreadPool(int threads, absl::string_view name) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this, name = std::string(name)] {
        SetCurrentThreadName(name);
        Loop();
      });
    }
  }
  // Runs what is already posted, then joins.
  ~ThreadPool() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    for (auto& t : threads_) t.join();
  }
  void Post(absl::AnyInvocable<void()> fn) {
    absl::MutexLock lock(&mu_);
    queue_.push_back(std::move(fn));
  }

 private:
  void Loop() {
    for (;;) {
      absl::AnyInvocable<void()> fn;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stop_ || !queue_.empty();
        };
        mu_.Await(absl::Condition(&ready));
        if (queue_.empty()) return;
        fn = std::move(queue_.front());
        queue_.pop_front();
      }
      fn();
    }
  }

  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<absl::AnyInvocable<void()>> queue_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

}  // namespace peergrid::worker

#endif  // PEERGRID_WORKER_THREAD_POOL_H_
