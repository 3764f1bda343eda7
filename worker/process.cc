#include "worker/process.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/thread_name.h"

namespace peergrid::worker {
namespace {

constexpr size_t kChildStack = 128 * 1024;

struct ChildArgs {
  const SpawnSpec* spec;
  char* const* argv;
  char* const* envp;
  // Written by the child, read by the parent once the child has exec'd or
  // exited (CLONE_VFORK suspends the parent until then; memory is shared).
  int err = 0;
  const char* stage = nullptr;
};

[[noreturn]] void ChildFail(ChildArgs* a, const char* stage) {
  a->err = errno;
  a->stage = stage;
  _exit(127);
}

// Runs in the child, on its own stack, sharing the parent's memory: only
// plain system calls, no allocation, no locks.
int ChildMain(void* p) {
  auto* a = static_cast<ChildArgs*>(p);
  const SpawnSpec& s = *a->spec;
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < _NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);
  }
  if (setpgid(0, 0) != 0) ChildFail(a, "setpgid");
  if (!s.cwd.empty() && chdir(s.cwd.c_str()) != 0) ChildFail(a, "chdir");
  for (const auto& [resource, value] : s.rlimits) {
    // The CPU hard limit one second later, so that SIGXCPU (the reported
    // cause) comes before SIGKILL.
    struct rlimit rl = {value, resource == RLIMIT_CPU ? value + 1 : value};
    if (setrlimit(static_cast<__rlimit_resource>(resource), &rl) != 0) {
      ChildFail(a, "setrlimit");
    }
  }
  if (dup2(s.stdin_fd, 0) < 0 || dup2(s.stdout_fd, 1) < 0 ||
      dup2(s.stderr_fd, 2) < 0) {
    ChildFail(a, "dup2");
  }
  syscall(SYS_close_range, 3u, ~0u, 0u);
  if (s.change_user) {
    // Raw system calls: glibc's wrappers would try to change the
    // credentials of every thread of the (shared-memory) parent.
    gid_t groups[1] = {s.gid};
    if (syscall(SYS_setgroups, 1, groups) != 0) ChildFail(a, "setgroups");
    if (syscall(SYS_setgid, s.gid) != 0) ChildFail(a, "setgid");
    if (syscall(SYS_setuid, s.uid) != 0) ChildFail(a, "setuid");
  }
  sigset_t empty;
  sigemptyset(&empty);
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &empty, nullptr, _NSIG / 8);
  execve(s.path.c_str(), a->argv, a->envp);
  ChildFail(a, "execve");
}

char* ChildStackTop() {
  thread_local std::unique_ptr<char[]> stack(new char[kChildStack]);
  auto top = reinterpret_cast<uintptr_t>(stack.get() + kChildStack);
  return reinterpret_cast<char*>(top & ~uintptr_t{15});
}

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
         access(path.c_str(), X_OK) == 0;
}

}  // namespace

absl::StatusOr<pid_t> Spawn(const SpawnSpec& spec) {
  if (spec.argv.empty()) return absl::InvalidArgumentError("empty argv");
  std::vector<char*> argv, envp;
  argv.reserve(spec.argv.size() + 1);
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  envp.reserve(spec.env.size() + 1);
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  ChildArgs args{&spec, argv.data(), envp.data()};
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t pid = clone(ChildMain, ChildStackTop(),
                          CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
  const int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot start process: clone: ", strerror(clone_errno)));
  }
  if (args.stage != nullptr) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    const std::string msg =
        absl::StrCat("cannot start '", spec.argv[0], "': ", args.stage, ": ",
                     strerror(args.err));
    if (args.err == ENOENT) return absl::NotFoundError(msg);
    if (args.err == EACCES || args.err == EPERM) {
      return absl::PermissionDeniedError(msg);
    }
    return absl::FailedPreconditionError(msg);
  }
  return pid;
}

absl::StatusOr<std::string> ResolveCommand(const std::string& name,
                                           const std::string& path_var,
                                           const std::string& cwd) {
  if (name.empty()) return absl::InvalidArgumentError("empty command");
  if (name.find('/') != std::string::npos) {
    std::string path = name[0] == '/' ? name : absl::StrCat(cwd, "/", name);
    if (IsExecutableFile(path)) return path;
    return absl::NotFoundError(
        absl::StrCat("command not found or not executable: ", name));
  }
  for (absl::string_view dir : absl::StrSplit(path_var, ':')) {
    if (dir.empty()) continue;
    std::string path = absl::StrCat(dir, "/", name);
    if (IsExecutableFile(path)) return path;
  }
  return absl::NotFoundError(
      absl::StrCat("command not found: ", name, " (PATH=", path_var, ")"));
}

struct ProcessReactor::Entry {
  Watch w;
  OnExit on_exit;
  int pidfd = -1;
  ProcessExit exit;
  absl::Time deadline = absl::InfiniteFuture();
  size_t stdin_off = 0;
  bool suspended = false;
  bool finishing = false;
};

