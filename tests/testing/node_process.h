// Real `peergrid node` processes for tests: each on 127.0.0.x with port 0,
// its bound addresses read from its start line, stopped by its own PID.
#ifndef PEERGRID_TESTS_TESTING_NODE_PROCESS_H_
#define PEERGRID_TESTS_TESTING_NODE_PROCESS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/testing/subprocess.h"

namespace peergrid::testing {

// The fields of the start line "peergrid node ready name=.. grpc=.. ...".
struct StartLine {
  std::string name;
  std::string grpc_address;
  std::string metrics_address;  // "off" when metrics are off.
  std::string version;
};

absl::StatusOr<StartLine> ParseStartLine(const std::string& line);

class NodeProcess {
 public:
  ~NodeProcess();
  // Starts `peergrid node` with `flags` (e.g. "--name=a"), adding
  // --listen=HOST:0 and --metrics=HOST:0 unless given, and waits up to
  // `timeout` for its start line.
  static absl::StatusOr<std::unique_ptr<NodeProcess>> Start(
      std::vector<std::string> flags, const std::string& host = "127.0.0.1",
      absl::Duration timeout = absl::Seconds(10));

  const StartLine& start_line() const { return start_line_; }
  const std::string& grpc_address() const { return start_line_.grpc_address; }
  const std::string& metrics_address() const {
    return start_line_.metrics_address;
  }
  Subprocess& process() { return *process_; }
  // What the node logged to stderr so far (kept in a file, so that a node
  // that logs much never blocks on a full pipe).
  std::string Log() const;

  // Sends `signal` and waits up to `timeout` for the process to end.
  absl::StatusOr<ExitStatus> Stop(int signal, absl::Duration timeout);

 private:
  std::unique_ptr<Subprocess> process_;
  StartLine start_line_;
  std::string log_path_;
};

// For a failed test's TearDown: stops each node (SIGTERM, 3 s) and prints
// what it logged to stderr, to tell why.
void StopAndPrintLogs(std::vector<std::unique_ptr<NodeProcess>>& nodes);

}  // namespace peergrid::testing

#endif  // PEERGRID_TESTS_TESTING_NODE_PROCESS_H_
