// The job subcommands that work on a job by its id or file: `submit`,
// `wait`, `jobs` and `cancel`.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "node/cli/client.h"
#include "node/cli/command.h"
#include "node/cli/tls_flags.h"
#include "node/cli/watch.h"

ABSL_FLAG(bool, wait, false,
          "After submitting, follow the job as 'peergrid wait' does.");
ABSL_FLAG(int64_t, from, -1,
          "Print results from this result number on (0 for all of them); "
          "-1 resumes where the last 'wait' for this job stopped.");

namespace peergrid::cli {
namespace {

constexpr char kJobFlagsFile[] = "node/cli/job_commands.cc";

std::chrono::system_clock::time_point Deadline(int seconds) {
  return std::chrono::system_clock::now() + std::chrono::seconds(seconds);
}

const char* StateName(v1::JobState state) {
  switch (state) {
    case v1::JOB_STATE_QUEUED:
      return "queued";
    case v1::JOB_STATE_RUNNING:
      return "running";
    case v1::JOB_STATE_DONE:
      return "done";
    case v1::JOB_STATE_FAILED:
      return "failed";
    case v1::JOB_STATE_CANCELLED:
      return "cancelled";
    default:
      return "unknown";
  }
}

// Where `wait` remembers the next result to print, per node and job, so
// that an interrupted wait resumes without repeating or losing results.
class Cursor {
 public:
  Cursor(const std::string& address, const std::string& job_id) {
    std::string base;
    if (const char* state = std::getenv("XDG_STATE_HOME"); state && *state) {
      base = state;
    } else if (const char* home = std::getenv("HOME"); home && *home) {
      base = absl::StrCat(home, "/.local/state");
    } else {
      return;  // Nowhere to remember: every wait starts at 0.
    }
    dir_ = base + "/peergrid/wait";
    std::string key = absl::StrCat(address, "_", job_id);
    for (char& c : key) {
      if (c == '/' || c == ':') c = '_';
    }
    path_ = dir_ + "/" + key;
  }

  uint64_t Load() const {
    if (path_.empty()) return 0;
    std::ifstream in(path_);
    uint64_t next = 0;
    return (in >> next) ? next : 0;
  }

  void Save(uint64_t next) const {
    if (path_.empty()) return;
    std::string prefix;
    for (size_t i = 1; i <= dir_.size(); ++i) {
      if (i == dir_.size() || dir_[i] == '/') {
        mkdir(dir_.substr(0, i).c_str(), 0700);
      }
    }
    const std::string temporary = path_ + ".tmp";
    {
      std::ofstream out(temporary, std::ios::trunc);
      out << next << "\n";
      if (!out) return;
    }
    std::rename(temporary.c_str(), path_.c_str());
  }

