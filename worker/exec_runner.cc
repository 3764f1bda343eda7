#include "worker/exec_runner.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "worker/process.h"

namespace peergrid::worker {
namespace {

namespace fs = std::filesystem;

void CloseFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

// Opens `rel` under `dirfd` without leaving the directory (no "..", no
// symlink escaping it): a task must not make the worker read other files.
// Never blocks: a task may leave a FIFO where its output should be, and an
// open() waiting for a writer would wedge the reactor thread that collects
// every task's outputs (ReadCapped then refuses anything not regular).
int OpenBeneath(int dirfd, const std::string& rel) {
  struct open_how how;
  std::memset(&how, 0, sizeof how);
  how.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS;
  return static_cast<int>(
      syscall(SYS_openat2, dirfd, rel.c_str(), &how, sizeof how));
}

// Reads up to `cap` bytes; sets *truncated when the file is longer.
bool ReadCapped(int fd, size_t cap, std::string* out, bool* truncated) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return false;
  const auto size = static_cast<size_t>(st.st_size);
  out->resize(std::min(size, cap));
  size_t got = 0;
  while (got < out->size()) {
    const ssize_t n = pread(fd, out->data() + got, out->size() - got,
                            static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  out->resize(got);
  *truncated = size > cap;
  return true;
}

std::string SignalName(int sig) {
  const char* name = sigabbrev_np(sig);
  return name ? absl::StrCat("SIG", name) : absl::StrCat(sig);
}

}  // namespace

struct ExecFinisher {
  ExecRunner* runner;
  uint64_t index;
  std::vector<std::string> outputs;
  std::string dir;
  ExecLimits limits;
  uint64_t cpu_seconds;
  absl::Duration timeout;
  ExecRunner::Done done;

  void operator()(ProcessExit ex) {
    v1::TaskResult r;
    r.set_index(index);
    r.set_stdout_bytes(ex.stdout_bytes);
    r.set_stderr_bytes(ex.stderr_bytes);
    r.set_stdout_truncated(ex.stdout_bytes > ex.stdout_data.size());
    r.set_stderr_truncated(ex.stderr_bytes > ex.stderr_data.size());
    r.set_stdout(std::move(ex.stdout_data));
    r.set_stderr(std::move(ex.stderr_data));
    r.set_wall_us(absl::ToInt64Microseconds(ex.wall));
    r.set_cpu_us(absl::ToInt64Microseconds(ex.cpu));
    const int st = ex.wait_status;
    const bool exited = WIFEXITED(st);
    const int sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    r.set_exit_code(exited ? WEXITSTATUS(st) : -1);
    r.set_signal(sig);
    std::string missing = CollectOutputs(r);
    if (ex.killed) {
      r.set_outcome(v1::TASK_OUTCOME_CANCELLED);
      r.set_reason("cancelled");
    } else if (ex.timed_out) {
      r.set_outcome(v1::TASK_OUTCOME_TIMED_OUT);
      r.set_reason(absl::StrCat("wall-clock timeout of ",
                                absl::FormatDuration(timeout),
                                " exceeded; process group killed"));
    } else if (sig == SIGXCPU ||
               (sig == SIGKILL && cpu_seconds != 0 &&
                ex.cpu >= absl::Seconds(static_cast<int64_t>(cpu_seconds)))) {
      r.set_outcome(v1::TASK_OUTCOME_LIMIT_EXCEEDED);
      r.set_reason(absl::StrCat("CPU time limit of ", cpu_seconds,
                                " s exceeded (SIGXCPU)"));
    } else if (sig == SIGXFSZ) {
      r.set_outcome(v1::TASK_OUTCOME_LIMIT_EXCEEDED);
      r.set_reason(absl::StrCat("file size limit of ", limits.file_size_bytes,
                                " bytes exceeded (SIGXFSZ)"));
    } else if (ex.output_exceeded) {
      const bool out = r.stdout_truncated();
      r.set_outcome(v1::TASK_OUTCOME_LIMIT_EXCEEDED);
      r.set_reason(absl::StrCat(out ? "stdout" : "stderr",
                                " exceeded its cap of ",
                                out ? limits.stdout_cap : limits.stderr_cap,
                                " bytes; process group killed"));
    } else if (exited && WEXITSTATUS(st) == 0) {
      if (!missing.empty()) {
        r.set_outcome(v1::TASK_OUTCOME_FAILED);
        r.set_reason(absl::StrCat("output file '", missing,
                                  "' was not produced (as a regular file)"));
      } else {
        r.set_outcome(v1::TASK_OUTCOME_SUCCEEDED);
      }
    } else if (exited) {
      r.set_outcome(v1::TASK_OUTCOME_FAILED);
      r.set_reason(absl::StrCat("exit code ", WEXITSTATUS(st)));
    } else {
      r.set_outcome(v1::TASK_OUTCOME_FAILED);
      r.set_reason(
          absl::StrCat("killed by signal ", sig, " (", SignalName(sig), ")"));
    }
    runner->ReleaseDir(dir);
    done(std::move(r));
  }

