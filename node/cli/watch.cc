#include "node/cli/watch.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace peergrid::cli {
namespace {

void WriteAll(FILE* out, const std::string& data) {
  if (!data.empty()) std::fwrite(data.data(), 1, data.size(), out);
}

std::string FailureReason(const v1::TaskResult& result) {
  if (!result.reason().empty()) return result.reason();
  if (result.signal() != 0) {
    return absl::StrCat("killed by signal ", result.signal());
  }
  return absl::StrCat("exit status ", result.exit_code());
}

absl::Status WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

absl::Status MakeDirs(const std::string& path) {
  std::string prefix;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || (path[i] == '/' && i > 0)) {
      prefix = path.substr(0, i);
      if (mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
        return absl::InternalError(
            absl::StrCat("cannot create ", prefix, ": ", strerror(errno)));
      }
    }
  }
  return absl::OkStatus();
}

// Prints results as they come, in order with -k, and keeps the progress
// bar on stderr out of the way of everything else.
class Printer {
 public:
  explicit Printer(const OutputOptions& options)
      : options_(options), start_(absl::Now()) {}

  void Add(const v1::TaskResult& result) {
    if (!options_.keep_order) {
      Print(result);
      return;
    }
    held_.emplace(result.index(), result);
    while (!held_.empty() && held_.begin()->first == next_in_order_) {
      Print(held_.begin()->second);
      held_.erase(held_.begin());
      ++next_in_order_;
    }
  }

  // Prints what -k still holds back (tasks before them never came).
  void Flush() {
    for (const auto& [index, result] : held_) Print(result);
    held_.clear();
    ClearBar();
  }

  void Progress(const v1::JobStatus& status, bool force = false) {
    if (!options_.progress) return;
    const absl::Time now = absl::Now();
    if (!force && now - last_bar_ < absl::Milliseconds(100)) return;
    last_bar_ = now;
    const uint64_t done = status.tasks_succeeded() + status.tasks_failed();
    const uint64_t total = std::max<uint64_t>(status.tasks_total(), 1);
    const double seconds = std::max(absl::ToDoubleSeconds(now - start_), 1e-3);
    const double rate = static_cast<double>(done) / seconds;
    std::string eta = "?";
    if (rate > 0 && done < total) {
      eta = absl::StrFormat("%.0fs", static_cast<double>(total - done) / rate);
    } else if (done >= total) {
      eta = "0s";
    }
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(kWidth * done / total);
    bar_ = absl::StrFormat(
        "[%s%s] %d/%d done, %d failed, %d running, %.1f/s, ETA %s",
        std::string(static_cast<size_t>(filled), '='),
        std::string(static_cast<size_t>(kWidth - filled), ' '), done,
        status.tasks_total(), status.tasks_failed(), status.tasks_running(),
        rate, eta);
    std::fprintf(stderr, "\r\033[K%s", bar_.c_str());
    std::fflush(stderr);
  }

 private:
  void ClearBar() {
    if (!bar_.empty()) {
      std::fprintf(stderr, "\r\033[K");
      std::fflush(stderr);
      bar_.clear();
    }
  }

  std::string Value(uint64_t index) const {
    return index < options_.values.size() ? options_.values[index] : "";
  }

  void Print(const v1::TaskResult& result) {
    ClearBar();
    const uint64_t number = result.index() + 1;  // {#} counts from 1.
    if (options_.json) {
      std::string json;
      google::protobuf::util::JsonPrintOptions json_options;
      json_options.always_print_primitive_fields = false;
      (void)google::protobuf::util::MessageToJsonString(result, &json,
                                                        json_options);
      json += "\n";
      WriteAll(stdout, json);
    } else {
      WriteAll(stdout, result.stdout());
      // A kernel's bytes get a line of their own, as a command's echo would.
      WriteAll(stdout, result.output());
      if (!result.output().empty() && result.output().back() != '\n') {
        WriteAll(stdout, "\n");
      }
      WriteAll(stderr, result.stderr());
    }
    std::fflush(stdout);
    if (result.stdout_truncated() || result.stderr_truncated()) {
      std::fprintf(stderr,
                   "peergrid: task %llu: output cut (stdout %llu bytes, "
                   "stderr %llu bytes in all)\n",
                   static_cast<unsigned long long>(number),
                   static_cast<unsigned long long>(result.stdout_bytes()),
                   static_cast<unsigned long long>(result.stderr_bytes()));
    }
    if (result.outcome() != v1::TASK_OUTCOME_SUCCEEDED) {
      const std::string value = Value(result.index());
      std::fprintf(stderr, "peergrid: task %llu%s failed on %s: %s\n",
                   static_cast<unsigned long long>(number),
                   value.empty() ? "" : absl::StrCat(" (", value, ")").c_str(),
                   result.node().empty() ? "?" : result.node().c_str(),
                   FailureReason(result).c_str());
    }
    std::fflush(stderr);
    if (!options_.results_dir.empty()) SaveResult(result, number);
  }

