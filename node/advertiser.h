// Keeps this node's gossip advertisement current.
//
// When poked (the worker's load changed) it reads the figures placement
// depends on (cheap: cores donated and free, tasks running and queued) and
// publishes the whole advertisement if they changed. While they keep
// changing it polls them every `interval` (some changes, such as a queued
// task starting, come without a poke) and coalesces pokes; once they are
// still it sleeps until the next poke. Every `refresh` it publishes in any
// case, with fresh load and free memory (read from /proc): those drift all
// the time and gossiping each wobble would flood the grid. The default, 15 s,
// is a quarter of the 1-minute load average's own time constant; every
// refresh that changes something reaches every member, and at 5 s the
// drift of 64 nodes sharing one machine cost each of them about a tenth
// of its idle CPU. An idle node thus wakes this thread once per `refresh`.
// The membership rate-limits publication further.
//
// Threading: owns one thread, which calls `figures`, `build` and `publish`;
// all three must be thread-safe and must not block for long. Poke() is
// thread-safe and never blocks for long. The destructor stops the thread.
#ifndef PEERGRID_NODE_ADVERTISER_H_
#define PEERGRID_NODE_ADVERTISER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/advertisement.pb.h"

namespace peergrid {

class Advertiser {
 public:
  // Cores donated and free, tasks running and queued, in any encoding that
  // compares equal when they are.
  struct Figures {
    double cores_donated = 0;
    double cores_free = 0;
    uint32_t tasks_running = 0;
    uint32_t tasks_queued = 0;
    bool operator==(const Figures& other) const {
      return cores_donated == other.cores_donated &&
             cores_free == other.cores_free &&
             tasks_running == other.tasks_running &&
             tasks_queued == other.tasks_queued;
    }
  };
  using FiguresFn = std::function<Figures()>;
  using BuildFn = std::function<v1::Advertisement()>;
  using PublishFn = std::function<void(v1::Advertisement)>;

  // Publishes once at once, then runs until destroyed.
  Advertiser(FiguresFn figures, BuildFn build, PublishFn publish,
             absl::Duration interval = absl::Milliseconds(50),
             absl::Duration refresh = absl::Seconds(15));
  ~Advertiser();
  Advertiser(const Advertiser&) = delete;
  Advertiser& operator=(const Advertiser&) = delete;

  // The figures may have changed: read them soon. Cheap when called often
  // (pokes coalesce until the thread reads the figures).
  void Poke();

 private:
  void Run();

  const FiguresFn figures_;
  const BuildFn build_;
  const PublishFn publish_;
  const absl::Duration interval_;
  const absl::Duration refresh_;
  // Set by Poke(), cleared by the thread before it reads the figures; only
  // the poke that sets it takes mu_, to wake the thread.
  std::atomic<bool> poked_{false};
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace peergrid

#endif  // PEERGRID_NODE_ADVERTISER_H_
