// `peergrid run`: GNU parallel's habits over the grid. One task per value,
// outputs printed whole as tasks finish, exit status = failed tasks.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "node/cli/client.h"
#include "node/cli/command.h"
#include "node/cli/tls_flags.h"
#include "node/cli/watch.h"
#include "scheduler/job_validation.h"

ABSL_FLAG(absl::Duration, timeout, absl::ZeroDuration(),
          "Wall-clock limit of each task, e.g. 30s or 5m; 0 means the "
          "worker's default.");
ABSL_FLAG(int, retries, 3,
          "Times a task may run again after its worker was lost.");
ABSL_FLAG(bool, retry_failed, false,
          "Also run again, up to --retries times, tasks that failed by "
          "themselves (non-zero exit, timeout).");
ABSL_FLAG(int, cpus, 1, "Cores each task holds while it runs.");
ABSL_FLAG(bool, keep_order, false,
          "Print outputs in the order of the values (-k), not as tasks "
          "finish.");
ABSL_FLAG(std::string, results, "",
          "Also save each task's stdout, stderr, exit status and output "
          "files under DIR/<task number>/.");
ABSL_FLAG(std::vector<std::string>, ship, {},
          "Send FILE with every task, into its working directory under "
          "its base name (repeatable).");
ABSL_FLAG(bool, json, false,
          "Print each result as one line of JSON instead of its output.");
ABSL_FLAG(std::string, kernel, "",
          "Run this built-in kernel with each value as its argument instead "
          "of a command (noop, echo, sleep, spin, sha256, primes).");
ABSL_FLAG(std::string, job_name, "", "A name for the job in 'peergrid jobs'.");

namespace peergrid::cli {
namespace {

// GNU parallel exits 255 for errors other than failed tasks.
constexpr int kExitRunError = 255;

std::string Substitute(const std::string& arg, const std::string& value,
                       uint64_t number, bool* used) {
  if (arg.find("{}") == std::string::npos &&
      arg.find("{#}") == std::string::npos) {
    return arg;
  }
  *used = true;
  return absl::StrReplaceAll(arg,
                             {{"{}", value}, {"{#}", absl::StrCat(number)}});
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read '", path, "'"));
  std::ostringstream data;
  data << in.rdbuf();
  return data.str();
}

absl::StatusOr<v1::Job> BuildJob(const std::vector<std::string>& command,
                                 const std::vector<std::string>& values) {
  v1::Job job;
  job.set_name(absl::GetFlag(FLAGS_job_name));
  v1::TaskDefaults& defaults = *job.mutable_defaults();
  if (absl::GetFlag(FLAGS_cpus) < 1) {
    return absl::InvalidArgumentError("--cpus must be at least 1");
  }
  if (absl::GetFlag(FLAGS_retries) < 0) {
    return absl::InvalidArgumentError("--retries must be 0 or more");
  }
  if (absl::GetFlag(FLAGS_timeout) < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--timeout must not be negative");
  }
  defaults.set_cpus(static_cast<uint32_t>(absl::GetFlag(FLAGS_cpus)));
  defaults.set_timeout_ms(
      absl::ToInt64Milliseconds(absl::GetFlag(FLAGS_timeout)));
  // 0 would mean the origin's default; "--retries=0" means none at all.
  defaults.set_retries(static_cast<uint32_t>(absl::GetFlag(FLAGS_retries)));
  defaults.set_retry_failed(absl::GetFlag(FLAGS_retry_failed));

  std::vector<v1::InputFile> shipped;
  for (const std::string& path : absl::GetFlag(FLAGS_ship)) {
    absl::StatusOr<std::string> data = ReadFile(path);
    if (!data.ok())
      return absl::InvalidArgumentError(
          absl::StrCat("--ship: ", data.status().message()));
    v1::Blob* blob = job.add_blobs();
    blob->set_sha256(scheduler::Sha256Hex(*data));
    blob->set_data(std::move(*data));
    v1::InputFile& input = shipped.emplace_back();
    input.set_path(path.substr(path.rfind('/') + 1));
    input.set_blob_sha256(blob->sha256());
    // A shipped program stays runnable: ./simulate after --ship=simulate.
    input.set_executable(access(path.c_str(), X_OK) == 0);
  }

  const std::string kernel = absl::GetFlag(FLAGS_kernel);
  for (size_t i = 0; i < values.size(); ++i) {
    v1::Task* task = job.add_tasks();
    task->set_index(i);
    if (!kernel.empty()) {
      task->mutable_kernel()->set_name(kernel);
      task->mutable_kernel()->set_argument(values[i]);
      continue;
    }
    v1::ExecSpec* exec = task->mutable_exec();
    bool used = false;
    for (const std::string& arg : command) {
      exec->add_argv(Substitute(arg, values[i], i + 1, &used));
    }
    if (!used) exec->add_argv(values[i]);  // As parallel: value goes last.
    for (const v1::InputFile& input : shipped) *exec->add_inputs() = input;
  }
  return job;
}

int RunRun(const Command& command, std::vector<std::string> args) {
  std::vector<std::string> positional;
  int exit_code = kExitOk;
  if (!ParseCommand(command, args, &positional, &exit_code)) return exit_code;

  // COMMAND [ARG...] [::: VALUE...]
  std::vector<std::string> words;
  std::vector<std::string> values;
  bool separator = false;
  for (const std::string& arg : positional) {
    if (arg == ":::" && !separator) {
      separator = true;
    } else {
      (separator ? values : words).push_back(arg);
    }
  }
  const bool kernel = !absl::GetFlag(FLAGS_kernel).empty();
  if (kernel && !words.empty()) {
    PrintError(command, "give either --kernel or a command, not both");
    return kExitRunError;
  }
  if (!kernel && words.empty()) {
    PrintError(command, "no command to run (see 'peergrid run --help')");
    return kExitRunError;
  }
  if (!separator) {
    if (isatty(STDIN_FILENO)) {
      PrintError(command,
                 "no values: give them after ':::' or one per line on "
                 "standard input");
      return kExitRunError;
    }
    std::string line;
    while (std::getline(std::cin, line)) values.push_back(line);
  }
  if (values.empty()) {
    PrintError(command, "no values, so no tasks to run");
    return kExitRunError;
  }

  absl::StatusOr<v1::Job> job = BuildJob(words, values);
  if (!job.ok()) {
    PrintError(command, std::string(job.status().message()));
    return kExitRunError;
  }

  // Ctrl-C cancels the job on the grid, then stops following it. The
  // signals are blocked before gRPC starts threads that could take them.
  const std::string address = NodeAddress();
  std::unique_ptr<v1::Jobs::Stub> stub;
  grpc::ClientContext watch_context;
  std::string job_id;
  absl::Mutex id_mu;
  StopSignals stop([&](int) {
    std::string id;
    {
      absl::MutexLock lock(&id_mu);
      id = job_id;
    }
    if (!id.empty()) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(5));
      v1::CancelRequest request;
      request.set_job_id(id);
      v1::CancelResponse response;
      (void)stub->Cancel(&context, request, &response);
    }
    watch_context.TryCancel();
  });
  absl::StatusOr<std::unique_ptr<v1::Jobs::Stub>> made = JobsStub(address);
  if (!made.ok()) {
    PrintError(command, std::string(made.status().message()));
    return kExitUsage;
  }
  stub = *std::move(made);

