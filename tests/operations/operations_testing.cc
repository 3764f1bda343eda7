#include "tests/operations/operations_testing.h"

#include <google/protobuf/util/json_util.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "tests/testing/eventually.h"
#include "tests/testing/http.h"

namespace peergrid::testing {

std::string SourcePath(const std::string& relative) {
  return absl::StrCat(PEERGRID_SOURCE_DIR, "/", relative);
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

absl::Status WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReplaceAll(std::string text,
                                       const std::string& from,
                                       const std::string& to) {
  size_t at = text.find(from);
  if (at == std::string::npos) {
    return absl::NotFoundError(absl::StrCat("'", from, "' is not there"));
  }
  while (at != std::string::npos) {
    text.replace(at, from.size(), to);
    at = text.find(from, at + to.size());
  }
  return text;
}

absl::StatusOr<google::protobuf::Value> ParseJson(const std::string& json) {
  google::protobuf::Value value;
  const auto status = google::protobuf::util::JsonStringToMessage(json, &value);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not JSON: ", std::string(status.message())));
  }
  return value;
}

const google::protobuf::Value& Field(const google::protobuf::Value& object,
                                     const std::string& name) {
  static const google::protobuf::Value* const kEmpty =
      new google::protobuf::Value();
  const auto& fields = object.struct_value().fields();
  const auto it = fields.find(name);
  return it == fields.end() ? *kEmpty : it->second;
}

TempDir::TempDir() {
  char pattern[] = "/tmp/peergrid-ops-XXXXXX";
  const char* made = mkdtemp(pattern);
  path_ = made == nullptr ? "" : made;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

absl::StatusOr<int> FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket");
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    close(fd);
    return absl::InternalError("bind 127.0.0.1:0");
  }
  close(fd);
  return ntohs(address.sin_port);
}

std::set<std::string> SeriesNames(const std::string& exposition) {
  std::set<std::string> names;
  for (absl::string_view line : absl::StrSplit(exposition, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const size_t end = line.find_first_of("{ ");
    names.insert(std::string(line.substr(0, end)));
  }
  return names;
}

std::set<std::string> MetricNamesIn(const std::string& promql) {
  // Grouping clauses list label names only; drop them first.
  static const std::regex kGrouping(
      R"(\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\))");
  const std::string expression = std::regex_replace(promql, kGrouping, " ");
  static const std::regex kName(R"(peergrid_[A-Za-z0-9_:]*)");
  std::set<std::string> names;
  for (auto it =
           std::sregex_iterator(expression.begin(), expression.end(), kName);
       it != std::sregex_iterator(); ++it) {
    size_t after = static_cast<size_t>(it->position() + it->length());
    while (after < expression.size() &&
           std::isspace(static_cast<unsigned char>(expression[after]))) {
      ++after;
    }
    const bool label =
        after < expression.size() &&
        (expression[after] == '=' ||
         (expression[after] == '!' && after + 1 < expression.size() &&
          (expression[after + 1] == '=' || expression[after + 1] == '~')));
    if (!label) names.insert(it->str());
  }
  return names;
}

std::string UrlEncode(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      static const char kHex[] = "0123456789ABCDEF";
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<PrometheusServer>> PrometheusServer::Start(
    const std::string& config_path, const std::string& dir,
    absl::Duration timeout) {
  if (access(kBinary, X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no ", kBinary, ": install Debian's prometheus (deploy/setup)"));
  }
  absl::StatusOr<int> port = FreeLoopbackPort();
  if (!port.ok()) return port.status();
  auto server = std::unique_ptr<PrometheusServer>(new PrometheusServer());
  server->address_ = absl::StrCat("127.0.0.1:", *port);
  server->log_path_ = dir + "/prometheus.log";
  absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Start(
      {kBinary, absl::StrCat("--config.file=", config_path),
       absl::StrCat("--storage.tsdb.path=", dir, "/data"),
       absl::StrCat("--web.listen-address=", server->address_),
       "--log.level=info"},
      {}, server->log_path_);
  if (!process.ok()) return process.status();
  server->process_ = std::move(*process);
  const ::testing::AssertionResult ready = Eventually(
      [&]() -> ::testing::AssertionResult {
        absl::StatusOr<HttpResponse> response =
            HttpGet(server->address_, "/-/ready", absl::Seconds(1));
        if (response.ok() && response->status == 200) {
          return ::testing::AssertionSuccess();
        }
        return ::testing::AssertionFailure() << "Prometheus not ready";
      },
      timeout, absl::Milliseconds(100));
  if (!ready) {
    return absl::DeadlineExceededError(
        absl::StrCat(ready.message(), "\n", server->Log()));
  }
  return server;
}

PrometheusServer::~PrometheusServer() {
  if (process_ != nullptr) (void)Stop(absl::Seconds(5));
}

absl::StatusOr<google::protobuf::Value> PrometheusServer::Api(
    const std::string& path) const {
  absl::StatusOr<HttpResponse> response =
      HttpGet(address_, path, absl::Seconds(5));
  if (!response.ok()) return response.status();
  absl::StatusOr<google::protobuf::Value> json = ParseJson(response->body);
  if (response->status != 200 || !json.ok() ||
      Field(*json, "status").string_value() != "success") {
    return absl::InternalError(absl::StrCat(
        "GET ", path, ": HTTP ", response->status, ": ", response->body));
  }
  return json;
}

absl::StatusOr<google::protobuf::Value> PrometheusServer::Query(
    const std::string& promql) const {
  absl::StatusOr<google::protobuf::Value> answer =
      Api(absl::StrCat("/api/v1/query?query=", UrlEncode(promql)));
  if (!answer.ok()) return answer.status();
  return Field(*answer, "data");
}

std::string PrometheusServer::Log() const {
  return ReadFile(log_path_).value_or("");
}

absl::Status PrometheusServer::Stop(absl::Duration timeout) {
  if (process_ == nullptr) return absl::OkStatus();
  process_->Signal(SIGTERM);
  absl::StatusOr<ExitStatus> status = process_->Wait(timeout);
  process_.reset();  // Kills it if it is still running.
  return status.status();
}

}  // namespace peergrid::testing