  // Returns the first missing output's path, or "".
  std::string CollectOutputs(v1::TaskResult& r) {
    std::string missing;
    if (outputs.empty()) return missing;
    const int dirfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    for (const std::string& path : outputs) {
      const int fd = dirfd < 0 ? -1 : OpenBeneath(dirfd, path);
      v1::OutputFile file;
      bool truncated = false;
      if (fd < 0 || !ReadCapped(fd, limits.output_file_cap, file.mutable_data(),
                                &truncated)) {
        if (missing.empty()) missing = path;
      } else {
        file.set_path(path);
        file.set_truncated(truncated);
        *r.add_output_files() = std::move(file);
      }
      if (fd >= 0) close(fd);
    }
    if (dirfd >= 0) close(dirfd);
    return missing;
  }
};

absl::StatusOr<std::string> ExecRunner::AcquireDir() {
  {
    absl::MutexLock lock(&mu_);
    if (!free_dirs_.empty()) {
      std::string dir = std::move(free_dirs_.back());
      free_dirs_.pop_back();
      return dir;
    }
  }
  std::string dir =
      absl::StrCat(options_.work_root, "/t", next_dir_.fetch_add(1));
  if (mkdir(dir.c_str(), 0700) != 0) {
    return absl::InternalError(absl::StrCat("cannot create working directory ",
                                            dir, ": ", strerror(errno)));
  }
  if (change_user_ && chown(dir.c_str(), uid_, gid_) != 0) {
    const int err = errno;
    rmdir(dir.c_str());
    return absl::InternalError(absl::StrCat("cannot hand working directory ",
                                            dir, " over: ", strerror(err)));
  }
  return dir;
}

void ExecRunner::ReleaseDir(const std::string& dir) {
  constexpr size_t kMaxFree = 64;
  std::error_code ec;
  bool clean = true;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::error_code e2;
    fs::remove_all(entry.path(), e2);
    if (e2) clean = false;
  }
  // The task may have changed its directory's mode; the next one gets a
  // private, empty directory again.
  if (!ec && clean && chmod(dir.c_str(), 0700) == 0) {
    absl::MutexLock lock(&mu_);
    if (free_dirs_.size() < kMaxFree) {
      free_dirs_.push_back(dir);
      return;
    }
  }
  fs::remove_all(dir, ec);
}

bool IsSafeRelativePath(const std::string& path) {
  if (path.empty() || path[0] == '/') return false;
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "..") return false;
  }
  return path.find('\0') == std::string::npos;
}