  void SaveResult(const v1::TaskResult& result, uint64_t number) {
    const std::string dir = absl::StrCat(options_.results_dir, "/", number);
    absl::Status status = MakeDirs(dir);
    if (status.ok())
      status = WriteFile(dir + "/stdout", result.stdout() + result.output());
    if (status.ok()) status = WriteFile(dir + "/stderr", result.stderr());
    if (status.ok()) {
      status = WriteFile(dir + "/exit", absl::StrCat(result.exit_code(), "\n"));
    }
    for (const v1::OutputFile& file : result.output_files()) {
      if (!status.ok()) break;
      const std::string path = dir + "/files/" + file.path();
      status = MakeDirs(path.substr(0, path.rfind('/')));
      if (status.ok()) status = WriteFile(path, file.data());
    }
    if (!status.ok()) {
      std::fprintf(stderr, "peergrid: --results: %s\n",
                   std::string(status.message()).c_str());
    }
  }

  const OutputOptions& options_;
  const absl::Time start_;
  std::map<uint64_t, v1::TaskResult> held_;
  uint64_t next_in_order_ = 0;
  absl::Time last_bar_ = absl::InfinitePast();
  std::string bar_;
};

}  // namespace

absl::StatusOr<WatchOutcome> WatchAndPrint(
    v1::Jobs::Stub& stub, const std::string& job_id, uint64_t from,
    const OutputOptions& options,
    const std::function<void(uint64_t next)>& advanced,
    grpc::ClientContext& context) {
  v1::WatchRequest request;
  request.set_job_id(job_id);
  request.set_from_result(from);
  std::unique_ptr<grpc::ClientReader<v1::WatchEvent>> reader =
      stub.Watch(&context, request);
  Printer printer(options);
  WatchOutcome outcome;
  outcome.next = from;
  v1::WatchEvent event;
  while (reader->Read(&event)) {
    if (event.has_result()) {
      printer.Add(event.result());
      outcome.next = event.result_number() + 1;
      if (advanced) advanced(outcome.next);
    }
    outcome.status = event.status();
    printer.Progress(event.status());
  }
  printer.Progress(outcome.status, /*force=*/true);
  printer.Flush();
  const grpc::Status status = reader->Finish();
  const v1::JobState state = outcome.status.state();
  outcome.finished = state == v1::JOB_STATE_DONE ||
                     state == v1::JOB_STATE_FAILED ||
                     state == v1::JOB_STATE_CANCELLED;
  if (!status.ok() && !outcome.finished) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        status.error_message());
  }
  return outcome;
}

int ExitStatusFor(const v1::JobStatus& status) {
  const uint64_t failed = status.tasks_failed();
  if (failed == 0 && status.state() == v1::JOB_STATE_DONE) return 0;
  if (failed == 0) return 1;  // Cancelled, or ended without every result.
  return failed > 100 ? 101 : static_cast<int>(failed);
}

StopSignals::StopSignals(std::function<void(int signal)> on_signal) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGUSR1);  // Only to wake the thread at destruction.
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  thread_ = std::thread([this, signals, on_signal = std::move(on_signal)] {
    int signal_number = 0;
    sigwait(&signals, &signal_number);
    if (stopping_.load()) return;
    received_ = true;
    on_signal(signal_number);
  });
}

StopSignals::~StopSignals() {
  stopping_ = true;
  pthread_kill(thread_.native_handle(), SIGUSR1);
  thread_.join();
}

}  // namespace peergrid::cli