  v1::SubmitRequest request;
  *request.mutable_job() = std::move(*job);
  absl::StatusOr<std::string> id = SubmitJob(*stub, address, request);
  if (!id.ok()) {
    PrintError(command, std::string(id.status().message()));
    return kExitRunError;
  }
  {
    absl::MutexLock lock(&id_mu);
    job_id = *id;
  }

  OutputOptions output;
  output.keep_order = absl::GetFlag(FLAGS_keep_order);
  output.json = absl::GetFlag(FLAGS_json);
  output.results_dir = absl::GetFlag(FLAGS_results);
  output.progress = isatty(STDERR_FILENO);
  output.values = std::move(values);
  absl::StatusOr<WatchOutcome> outcome =
      WatchAndPrint(*stub, *id, 0, output, nullptr, watch_context);
  if (stop.received()) {
    PrintError(command, absl::StrCat("interrupted: job ", *id, " cancelled"));
    return 130;
  }
  if (!outcome.ok()) {
    PrintError(
        command,
        absl::StrCat("lost the job ", *id, ": ", outcome.status().message(),
                     " (resume with 'peergrid wait ", *id, "')"));
    return kExitRunError;
  }
  return ExitStatusFor(outcome->status);
}

}  // namespace

const Command& RunCommand() {
  static const Command* command = new Command{
      "run",
      "run a command (or kernel) once per value over the grid",
      "[flags] [--] COMMAND [ARG...] [::: VALUE...]\n\n"
      "Makes one task per VALUE (or per line of standard input when there\n"
      "is no ':::'). In COMMAND and ARGs, {} is the value and {#} the task's\n"
      "number from 1; with neither, the value is added as the last argument.\n"
      "Each task's stdout is printed whole as it completes (in value order\n"
      "with -k); failures go to stderr with the node and reason; a progress\n"
      "bar shows on stderr when it is a terminal. Ctrl-C cancels the job.\n\n"
      "Exit status: 0 when all tasks succeeded, else the number of failed\n"
      "tasks up to 100, 101 for more, 130 when interrupted, 255 for other\n"
      "errors.\n\n"
      "Examples:\n"
      "  peergrid run -- ./simulate --seed {} ::: $(seq 1000)\n"
      "  seq 100 | peergrid run -k echo task {#}: {}\n"
      "  peergrid run --kernel=sha256 ::: a b c",
      {"node/cli/run_command.cc", kClientFlagsFile, kTlsFlagsFile},
      &RunRun,
      {{"-k", "--keep-order"}},
      kExitRunError,
      /*flags_end_at_first_argument=*/true,
      /*handles_stop_signals=*/true,
  };
  return *command;
}

}  // namespace peergrid::cli