absl::StatusOr<std::unique_ptr<ExecRunner>> ExecRunner::Create(
    ExecRunnerOptions options, ProcessReactor& reactor) {
  std::error_code ec;
  fs::create_directories(options.work_root, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create exec work root ", options.work_root, ": ",
                     ec.message()));
  }
  // Leftovers of a previous run (a crash) are not anyone's any more.
  for (const auto& entry : fs::directory_iterator(options.work_root, ec)) {
    fs::remove_all(entry.path(), ec);
  }
  std::unique_ptr<ExecRunner> runner(
      new ExecRunner(std::move(options), reactor));
  if (geteuid() == 0 && !runner->options_.exec_user.empty()) {
    struct passwd pw, *found = nullptr;
    char buf[4096];
    getpwnam_r(runner->options_.exec_user.c_str(), &pw, buf, sizeof buf,
               &found);
    if (found == nullptr) {
      return absl::NotFoundError(absl::StrCat(
          "exec user '", runner->options_.exec_user, "' does not exist"));
    }
    if (found->pw_uid != 0) {
      runner->change_user_ = true;
      runner->uid_ = found->pw_uid;
      runner->gid_ = found->pw_gid;
      // The user must be able to reach its directories. The work root and
      // its parent (the node's data directory) are made searchable (not
      // readable) by others; directories above are not ours to change.
      const fs::path root = fs::absolute(runner->options_.work_root);
      int depth = 0;
      for (fs::path p = root; p.has_relative_path();
           p = p.parent_path(), ++depth) {
        struct stat st;
        if (stat(p.c_str(), &st) != 0 || (st.st_mode & S_IXOTH) != 0) continue;
        if (depth < 2) {
          chmod(p.c_str(), (st.st_mode & 07777) | S_IXOTH);
        } else {
          return absl::FailedPreconditionError(absl::StrCat(
              "exec user '", runner->options_.exec_user, "' cannot reach ",
              root.string(), ": ", p.string(),
              " is not searchable by others (chmod o+x it, or use another "
              "--data-dir)"));
        }
      }
    }
  }
  return runner;
}