 private:
  std::string dir_;
  std::string path_;
};

// Follows a job to its end, resuming from the cursor; returns the exit
// status of `peergrid wait`.
int FollowJob(const Command& command, const std::string& address,
              const std::string& job_id) {
  grpc::ClientContext context;
  // Blocks the stop signals before gRPC starts threads that could take them.
  StopSignals stop([&](int) { context.TryCancel(); });
  absl::StatusOr<std::unique_ptr<v1::Jobs::Stub>> made = JobsStub(address);
  if (!made.ok()) {
    PrintError(command, std::string(made.status().message()));
    return kExitUsage;
  }
  std::unique_ptr<v1::Jobs::Stub> stub = *std::move(made);
  const Cursor cursor(address, job_id);
  const int64_t from_flag = absl::GetFlag(FLAGS_from);
  const uint64_t from =
      from_flag >= 0 ? static_cast<uint64_t>(from_flag) : cursor.Load();
  OutputOptions output;
  output.progress = isatty(STDERR_FILENO);
  uint64_t saved = from;
  absl::StatusOr<WatchOutcome> outcome = WatchAndPrint(
      *stub, job_id, from, output,
      [&](uint64_t next) {
        // Every result printed is remembered before the next is printed,
        // so an interrupted wait repeats nothing.
        cursor.Save(next);
        saved = next;
      },
      context);
  if (stop.received()) {
    PrintError(command, absl::StrCat("interrupted after result ", saved,
                                     "; run it again to go on"));
    return 130;
  }
  if (!outcome.ok()) {
    if (outcome.status().code() == absl::StatusCode::kNotFound) {
      PrintError(command, absl::StrCat("no job '", job_id, "' at ", address));
      return kExitFailure;
    }
    PrintError(
        command,
        DescribeCallError(
            address,
            grpc::Status(static_cast<grpc::StatusCode>(outcome.status().code()),
                         std::string(outcome.status().message()))));
    return kExitFailure;
  }
  return ExitStatusFor(outcome->status);
}

int RunSubmit(const Command& command, std::vector<std::string> args) {
  std::vector<std::string> positional;
  int exit_code = kExitOk;
  if (!ParseCommand(command, args, &positional, &exit_code)) return exit_code;
  if (positional.size() != 1) {
    PrintError(command, "give one JOBFILE (or - for standard input)");
    return kExitUsage;
  }
  std::string text;
  if (positional[0] == "-") {
    std::ostringstream data;
    data << std::cin.rdbuf();
    text = data.str();
  } else {
    std::ifstream in(positional[0]);
    if (!in) {
      PrintError(command, absl::StrCat("cannot read '", positional[0], "'"));
      return kExitUsage;
    }
    std::ostringstream data;
    data << in.rdbuf();
    text = data.str();
  }
  v1::SubmitRequest request;
  const auto parsed =
      google::protobuf::util::JsonStringToMessage(text, request.mutable_job());
  if (!parsed.ok()) {
    PrintError(command, absl::StrCat(positional[0], " is not a job in JSON: ",
                                     parsed.message().as_string()));
    return kExitUsage;
  }
  const std::string address = NodeAddress();
  absl::StatusOr<std::unique_ptr<v1::Jobs::Stub>> made = JobsStub(address);
  if (!made.ok()) {
    PrintError(command, std::string(made.status().message()));
    return kExitUsage;
  }
  std::unique_ptr<v1::Jobs::Stub> stub = *std::move(made);
  absl::StatusOr<std::string> id = SubmitJob(*stub, address, request);
  if (!id.ok()) {
    PrintError(command, std::string(id.status().message()));
    return kExitFailure;
  }
  std::cout << *id << std::endl;
  if (!absl::GetFlag(FLAGS_wait)) return kExitOk;
  return FollowJob(command, address, *id);
}

int RunWait(const Command& command, std::vector<std::string> args) {
  std::vector<std::string> positional;
  int exit_code = kExitOk;
  if (!ParseCommand(command, args, &positional, &exit_code)) return exit_code;
  if (positional.size() != 1) {
    PrintError(command, "give one JOB id");
    return kExitUsage;
  }
  return FollowJob(command, NodeAddress(), positional[0]);
}

int RunJobs(const Command& command, std::vector<std::string> args) {
  std::vector<std::string> positional;
  int exit_code = kExitOk;
  if (!ParseCommand(command, args, &positional, &exit_code)) return exit_code;
  if (!CheckNoArguments(command, positional)) return kExitUsage;
  const std::string address = NodeAddress();
  absl::StatusOr<std::unique_ptr<v1::Jobs::Stub>> made = JobsStub(address);
  if (!made.ok()) {
    PrintError(command, std::string(made.status().message()));
    return kExitUsage;
  }
  std::unique_ptr<v1::Jobs::Stub> stub = *std::move(made);
  grpc::ClientContext context;
  context.set_deadline(Deadline(10));
  v1::ListJobsResponse response;
  const grpc::Status status =
      stub->ListJobs(&context, v1::ListJobsRequest(), &response);
  if (!status.ok()) {
    PrintError(command, DescribeCallError(address, status));
    return kExitFailure;
  }
  const char* format = "%-28s %-16s %-12s %-9s %8s %8s %8s %8s %s\n";
  std::cout << absl::StrFormat(format, "ID", "NAME", "SUBMITTER", "STATE",
                               "TASKS", "DONE", "FAILED", "RUNNING", "AGE");
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  for (const v1::JobStatus& job : response.jobs()) {
    std::cout << absl::StrFormat(
        format, job.id(), job.name().empty() ? "-" : job.name(),
        job.submitter().empty() ? "-" : job.submitter(),
        StateName(job.state()), absl::StrCat(job.tasks_total()),
        absl::StrCat(job.tasks_succeeded()), absl::StrCat(job.tasks_failed()),
        absl::StrCat(job.tasks_running()),
        absl::StrFormat("%.0fs", (now_ms - job.submitted_unix_ms()) / 1000.0));
  }
  return kExitOk;
}

int RunCancel(const Command& command, std::vector<std::string> args) {
  std::vector<std::string> positional;
  int exit_code = kExitOk;
  if (!ParseCommand(command, args, &positional, &exit_code)) return exit_code;
  if (positional.size() != 1) {
    PrintError(command, "give one JOB id");
    return kExitUsage;
  }
  const std::string address = NodeAddress();
  absl::StatusOr<std::unique_ptr<v1::Jobs::Stub>> made = JobsStub(address);
  if (!made.ok()) {
    PrintError(command, std::string(made.status().message()));
    return kExitUsage;
  }
  std::unique_ptr<v1::Jobs::Stub> stub = *std::move(made);
  grpc::ClientContext context;
  context.set_deadline(Deadline(10));
  v1::CancelRequest request;
  request.set_job_id(positional[0]);
  v1::CancelResponse response;
  const grpc::Status status = stub->Cancel(&context, request, &response);
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
    PrintError(command,
               absl::StrCat("no job '", positional[0], "' at ", address));
    return kExitFailure;
  }
  if (!status.ok()) {
    PrintError(command, DescribeCallError(address, status));
    return kExitFailure;
  }
  std::cout << absl::StrFormat(
      "%s %s: %d done, %d failed of %d\n", response.status().id(),
      StateName(response.status().state()), response.status().tasks_succeeded(),
      response.status().tasks_failed(), response.status().tasks_total());
  return kExitOk;
}

}  // namespace

