#include "tests/testing/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

extern char** environ;

namespace peergrid::testing {

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(
    const std::vector<std::string>& argv,
    const std::vector<std::string>& extra_env, const std::string& stderr_path) {
  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  if (stderr_path.empty()) {
    posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  } else {
    posix_spawn_file_actions_addopen(&actions, 2, stderr_path.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
  }
  // The child starts with no blocked signals, whatever the test runner has.
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attributes, &empty);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK);

  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  env_strings.insert(env_strings.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> env;
  for (std::string& e : env_strings) env.push_back(e.data());
  env.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> c_args;
  for (std::string& a : args) c_args.push_back(a.data());
  c_args.push_back(nullptr);

  pid_t pid = -1;
  const int error = posix_spawn(&pid, c_args[0], &actions, &attributes,
                                c_args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (error != 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    return absl::InternalError(
        absl::StrCat("cannot start ", argv[0], ": ", strerror(error)));
  }
  std::unique_ptr<Subprocess> process(new Subprocess());
  process->pid_ = pid;
  process->stdout_fd_ = out_pipe[0];
  process->stderr_fd_ = err_pipe[0];
  return process;
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && !exit_status_.has_value()) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (stdout_fd_ >= 0) close(stdout_fd_);
  if (stderr_fd_ >= 0) close(stderr_fd_);
}

void Subprocess::Pump(absl::Duration timeout) {
  pollfd fds[2] = {{stdout_fd_, POLLIN, 0}, {stderr_fd_, POLLIN, 0}};
  const int ready =
      poll(fds, 2, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  if (ready <= 0) return;
  char buffer[65536];
  for (pollfd& fd : fds) {
    if (fd.fd < 0 || (fd.revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
    const ssize_t n = read(fd.fd, buffer, sizeof(buffer));
    std::string& sink = fd.fd == stdout_fd_ ? stdout_ : stderr_;
    if (n > 0) {
      sink.append(buffer, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      // End of stream: stop polling this pipe.
      (fd.fd == stdout_fd_ ? stdout_fd_ : stderr_fd_) = -1;
      close(fd.fd);
    }
  }
}

absl::StatusOr<std::string> Subprocess::ReadStdoutLine(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    const size_t newline = stdout_.find('\n', stdout_consumed_);
    if (newline != std::string::npos) {
      std::string line =
          stdout_.substr(stdout_consumed_, newline - stdout_consumed_);
      stdout_consumed_ = newline + 1;
      return line;
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat(
          "no line on stdout within ", absl::FormatDuration(timeout),
          "; stderr so far: ", stderr_));
    }
    if (stdout_fd_ < 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("stdout closed; stderr: ", stderr_));
    }
    Pump(std::min(left, absl::Milliseconds(100)));
  }
}

void Subprocess::Signal(int signal) {
  if (pid_ > 0 && !exit_status_.has_value()) kill(pid_, signal);
}

absl::StatusOr<ExitStatus> Subprocess::Wait(absl::Duration timeout) {
  if (exit_status_.has_value()) return *exit_status_;
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status = 0;
    const pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      // Drain what the child wrote before it ended.
      while (stdout_fd_ >= 0 || stderr_fd_ >= 0) Pump(absl::Milliseconds(100));
      ExitStatus result;
      if (WIFEXITED(status)) {
        result.exit_code = WEXITSTATUS(status);
      } else if (WIFSIGNALED(status)) {
        result.signal = WTERMSIG(status);
      }
      exit_status_ = result;
      return result;
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("process ", pid_, " still running after ",
                       absl::FormatDuration(timeout)));
    }
    if (stdout_fd_ >= 0 || stderr_fd_ >= 0) {
      Pump(absl::Milliseconds(5));
    } else {
      absl::SleepFor(absl::Milliseconds(5));
    }
  }
}

absl::StatusOr<CommandResult> RunCommand(
    const std::vector<std::string>& argv, absl::Duration timeout,
    const std::vector<std::string>& extra_env) {
  absl::StatusOr<std::unique_ptr<Subprocess>> process =
      Subprocess::Start(argv, extra_env);
  if (!process.ok()) return process.status();
  absl::StatusOr<ExitStatus> status = (*process)->Wait(timeout);
  if (!status.ok()) return status.status();
  return CommandResult{*status, (*process)->stdout_text(),
                       (*process)->stderr_text()};
}

std::string PeergridBinary() { return PEERGRID_BINARY; }

}  // namespace peergrid::testing
