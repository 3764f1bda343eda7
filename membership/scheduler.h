// Time and timers for the membership protocol.
//
// The protocol core reads the time and arms timers only through this
// interface, so that tests run hundreds of nodes on one simulated clock
// (tests/membership/sim.h) and production runs them on one real thread.
#ifndef PEERGRID_MEMBERSHIP_SCHEDULER_H_
#define PEERGRID_MEMBERSHIP_SCHEDULER_H_

#include <functional>
#include <memory>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace peergrid {

class Scheduler {
 public:
  virtual ~Scheduler() = default;

  // The current time. Thread-safe.
  virtual absl::Time Now() = 0;

  // Runs `fn` once, on the scheduler's own thread, no earlier than `delay`
  // from now. Callbacks run one at a time in time order. Thread-safe; may be
  // called from a callback. After Shutdown() the callback is dropped.
  virtual void RunAfter(absl::Duration delay, std::function<void()> fn) = 0;

  // Stops running callbacks: on return none is running and none will run.
  // Idempotent. Must not be called from a callback of this scheduler.
  virtual void Shutdown() = 0;
};

// A scheduler with one thread of its own and the real clock (absl::Now()).
// `name` names the thread. The destructor calls Shutdown().
std::unique_ptr<Scheduler> NewThreadScheduler(absl::string_view name);

}  // namespace peergrid

#endif  // PEERGRID_MEMBERSHIP_SCHEDULER_H_
