// Fixtures for the operations tests: the repository's deploy/ files, a
// temporary directory, JSON parsing, and a real Prometheus server started on
// 127.0.0.1 with its own data directory and stopped by its PID.
#ifndef PEERGRID_TESTS_OPERATIONS_OPERATIONS_TESTING_H_
#define PEERGRID_TESTS_OPERATIONS_OPERATIONS_TESTING_H_

#include <google/protobuf/struct.pb.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/testing/subprocess.h"

namespace peergrid::testing {

// A file of the source tree, e.g. "deploy/prometheus/prometheus.yml".
std::string SourcePath(const std::string& relative);

absl::StatusOr<std::string> ReadFile(const std::string& path);
absl::Status WriteFile(const std::string& path, const std::string& content);

// Replaces every `from` in `text` by `to`; an error when there is none, so
// that a test never silently runs on a file it failed to adapt.
absl::StatusOr<std::string> ReplaceAll(std::string text,
                                       const std::string& from,
                                       const std::string& to);

// Any JSON document (object, list...) as a protobuf Value.
absl::StatusOr<google::protobuf::Value> ParseJson(const std::string& json);

// The field `name` of a JSON object (an empty Value when absent).
const google::protobuf::Value& Field(const google::protobuf::Value& object,
                                     const std::string& name);

// A directory under /tmp, removed with its content on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
absl::StatusOr<int> FreeLoopbackPort();

// The names of the series in Prometheus text exposition format (histograms
// show as NAME_bucket, NAME_sum and NAME_count).
std::set<std::string> SeriesNames(const std::string& exposition);

// The metric names a PromQL expression refers to: identifiers starting with
// "peergrid_" that are not label names (not followed by =, !=, =~ or !~, and
// not inside by(...) / without(...) / on(...) / ignoring(...)).
std::set<std::string> MetricNamesIn(const std::string& promql);

// `prometheus` from the Debian package, started by the test.
class PrometheusServer {
 public:
  static constexpr const char* kBinary = "/usr/bin/prometheus";

  // Starts Prometheus with `config_path`, its data in `dir`/data, serving
  // on a free port of 127.0.0.1, and waits up to `timeout` until it is
  // ready.
  static absl::StatusOr<std::unique_ptr<PrometheusServer>> Start(
      const std::string& config_path, const std::string& dir,
      absl::Duration timeout = absl::Seconds(20));
  ~PrometheusServer();

  const std::string& address() const { return address_; }
  // GETs `path` (e.g. "/api/v1/targets") and parses the JSON answer; an
  // error unless HTTP 200 and "status": "success".
  absl::StatusOr<google::protobuf::Value> Api(const std::string& path) const;
  // An instant query; the answer's "data" field.
  absl::StatusOr<google::protobuf::Value> Query(
      const std::string& promql) const;
  // What Prometheus logged so far.
  std::string Log() const;
  // SIGTERM, then waits up to `timeout` for it to exit.
  absl::Status Stop(absl::Duration timeout = absl::Seconds(10));

 private:
  std::unique_ptr<Subprocess> process_;
  std::string address_;
  std::string log_path_;
};

// Percent-encodes `text` for a URL query.
std::string UrlEncode(const std::string& text);

}  // namespace peergrid::testing

#endif  // PEERGRID_TESTS_OPERATIONS_OPERATIONS_TESTING_H_