namespace {
enum Kind : uint64_t { kPid = 0, kOut = 1, kErr = 2, kIn = 3 };
uint64_t Tag(uint64_t id, Kind kind) { return id << 2 | kind; }

void EpollAdd(int epfd, int fd, uint32_t events, uint64_t tag) {
  struct epoll_event ev;
  ev.events = events;
  ev.data.u64 = tag;
  epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}
void CloseFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}
}  // namespace

ProcessReactor::ProcessReactor() {
  // Writes to a child's stdin that exited must fail with EPIPE, not kill us.
  struct sigaction sa;
  if (sigaction(SIGPIPE, nullptr, &sa) == 0 && sa.sa_handler == SIG_DFL) {
    signal(SIGPIPE, SIG_IGN);
  }
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  EpollAdd(epoll_fd_, wake_fd_, EPOLLIN, 0);
  thread_ = std::thread([this] {
    SetCurrentThreadName("pg-exec-reactor");
    Loop();
  });
}

ProcessReactor::~ProcessReactor() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    for (auto& [id, e] : entries_) kill(-e->w.pid, SIGKILL);
  }
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
  thread_.join();
  absl::flat_hash_map<uint64_t, std::unique_ptr<Entry>> entries;
  {
    absl::MutexLock lock(&mu_);
    entries.swap(entries_);
  }
  for (auto& [id, e] : entries) {
    int status;
    while (waitpid(e->w.pid, &status, 0) < 0 && errno == EINTR) {
    }
    kill(-e->w.pid, SIGKILL);
    CloseFd(e->pidfd);
    CloseFd(e->w.stdout_fd);
    CloseFd(e->w.stderr_fd);
    CloseFd(e->w.stdin_fd);
  }
  close(wake_fd_);
  close(epoll_fd_);
}

uint64_t ProcessReactor::Add(Watch watch, OnExit on_exit) {
  auto e = std::make_unique<Entry>();
  e->pidfd = static_cast<int>(syscall(SYS_pidfd_open, watch.pid, 0));
  e->w = std::move(watch);
  e->on_exit = std::move(on_exit);
  if (e->w.timeout != absl::InfiniteDuration()) {
    e->deadline = e->w.start + e->w.timeout;
  }
  for (int fd : {e->w.stdout_fd, e->w.stderr_fd, e->w.stdin_fd}) {
    if (fd >= 0) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  uint64_t id;
  bool wake;
  {
    absl::MutexLock lock(&mu_);
    id = next_id_++;
    Entry& r = *e;
    // Wake the reactor only if it sleeps past this deadline.
    wake = r.deadline < wait_until_;
    entries_.emplace(id, std::move(e));
    if (suspended_) {
      kill(-r.w.pid, SIGSTOP);
      r.suspended = true;
    }
    if (r.w.stdout_fd >= 0)
      EpollAdd(epoll_fd_, r.w.stdout_fd, EPOLLIN, Tag(id, kOut));
    if (r.w.stderr_fd >= 0)
      EpollAdd(epoll_fd_, r.w.stderr_fd, EPOLLIN, Tag(id, kErr));
    if (r.w.stdin_fd >= 0)
      EpollAdd(epoll_fd_, r.w.stdin_fd, EPOLLOUT, Tag(id, kIn));
    // Added last: the exit must not be seen before the entry is complete.
    EpollAdd(epoll_fd_, r.pidfd, EPOLLIN, Tag(id, kPid));
  }
  if (wake) {
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof one);
  }
  return id;
}

void ProcessReactor::Kill(uint64_t id) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second->finishing) return;
  it->second->exit.killed = true;
  kill(-it->second->w.pid, SIGKILL);
}

void ProcessReactor::SuspendAll() {
  absl::MutexLock lock(&mu_);
  if (suspended_) return;
  suspended_ = true;
  suspended_since_ = absl::Now();
  for (auto& [id, e] : entries_) {
    if (e->finishing) continue;
    kill(-e->w.pid, SIGSTOP);
    e->suspended = true;
  }
}

void ProcessReactor::ResumeAll() {
  {
    absl::MutexLock lock(&mu_);
    if (!suspended_) return;
    suspended_ = false;
    const absl::Duration paused = absl::Now() - suspended_since_;
    for (auto& [id, e] : entries_) {
      if (!e->suspended) continue;
      e->suspended = false;
      e->deadline += paused;
      kill(-e->w.pid, SIGCONT);
    }
  }
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
}

bool ProcessReactor::suspended() const {
  absl::MutexLock lock(&mu_);
  return suspended_;
}

int ProcessReactor::watched() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(entries_.size());
}

std::vector<pid_t> ProcessReactor::Pids() const {
  absl::MutexLock lock(&mu_);
  std::vector<pid_t> pids;
  for (const auto& [id, e] : entries_) pids.push_back(e->w.pid);
  return pids;
}