uint64_t ExecRunner::Run(
    const v1::Task& task, absl::Duration timeout,
    const absl::flat_hash_map<std::string, std::string>& blobs, Done done) {
  const v1::ExecSpec& spec = task.exec();
  std::string dir;
  int in_child = -1, in_parent = -1;
  int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
  auto reject = [&](const std::string& reason) -> uint64_t {
    CloseFd(in_child);
    CloseFd(in_parent);
    for (int* fd : {&out_pipe[0], &out_pipe[1], &err_pipe[0], &err_pipe[1]}) {
      CloseFd(*fd);
    }
    if (!dir.empty()) ReleaseDir(dir);
    v1::TaskResult r;
    r.set_index(task.index());
    r.set_outcome(v1::TASK_OUTCOME_REJECTED);
    r.set_reason(reason);
    r.set_exit_code(-1);
    done(std::move(r));
    return 0;
  };
  if (spec.argv_size() == 0 || spec.argv(0).empty()) {
    return reject("exec task has an empty command line");
  }
  for (const auto& in : spec.inputs()) {
    if (!IsSafeRelativePath(in.path())) {
      return reject(absl::StrCat("input path '", in.path(),
                                 "' must be relative, without '..'"));
    }
    if (!blobs.contains(in.blob_sha256())) {
      return reject(absl::StrCat("input blob ", in.blob_sha256(), " for '",
                                 in.path(), "' is not available"));
    }
  }
  for (const auto& out : spec.output_files()) {
    if (!IsSafeRelativePath(out)) {
      return reject(absl::StrCat("output path '", out,
                                 "' must be relative, without '..'"));
    }
  }
  for (const auto& [name, value] : spec.env()) {
    if (name.empty() || name.find('=') != std::string::npos ||
        name.find('\0') != std::string::npos) {
      return reject(absl::StrCat("bad environment variable name '", name, "'"));
    }
  }

  auto acquired = AcquireDir();
  if (!acquired.ok()) return reject(std::string(acquired.status().message()));
  dir = std::move(*acquired);
  for (const auto& in : spec.inputs()) {
    const fs::path target = fs::path(dir) / in.path();
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    fs::copy_file(blobs.at(in.blob_sha256()), target,
                  fs::copy_options::overwrite_existing, ec);
    if (ec) {
      return reject(
          absl::StrCat("cannot place input '", in.path(), "': ", ec.message()));
    }
    chmod(target.c_str(), in.executable() ? 0755 : 0644);
    for (fs::path p = target; change_user_ && p != fs::path(dir);
         p = p.parent_path()) {
      (void)!chown(p.c_str(), uid_, gid_);
    }
  }

  absl::flat_hash_map<std::string, std::string> env = {
      {"PATH", options_.default_path}, {"HOME", dir}, {"TMPDIR", dir}};
  for (const auto& [name, value] : spec.env()) env[name] = value;
  SpawnSpec s;
  s.cwd = dir;
  for (const auto& [name, value] : env) {
    s.env.push_back(absl::StrCat(name, "=", value));
  }
  auto resolved = ResolveCommand(spec.argv(0), env["PATH"], dir);
  if (!resolved.ok()) return reject(std::string(resolved.status().message()));
  if (options_.bwrap) {
    s.path = options_.bwrap_path;
    s.argv = {options_.bwrap_path,
              "--unshare-all",
              "--die-with-parent",
              "--ro-bind",
              "/",
              "/",
              "--dev",
              "/dev",
              "--proc",
              "/proc",
              "--tmpfs",
              "/tmp",
              "--bind",
              dir,
              dir,
              "--chdir",
              dir,
              "--",
              *resolved};
  } else {
    s.path = *resolved;
    s.argv = {spec.argv(0)};
  }
  for (int i = 1; i < spec.argv_size(); ++i) s.argv.push_back(spec.argv(i));

  if (spec.stdin().empty()) {
    in_child = open("/dev/null", O_RDONLY | O_CLOEXEC);
  } else {
    int p[2];
    if (pipe2(p, O_CLOEXEC) == 0) {
      in_child = p[0];
      in_parent = p[1];
    }
  }
  if (in_child < 0 || pipe2(out_pipe, O_CLOEXEC) != 0 ||
      pipe2(err_pipe, O_CLOEXEC) != 0) {
    return reject(absl::StrCat("cannot create pipes: ", strerror(errno)));
  }
  s.stdin_fd = in_child;
  s.stdout_fd = out_pipe[1];
  s.stderr_fd = err_pipe[1];
  s.change_user = change_user_;
  s.uid = uid_;
  s.gid = gid_;
  const int cpus = std::max<int>(1, static_cast<int>(task.cpus()));
  const ExecLimits& lim = options_.limits;
  uint64_t cpu_seconds = lim.cpu_seconds;
  if (cpu_seconds == 0 && timeout != absl::InfiniteDuration()) {
    cpu_seconds =
        static_cast<uint64_t>(absl::ToDoubleSeconds(timeout) * cpus) + 1;
  }
  const uint64_t memory =
      task.memory_bytes() != 0 ? task.memory_bytes() : lim.memory_bytes;
  if (memory != 0) s.rlimits.emplace_back(RLIMIT_AS, memory);
  if (cpu_seconds != 0) s.rlimits.emplace_back(RLIMIT_CPU, cpu_seconds);
  if (lim.open_files != 0)
    s.rlimits.emplace_back(RLIMIT_NOFILE, lim.open_files);
  if (lim.file_size_bytes != 0) {
    s.rlimits.emplace_back(RLIMIT_FSIZE, lim.file_size_bytes);
  }
  if (change_user_ && lim.processes != 0) {
    s.rlimits.emplace_back(RLIMIT_NPROC, lim.processes);
  }
  s.rlimits.emplace_back(RLIMIT_CORE, 0);

  const absl::Time start = absl::Now();
  auto pid = Spawn(s);
  const absl::Duration latency = absl::Now() - start;
  CloseFd(in_child);
  CloseFd(out_pipe[1]);
  CloseFd(err_pipe[1]);
  if (!pid.ok()) return reject(std::string(pid.status().message()));
  if (options_.on_spawned) options_.on_spawned(latency);

  ProcessReactor::Watch w;
  w.pid = *pid;
  w.stdout_fd = out_pipe[0];
  w.stderr_fd = err_pipe[0];
  w.stdin_fd = in_parent;
  w.stdin_data = spec.stdin();
  w.stdout_cap = lim.stdout_cap;
  w.stderr_cap = lim.stderr_cap;
  w.start = start;
  w.timeout = timeout;
  ExecFinisher fin{this,
                   task.index(),
                   {spec.output_files().begin(), spec.output_files().end()},
                   std::move(dir),
                   lim,
                   cpu_seconds,
                   timeout,
                   std::move(done)};
  return reactor_.Add(std::move(w), std::move(fin));
}

}  // namespace peergrid::worker
