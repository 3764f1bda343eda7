// WorkerOptions: what a worker donates and how it runs tasks, each field a
// `peergrid node` flag, and the parsers of the flags that are words.
#ifndef PEERGRID_WORKER_OPTIONS_H_
#define PEERGRID_WORKER_OPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "worker/exec_runner.h"

namespace peergrid::worker {

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

}  // namespace peergrid::worker

#endif  // PEERGRID_WORKER_OPTIONS_H_
