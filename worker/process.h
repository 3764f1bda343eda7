// Child processes for exec tasks: a fast spawn (clone with CLONE_VM and
// CLONE_VFORK, as posix_spawn does, plus rlimits, a new process group and a
// user switch, which posix_spawn cannot do) and a reactor thread that
// watches every running child without blocking any other thread: it drains
// stdout/stderr up to caps, feeds stdin, enforces wall-clock deadlines,
// kills whole process groups, suspends and resumes them, and reaps.
#ifndef PEERGRID_WORKER_PROCESS_H_
#define PEERGRID_WORKER_PROCESS_H_

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace peergrid::worker {

struct SpawnSpec {
  std::string path;               // Executable, already resolved.
  std::vector<std::string> argv;  // argv[0] included.
  std::vector<std::string> env;   // "NAME=value", the whole environment.
  std::string cwd;
  int stdin_fd = -1;  // Duplicated onto 0, 1, 2 in the child.
  int stdout_fd = -1;
  int stderr_fd = -1;
  bool change_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<std::pair<int, rlim_t>> rlimits;  // RLIMIT_*, soft = hard
                                                // (CPU: hard = soft + 1).
};

// Starts a child in its own process group (pgid == pid) with an empty
// signal mask and default signal dispositions (the node blocks SIGTERM and
// SIGINT in all its threads), every other descriptor closed. Fails with the
// errno of the step that failed in the child (chdir, setuid, execve...).
absl::StatusOr<pid_t> Spawn(const SpawnSpec& spec);

// Resolves argv[0] like execvp against `path_var` (a PATH value); a name
// with a slash is taken relative to `cwd`. NotFound when nothing executable.
absl::StatusOr<std::string> ResolveCommand(const std::string& name,
                                           const std::string& path_var,
                                           const std::string& cwd);

struct ProcessExit {
  int wait_status = 0;  // As from waitpid.
  bool timed_out = false;
  bool killed = false;  // By Kill(): cancelled.
  // Output went past a cap: the group was killed at that moment (a task
  // printing without end must not run until its timeout).
  bool output_exceeded = false;
  std::string stdout_data, stderr_data;
  uint64_t stdout_bytes = 0, stderr_bytes = 0;  // Totals read, beyond caps.
  absl::Duration wall;
  absl::Duration cpu;  // User + system of the child and its reaped children.
};

// The node becomes a child subreaper (PR_SET_CHILD_SUBREAPER) so that a
// task's orphans are reparented to it, not to an init that may not reap
// them, and are reaped here, by process group, after the group is killed.
class ProcessReactor {
 public:
  struct Watch {
    pid_t pid = -1;
    int stdout_fd = -1;  // Parent ends, owned by the reactor from Add().
    int stderr_fd = -1;
    int stdin_fd = -1;  // -1 if stdin is not a pipe.
    std::string stdin_data;
    size_t stdout_cap = 0, stderr_cap = 0;
    absl::Time start;
    absl::Duration timeout = absl::InfiniteDuration();
  };
  // Called once on the reactor thread when the child has exited and its
  // group has been killed. May not block for long.
  using OnExit = absl::AnyInvocable<void(ProcessExit)>;

  ProcessReactor();
  // Kills every watched process group and reaps them before returning,
  // without calling their callbacks.
  ~ProcessReactor();

  // Returns an id for Kill(). The reactor owns the fds from now on.
  uint64_t Add(Watch watch, OnExit on_exit);
  // SIGKILLs the whole process group; the exit is reported with killed set.
  // No-op for an unknown or finished id.
  void Kill(uint64_t id);
  // SIGSTOP / SIGCONT every watched process group. A suspended task's
  // deadline is pushed back by the time it spent suspended.
  void SuspendAll();
  void ResumeAll();
  bool suspended() const;
  int watched() const;
  // The pids of the live watched children (idle donation accounting).
  std::vector<pid_t> Pids() const;

 private:
  struct Entry;
  void Loop();
  void Finish(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);
  void Drain(Entry& e, bool is_stdout);
  void FeedStdin(Entry& e);

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Entry>> entries_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool suspended_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time suspended_since_ ABSL_GUARDED_BY(mu_);
  // Process groups whose leader is reaped but whose orphans (reparented to
  // us: the reactor makes the node a child subreaper) may still need
  // reaping, with the time to give up.
  absl::flat_hash_map<pid_t, absl::Time> orphan_groups_ ABSL_GUARDED_BY(mu_);
  void ReapOrphans();
  // When the reactor's current epoll_wait times out.
  absl::Time wait_until_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  std::thread thread_;
};

}  // namespace peergrid::worker

#endif  // PEERGRID_WORKER_PROCESS_H_
