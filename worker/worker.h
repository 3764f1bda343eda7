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
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proto/work.pb.h"
#include "worker/exec_runner.h"

namespace prometheus {
class Registry;
}

namespace peergrid::worker {

class KernelRegistry;

enum class DonateMode { kAll, kIdle };

// Idle donation tuning (--donate=idle). Defaults suit a desktop.
struct IdleOptions {
  absl::Duration interval = absl::Seconds(1);  // /proc/stat sampling.
  // Foreign load (cores used by other processes) minus this tolerance is
  // rounded up and subtracted from the machine's cores: load below the
  // tolerance (noise, the node itself) costs no core.
  double tolerance_cores = 0.25;
  // Donation grows only after this many consecutive samples allow it
  // (shrinks at once).
  int raise_after_samples = 3;
  // "Owner busy": foreign load >= this fraction of the machine's cores.
  // After `suspend_after_samples` busy samples running exec tasks are
  // stopped (SIGSTOP); after `resume_after_samples` samples below it they
  // continue (SIGCONT).
  double busy_fraction = 0.75;
  int suspend_after_samples = 3;
  int resume_after_samples = 3;
  std::string proc_stat_path = "/proc/stat";
};

// Every field maps to a `peergrid node` flag (suggested name, default).
struct WorkerOptions {
  // --cores=N: slots donated; 0 = every core of the machine.
  int cores = 0;
  // --donate=all|idle.
  DonateMode donate = DonateMode::kAll;
  IdleOptions idle;
  // --data-dir=DIR: exec working directories in DIR/work, blob cache in
  // DIR/blobs. Required.
  std::string data_dir;
  // --name: the node name written into each TaskResult.node.
  std::string node_name;
  // --exec-user=nobody: when the node runs as root, exec tasks run as this
  // user; "" keeps root (not recommended).
  std::string exec_user = "nobody";
  // --sandbox=none|bwrap: run exec tasks under bubblewrap (no network,
  // read-only root, private /tmp).
  bool sandbox_bwrap = false;
  // --accept=exec,kernel: which kinds of task this worker runs.
  bool accept_exec = true;
  bool accept_kernel = true;
  // --exec-stdout-cap-bytes (1 MiB), --exec-stderr-cap-bytes (1 MiB),
  // --exec-output-file-cap-bytes (64 MiB), --exec-memory-bytes (0: none),
  // --exec-open-files (1024), --exec-file-size-bytes (1 GiB),
  // --exec-cpu-seconds (0: timeout x cpus + 1), --exec-processes (256).
  ExecLimits limits;
  // --task-timeout-ms=3600000: wall-clock limit of a task whose own
  // timeout_ms is 0.
  int64_t default_timeout_ms = 3600000;
  // --blob-cache-bytes=1GiB.
  uint64_t blob_cache_bytes = 1ull << 30;
  // --worker-prefetch-per-core=0: credits granted beyond the donated cores,
  // per core, so that tiny tasks queue here instead of waiting a network
  // round trip for each credit. Running tasks still never exceed the
  // donated cores (the executor enforces it); prefetched tasks wait in its
  // FIFO queue. 0 keeps credits == cores (strict late binding).
  int prefetch_per_core = 0;
  // --plugin=PATH.so (repeatable): kernel plugins loaded at start.
  std::vector<std::string> plugins;
};

// Flag parsing helpers for the node: "all" or "idle".
absl::StatusOr<DonateMode> ParseDonateMode(absl::string_view text);
// "exec,kernel", "kernel" or "exec": sets accept_exec and accept_kernel.
absl::Status ParseAcceptKinds(absl::string_view text, WorkerOptions& options);
// "none" (or "") or "bwrap": sets sandbox_bwrap.
absl::Status ParseSandbox(absl::string_view text, WorkerOptions& options);

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