const Command& SubmitCommand() {
  static const Command* command = new Command{
      "submit",
      "submit a job described in JSON; print its id",
      "[--node=HOST:PORT] [--wait] JOBFILE\n\n"
      "JOBFILE (or - for standard input) holds a peergrid.v1.Job message in\n"
      "protobuf's JSON form (docs/jobs.md has an example). Prints the job's\n"
      "id; with --wait, then follows it as 'peergrid wait' does.",
      {kJobFlagsFile, kClientFlagsFile, kTlsFlagsFile},
      &RunSubmit,
      /*aliases=*/{},
      kExitUsage,
      /*flags_end_at_first_argument=*/false,
      /*handles_stop_signals=*/true,
  };
  return *command;
}

const Command& WaitCommand() {
  static const Command* command = new Command{
      "wait",
      "print a job's results until it ends",
      "[--node=HOST:PORT] [--from=N] JOB\n\n"
      "Streams the job's results as they come and exits with the job's\n"
      "status (0 all succeeded, else the failed tasks up to 100, 101 for\n"
      "more). It remembers the results it printed: interrupted and run\n"
      "again, it neither repeats nor loses one.",
      {kJobFlagsFile, kClientFlagsFile, kTlsFlagsFile},
      &RunWait,
      /*aliases=*/{},
      kExitUsage,
      /*flags_end_at_first_argument=*/false,
      /*handles_stop_signals=*/true,
  };
  return *command;
}

const Command& JobsCommand() {
  static const Command* command = new Command{
      "jobs",
      "list the jobs a node is the origin of",
      "[--node=HOST:PORT]\n\n"
      "One line per job the node keeps: id, name, state, tasks, done,\n"
      "failed, running, and how long ago it was submitted.",
      {kClientFlagsFile, kTlsFlagsFile},
      &RunJobs,
  };
  return *command;
}

const Command& CancelCommand() {
  static const Command* command = new Command{
      "cancel",
      "cancel a job and stop its running tasks",
      "[--node=HOST:PORT] JOB\n\n"
      "Cancels the job at its origin: pending tasks never start and workers\n"
      "stop its running tasks.",
      {kClientFlagsFile, kTlsFlagsFile},
      &RunCancel,
  };
  return *command;
}

}  // namespace peergrid::cli