void ProcessReactor::Drain(Entry& e, bool is_stdout) {
  int& fd = is_stdout ? e.w.stdout_fd : e.w.stderr_fd;
  std::string& data = is_stdout ? e.exit.stdout_data : e.exit.stderr_data;
  uint64_t& total = is_stdout ? e.exit.stdout_bytes : e.exit.stderr_bytes;
  const size_t cap = is_stdout ? e.w.stdout_cap : e.w.stderr_cap;
  char buf[65536];
  while (fd >= 0) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      total += static_cast<uint64_t>(n);
      if (data.size() < cap) {
        data.append(buf, std::min(static_cast<size_t>(n), cap - data.size()));
      }
      if (total > cap && !e.exit.output_exceeded) {
        e.exit.output_exceeded = true;
        kill(-e.w.pid, SIGKILL);
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    CloseFd(fd);  // EOF or error; close() also leaves the epoll set.
  }
}

void ProcessReactor::FeedStdin(Entry& e) {
  while (e.w.stdin_fd >= 0 && e.stdin_off < e.w.stdin_data.size()) {
    const ssize_t n = write(e.w.stdin_fd, e.w.stdin_data.data() + e.stdin_off,
                            e.w.stdin_data.size() - e.stdin_off);
    if (n > 0) {
      e.stdin_off += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      return;
    } else {
      break;  // EPIPE: the child closed its stdin.
    }
  }
  CloseFd(e.w.stdin_fd);
  e.w.stdin_data.clear();
}

void ProcessReactor::Loop() {
  constexpr int kMaxEvents = 64;
  struct epoll_event events[kMaxEvents];
  std::vector<uint64_t> exited;
  for (;;) {
    int timeout_ms = -1;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      absl::Time next = absl::InfiniteFuture();
      for (const auto& [id, e] : entries_) {
        if (!e->suspended && !e->exit.timed_out) {
          next = std::min(next, e->deadline);
        }
      }
      if (!orphan_groups_.empty()) {
        next = std::min(next, absl::Now() + absl::Milliseconds(50));
      }
      wait_until_ = next;
      if (next != absl::InfiniteFuture()) {
        const absl::Duration left = next - absl::Now();
        timeout_ms = left <= absl::ZeroDuration()
                         ? 0
                         : static_cast<int>(absl::ToInt64Milliseconds(
                               left + absl::Milliseconds(1)));
      }
    }
    const int n = epoll_wait(epoll_fd_, events, kMaxEvents, timeout_ms);
    exited.clear();
    {
      absl::MutexLock lock(&mu_);
      for (int i = 0; i < n; ++i) {
        const uint64_t tag = events[i].data.u64;
        if (tag == 0) {
          uint64_t v;
          (void)!read(wake_fd_, &v, sizeof v);
          continue;
        }
        auto it = entries_.find(tag >> 2);
        if (it == entries_.end()) continue;
        Entry& e = *it->second;
        switch (static_cast<Kind>(tag & 3)) {
          case kOut:
            Drain(e, true);
            break;
          case kErr:
            Drain(e, false);
            break;
          case kIn:
            FeedStdin(e);
            break;
          case kPid:
            if (!e.finishing) {
              e.finishing = true;
              exited.push_back(tag >> 2);
            }
            break;
        }
      }
      const absl::Time now = absl::Now();
      for (auto& [id, e] : entries_) {
        if (!e->suspended && !e->exit.timed_out && !e->finishing &&
            e->deadline <= now) {
          e->exit.timed_out = true;
          kill(-e->w.pid, SIGKILL);
        }
      }
    }
    for (uint64_t id : exited) Finish(id);
    ReapOrphans();
  }
}

void ProcessReactor::ReapOrphans() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  for (auto it = orphan_groups_.begin(); it != orphan_groups_.end();) {
    const pid_t pgid = it->first;
    // While the group has members (zombies included) its id cannot be
    // reused, so signalling and reaping by group touch only its processes.
    if (kill(-pgid, 0) != 0 || now > it->second) {
      orphan_groups_.erase(it++);
      continue;
    }
    kill(-pgid, SIGKILL);  // Anything forked since the group was killed.
    while (waitpid(-pgid, nullptr, WNOHANG) > 0) {
    }
    ++it;
  }
}

void ProcessReactor::Finish(uint64_t id) {
  std::unique_ptr<Entry> e;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    e = std::move(it->second);
    entries_.erase(it);
  }
  // The leader is a zombie until reaped, so the group id is still ours:
  // kill whatever it left behind, then take what is left in the pipes.
  kill(-e->w.pid, SIGKILL);
  Drain(*e, true);
  Drain(*e, false);
  struct rusage ru;
  std::memset(&ru, 0, sizeof ru);
  int status = 0;
  while (wait4(e->w.pid, &status, 0, &ru) < 0 && errno == EINTR) {
  }
  e->exit.wait_status = status;
  {
    absl::MutexLock lock(&mu_);
    orphan_groups_[e->w.pid] = absl::Now() + absl::Seconds(30);
  }
  e->exit.wall = absl::Now() - e->w.start;
  e->exit.cpu = absl::DurationFromTimeval(ru.ru_utime) +
                absl::DurationFromTimeval(ru.ru_stime);
  CloseFd(e->pidfd);
  CloseFd(e->w.stdout_fd);
  CloseFd(e->w.stderr_fd);
  CloseFd(e->w.stdin_fd);
  e->on_exit(std::move(e->exit));
}

}  // namespace peergrid::worker
