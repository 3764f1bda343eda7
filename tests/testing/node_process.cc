#include "tests/testing/node_process.h"

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <iterator>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace peergrid::testing {

absl::StatusOr<StartLine> ParseStartLine(const std::string& line) {
  if (!absl::StartsWith(line, "peergrid node ready ")) {
    return absl::InvalidArgumentError(absl::StrCat("not a start line: ", line));
  }
  StartLine result;
  for (absl::string_view field : absl::StrSplit(line, ' ')) {
    const std::pair<std::string, std::string> kv =
        absl::StrSplit(field, absl::MaxSplits('=', 1));
    if (kv.first == "name") result.name = kv.second;
    if (kv.first == "grpc") result.grpc_address = kv.second;
    if (kv.first == "metrics") result.metrics_address = kv.second;
    if (kv.first == "version") result.version = kv.second;
  }
  if (result.name.empty() || result.grpc_address.empty() ||
      result.metrics_address.empty() || result.version.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("start line lacks a field: ", line));
  }
  return result;
}

absl::StatusOr<std::unique_ptr<NodeProcess>> NodeProcess::Start(
    std::vector<std::string> flags, const std::string& host,
    absl::Duration timeout) {
  const auto has_flag = [&](absl::string_view prefix) {
    for (const std::string& flag : flags) {
      if (absl::StartsWith(flag, prefix)) return true;
    }
    return false;
  };
  if (!has_flag("--listen"))
    flags.push_back(absl::StrCat("--listen=", host, ":0"));
  if (!has_flag("--metrics")) {
    flags.push_back(absl::StrCat("--metrics=", host, ":0"));
  }
  std::vector<std::string> argv = {PeergridBinary(), "node"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  char log_path[] = "/tmp/peergrid-node-log-XXXXXX";
  const int log_fd = mkstemp(log_path);
  if (log_fd < 0) return absl::InternalError("cannot create a log file");
  close(log_fd);
  absl::StatusOr<std::unique_ptr<Subprocess>> process =
      Subprocess::Start(argv, {}, log_path);
  if (!process.ok()) {
    unlink(log_path);
    return process.status();
  }
  absl::StatusOr<std::string> line = (*process)->ReadStdoutLine(timeout);
  if (!line.ok()) {
    std::ifstream log(log_path);
    std::string text((std::istreambuf_iterator<char>(log)),
                     std::istreambuf_iterator<char>());
    unlink(log_path);
    return absl::Status(line.status().code(),
                        absl::StrCat(line.status().message(), "; log: ", text));
  }
  absl::StatusOr<StartLine> start_line = ParseStartLine(*line);
  if (!start_line.ok()) return start_line.status();
  std::unique_ptr<NodeProcess> node(new NodeProcess());
  node->process_ = std::move(*process);
  node->start_line_ = *start_line;
  node->log_path_ = log_path;
  return node;
}

NodeProcess::~NodeProcess() {
  process_.reset();  // Kills the node if it still runs.
  if (!log_path_.empty()) unlink(log_path_.c_str());
}

std::string NodeProcess::Log() const {
  std::ifstream log(log_path_);
  return std::string((std::istreambuf_iterator<char>(log)),
                     std::istreambuf_iterator<char>());
}

absl::StatusOr<ExitStatus> NodeProcess::Stop(int signal,
                                             absl::Duration timeout) {
  process_->Signal(signal);
  return process_->Wait(timeout);
}

void StopAndPrintLogs(std::vector<std::unique_ptr<NodeProcess>>& nodes) {
  for (auto& node : nodes) {
    if (node != nullptr && node->Stop(SIGTERM, absl::Seconds(3)).ok()) {
      std::cerr << "--- " << node->start_line().name << " ---\n"
                << node->Log();
    }
  }
}

}  // namespace peergrid::testing
