// Following a job from the command line: streaming its results from the
// node, printing them as `peergrid run` and `peergrid wait` do, and turning
// Ctrl-C into a cancelled job or a clean stop.
#ifndef PEERGRID_NODE_CLI_WATCH_H_
#define PEERGRID_NODE_CLI_WATCH_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/jobs.grpc.pb.h"

namespace peergrid::cli {

struct OutputOptions {
  bool keep_order = false;  // -k: print in task order.
  bool json = false;        // One JSON TaskResult per line.
  std::string results_dir;  // DIR/<#>/{stdout,stderr,exit,files/}.
  bool progress = false;    // A progress bar on stderr.
  // The value each task was made from (run), for failure messages.
  std::vector<std::string> values;
};

struct WatchOutcome {
  v1::JobStatus status;  // The last status seen.
  uint64_t next = 0;     // Next result number not yet printed.
  bool finished = false;
};

// Streams `job_id`'s results from result number `from` and prints them.
// Calls `advanced(next)` after printing results, so that callers can
// remember where they are. Returns when the job ends or the stream breaks;
// a break after `from` advanced still returns the outcome (not finished).
absl::StatusOr<WatchOutcome> WatchAndPrint(
    v1::Jobs::Stub& stub, const std::string& job_id, uint64_t from,
    const OutputOptions& options,
    const std::function<void(uint64_t next)>& advanced,
    grpc::ClientContext& context);

// GNU parallel's convention: 0 if all succeeded, else the number of failed
// tasks up to 100, and 101 for more.
int ExitStatusFor(const v1::JobStatus& status);

// Runs `on_signal` on its own thread at the first SIGINT or SIGTERM. Blocks
// both signals for the process while it lives (create it before threads).
class StopSignals {
 public:
  explicit StopSignals(std::function<void(int signal)> on_signal);
  ~StopSignals();
  bool received() const { return received_.load(); }

 private:
  std::atomic<bool> received_{false};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace peergrid::cli

#endif  // PEERGRID_NODE_CLI_WATCH_H_
