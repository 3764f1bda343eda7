// Runs one exec task: a private working directory, input files placed,
// a clean environment, limits, optional bubblewrap sandbox, the process
// watched by the ProcessReactor, outputs collected, the directory removed.
//
// Thread safety: Run() may be called from any thread concurrently.
#ifndef PEERGRID_WORKER_EXEC_RUNNER_H_
#define PEERGRID_WORKER_EXEC_RUNNER_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/task.pb.h"

namespace peergrid::worker {

class ProcessReactor;

struct ExecLimits {
  size_t stdout_cap = 1 << 20;            // Bytes kept of stdout.
  size_t stderr_cap = 1 << 20;            // Bytes kept of stderr.
  size_t output_file_cap = 64 << 20;      // Bytes kept of each output file.
  uint64_t memory_bytes = 0;              // RLIMIT_AS default; 0: none.
  uint64_t open_files = 1024;             // RLIMIT_NOFILE.
  uint64_t file_size_bytes = 1ull << 30;  // RLIMIT_FSIZE.
  // RLIMIT_CPU in seconds; 0: derived from the timeout (timeout * cpus + 1).
  uint64_t cpu_seconds = 0;
  // RLIMIT_NPROC, applied only when tasks run as another user (it counts
  // every process of that user). 0: none.
  uint64_t processes = 256;
};

struct ExecRunnerOptions {
  std::string work_root;  // Task directories are created under it.
  std::string exec_user;  // Used only when running as root; "" = no switch.
  bool bwrap = false;
  std::string bwrap_path = "/usr/bin/bwrap";
  std::string default_path = "/usr/local/bin:/usr/bin:/bin";
  ExecLimits limits;
  // Called with the spawn latency of each started process (any thread).
  std::function<void(absl::Duration)> on_spawned;
};

class ExecRunner {
 public:
  using Done = absl::AnyInvocable<void(v1::TaskResult)>;

  // Checks the options (work root created, exec user resolved).
  static absl::StatusOr<std::unique_ptr<ExecRunner>> Create(
      ExecRunnerOptions options, ProcessReactor& reactor);

  // Starts `task` (its exec spec) with wall-clock `timeout`. `blobs` maps a
  // blob's SHA-256 to its file in the blob cache (read only, must stay until
  // Run returns). Calls `done` exactly once: on the calling thread if the
  // task cannot start (outcome REJECTED, a clear reason), else on the
  // reactor thread when it ends. Returns the reactor id to kill it, or 0.
  uint64_t Run(const v1::Task& task, absl::Duration timeout,
               const absl::flat_hash_map<std::string, std::string>& blobs,
               Done done);

  bool changes_user() const { return change_user_; }

 private:
  ExecRunner(ExecRunnerOptions options, ProcessReactor& reactor)
      : options_(std::move(options)), reactor_(reactor) {}

  friend struct ExecFinisher;
  // Working directories are reused once emptied: creating and deleting a
  // directory per task costs more than the task on ext4.
  absl::StatusOr<std::string> AcquireDir();
  void ReleaseDir(const std::string& dir);

  ExecRunnerOptions options_;
  ProcessReactor& reactor_;
  bool change_user_ = false;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  std::atomic<uint64_t> next_dir_{0};
  absl::Mutex mu_;
  std::vector<std::string> free_dirs_ ABSL_GUARDED_BY(mu_);
};

// True if `path` is relative, non-empty and has no ".." component.
bool IsSafeRelativePath(const std::string& path);

}  // namespace peergrid::worker

#endif  // PEERGRID_WORKER_EXEC_RUNNER_H_
