// Child processes for tests: started with pipes, bounded in time, stopped by
// their own PID. A Subprocess that is destroyed while its child still runs
// kills the child (SIGKILL) and reaps it, so no test leaves one behind.
#ifndef PEERGRID_TESTS_TESTING_SUBPROCESS_H_
#define PEERGRID_TESTS_TESTING_SUBPROCESS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace peergrid::testing {

// How a child ended: exit_code for a normal exit, else the signal.
struct ExitStatus {
  int exit_code = -1;
  int signal = 0;
  bool exited() const { return signal == 0; }
};

class Subprocess {
 public:
  // Starts argv[0] (a path) with `argv`, stdin from /dev/null, stdout and
  // stderr into pipes this object reads. With `stderr_path`, stderr goes to
  // that file instead: a long-lived child that logs much would otherwise
  // block once the pipe is full and nobody reads it.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(
      const std::vector<std::string>& argv,
      const std::vector<std::string>& extra_env = {},
      const std::string& stderr_path = "");

  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  ~Subprocess();

  pid_t pid() const { return pid_; }

  // Reads stdout until a whole line is there or `timeout` passes (or the
  // child closes stdout). The line has no newline.
  absl::StatusOr<std::string> ReadStdoutLine(absl::Duration timeout);

  // Sends `signal` to the child.
  void Signal(int signal);

  // Waits up to `timeout` for the child to end, draining its output; an
  // error if it is still running then.
  absl::StatusOr<ExitStatus> Wait(absl::Duration timeout);

  // Output read so far (all of it once Wait() has returned).
  const std::string& stdout_text() const { return stdout_; }
  const std::string& stderr_text() const { return stderr_; }

 private:
  Subprocess() = default;
  // Reads what is available from both pipes, waiting at most `timeout`.
  void Pump(absl::Duration timeout);

  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;
  std::string stdout_;
  size_t stdout_consumed_ = 0;  // Bytes handed out by ReadStdoutLine.
  std::string stderr_;
  std::optional<ExitStatus> exit_status_;
};

struct CommandResult {
  ExitStatus status;
  std::string out;
  std::string err;
};

// Runs a command to completion within `timeout` (killed after it).
absl::StatusOr<CommandResult> RunCommand(
    const std::vector<std::string>& argv,
    absl::Duration timeout = absl::Seconds(30),
    const std::vector<std::string>& extra_env = {});

// Path of the built `peergrid` binary.
std::string PeergridBinary();

}  // namespace peergrid::testing

#endif  // PEERGRID_TESTS_TESTING_SUBPROCESS_H_
