// Worker: the donor side of peergrid. It grants credits to work streams,
// runs their tasks on its own arena (kernels in process, exec tasks as
// sandboxed child processes), fetches and caches input blobs, and reports
// what it donates.
//
// Entry points:
//  * Remote origins reach it through WorkService (worker/work_service.h),
//    the gRPC `Work.Open` stream, which is a thin adapter over WorkSession.
//  * The origin on the same node calls Worker::OpenSession() directly: the
//    same credit protocol as a stream, without a network hop.
//
// The credit protocol (see docs/worker.md): a session states how many slots
// it could fill (its demand); the worker grants credits, shared fairly
// among sessions (max-min: the session holding fewest slots gets the next
// free one); a task consumes `cpus` credits; a task sent without enough
// credits is refused with a REJECTED result and never runs; each result
// returns its slots, which are granted again (to the same session or
// another). Running tasks never hold more slots than the worker donates.
//
// Thread safety: Worker and WorkSession methods are thread-safe.
#ifndef PEERGRID_WORKER_WORKER_H_
#define PEERGRID_WORKER_WORKER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "proto/work.pb.h"
#include "worker/options.h"

namespace prometheus {
class Registry;
}

namespace peergrid::worker {

class KernelRegistry;

// Where a session's results and credits go. Called from worker threads
// (arena, process reactor, blob fetch completions, or the thread calling a
// WorkSession method); possibly concurrently; never while the worker holds
// a lock. Must not block, and must not call WorkSession::Close().
class WorkSink {
 public:
  virtual ~WorkSink() = default;
  virtual void OnCredits(const v1::CreditGrant& grant) = 0;
  virtual void OnResult(v1::WorkResult result) = 0;
};

// Fetches blobs a session's tasks name from their origin.
class BlobSource {
 public:
  virtual ~BlobSource() = default;
  // Writes the blob's content to the new file `path`, then calls `done`
  // once, from any thread, with the bytes written or an error. Must not
  // block the caller.
  virtual void Fetch(
      const std::string& sha256, const std::string& path,
      absl::AnyInvocable<void(absl::StatusOr<uint64_t>)> done) = 0;
  // Ends fetches in progress (their `done` reports an error). Called when
  // the session closes.
  virtual void CancelAll() {}
};

// One origin's stream of work.
class WorkSession {
 public:
  virtual ~WorkSession() = default;
  // The slots the origin could fill at once (running here + ready to send).
  virtual void SetDemand(uint32_t slots_wanted) = 0;
  // Accepts each task against credits, or refuses it with a REJECTED result
  // (no credit, unknown kernel, kind not accepted, bad spec...).
  virtual void Submit(v1::Bundle bundle) = 0;
  // Cancels tasks (CANCELLED results follow for those not yet finished).
  virtual void Cancel(const v1::CancelWork& cancel) = 0;
  // Cancels all of the session's tasks; returns within a second at most
  // (it waits only for sink calls in progress). No sink call follows.
  // Also done by the destructor.
  virtual void Close() = 0;
};

class Worker {
 public:
  // Validates options, opens the blob cache, loads plugins. `registry` may
  // be null (metrics then go to a private registry); it must outlive the
  // Worker.
  static absl::StatusOr<std::unique_ptr<Worker>> Create(
      WorkerOptions options, prometheus::Registry* registry);
  // Cancels every task and waits for them to end.
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Opens a session. `sink` must outlive the session; `blobs` may be null
  // (tasks naming uncached blobs are then refused). Every session must be
  // closed or destroyed before the Worker is.
  std::unique_ptr<WorkSession> OpenSession(const v1::OpenWork& open,
                                           WorkSink& sink,
                                           std::unique_ptr<BlobSource> blobs);

  // For the gossip advertisement: slots donated now, slots held by
  // running tasks, and donated minus busy (never negative).
  int cores_donated() const;
  int cores_busy() const;
  int cores_free() const;
  int max_cores() const;
  // Called whenever cores donated or busy, or tasks running or queued, may
  // have changed (when tasks arrive or finish, or the donation changes; not
  // when a queued task starts), on the thread that changed them, on hot
  // paths: the listener must be cheap, must not block and must not call
  // SetLoadListener. Replaces any previous listener; once
  // SetLoadListener(nullptr) returns, no call of the old one is running.
  void SetLoadListener(std::function<void()> listener);

  // Cancels every task of every session.
  void CancelAll();
  // Stops granting credits (for a graceful leave); running tasks finish.
  void StopGranting();

  KernelRegistry& kernels();
  // Counters for tests and status.
  struct Stats {
    int donated = 0, busy = 0, running = 0, queued = 0, peak_running = 0,
        peak_busy = 0, sessions = 0;
    bool suspended = false;
  };
  Stats stats() const;
  void ResetPeak();

  // Test hook: apply a donation as idle donation would.
  void SetDonatedForTest(int cores, bool suspend);

  class Impl;

 private:
  explicit Worker(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace peergrid::worker

#endif  // PEERGRID_WORKER_WORKER_H_
