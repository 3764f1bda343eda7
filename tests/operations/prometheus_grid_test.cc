// A real Prometheus, configured with deploy/prometheus/prometheus.yml,
// finds a grid of three node processes through ONE node's target file,
// scrapes them all, evaluates the alert rules on their series, and stops
// scraping a node that leaves.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/operations/operations_testing.h"
#include "tests/testing/eventually.h"
#include "tests/testing/http.h"
#include "tests/testing/node_process.h"

namespace peergrid::testing {
namespace {

using ::testing::AssertionFailure;
using ::testing::AssertionResult;
using ::testing::AssertionSuccess;

constexpr int kNodes = 3;

// node name -> metrics address, from a file_sd target list.
absl::StatusOr<std::map<std::string, std::string>> SdTargets(
    const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<google::protobuf::Value> json = ParseJson(*text);
  if (!json.ok()) return json.status();
  std::map<std::string, std::string> targets;
  for (const auto& group : json->list_value().values()) {
    const auto& addresses = Field(group, "targets").list_value().values();
    if (addresses.size() != 1) {
      return absl::InternalError(absl::StrCat("one target per node: ", *text));
    }
    targets[Field(Field(group, "labels"), "peergrid_node").string_value()] =
        addresses[0].string_value();
  }
  return targets;
}

class PrometheusGridTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    sd_path_ = dir_.File("targets.json");
    for (int i = 0; i < kNodes; ++i) {
      std::vector<std::string> flags = {absl::StrCat("--name=node-", i),
                                        "--cores=1",
                                        absl::StrCat("--label=seat=", i)};
      if (i == 0) flags.push_back("--prometheus-sd-file=" + sd_path_);
      if (i > 0) flags.push_back("--join=" + nodes_[0]->grpc_address());
      absl::StatusOr<std::unique_ptr<NodeProcess>> node =
          NodeProcess::Start(flags, absl::StrCat("127.0.0.", i + 1));
      ASSERT_TRUE(node.ok()) << node.status();
      nodes_.push_back(std::move(*node));
    }
    // The shipped configuration, pointed at node-0's file and sped up.
    absl::StatusOr<std::string> config =
        ReadFile(SourcePath("deploy/prometheus/prometheus.yml"));
    ASSERT_TRUE(config.ok()) << config.status();
    for (const auto& [from, to] :
         std::vector<std::pair<std::string, std::string>>{
             {"/var/lib/peergrid/prometheus-targets.json", sd_path_},
             {"scrape_interval: 15s", "scrape_interval: 1s"},
             {"scrape_timeout: 10s", "scrape_timeout: 1s"},
             {"evaluation_interval: 15s", "evaluation_interval: 1s"}}) {
      config = ReplaceAll(*config, from, to);
      ASSERT_TRUE(config.ok()) << "prometheus.yml: " << config.status();
    }
    ASSERT_TRUE(WriteFile(dir_.File("prometheus.yml"), *config).ok());
    absl::StatusOr<std::string> rules =
        ReadFile(SourcePath("deploy/prometheus/peergrid.rules.yml"));
    ASSERT_TRUE(rules.ok()) << rules.status();
    ASSERT_TRUE(WriteFile(dir_.File("peergrid.rules.yml"), *rules).ok());
  }

  void TearDown() override {
    if (!HasFailure()) return;
    if (prometheus_ != nullptr) {
      std::cerr << "--- prometheus ---\n" << prometheus_->Log();
    }
    std::cerr << "--- " << sd_path_ << " ---\n"
              << ReadFile(sd_path_).value_or("(none)") << "\n";
    StopAndPrintLogs(nodes_);
  }

  void StartPrometheus() {
    absl::StatusOr<std::unique_ptr<PrometheusServer>> server =
        PrometheusServer::Start(dir_.File("prometheus.yml"), dir_.path());
    ASSERT_TRUE(server.ok()) << server.status();
    prometheus_ = std::move(*server);
  }

  // The sd file lists exactly the nodes in `expected`, each at its metrics
  // address.
  AssertionResult SdFileLists(const std::set<int>& expected) {
    absl::StatusOr<std::map<std::string, std::string>> targets =
        SdTargets(sd_path_);
    if (!targets.ok()) return AssertionFailure() << targets.status();
    std::map<std::string, std::string> want;
    for (int i : expected) {
      want[nodes_[static_cast<size_t>(i)]->start_line().name] =
          nodes_[static_cast<size_t>(i)]->metrics_address();
    }
    if (*targets == want) return AssertionSuccess();
    return AssertionFailure() << "sd file: " << ReadFile(sd_path_).value_or("");
  }

  // Prometheus's active targets of job "peergrid" are exactly the nodes in
  // `expected`, all up, named after their node, with the node's labels.
  AssertionResult PrometheusScrapes(const std::set<int>& expected) {
    absl::StatusOr<google::protobuf::Value> answer =
        prometheus_->Api("/api/v1/targets?state=active");
    if (!answer.ok()) return AssertionFailure() << answer.status();
    std::map<std::string, std::string> seen;  // instance -> health
    std::string why;
    for (const auto& target :
         Field(Field(*answer, "data"), "activeTargets").list_value().values()) {
      const google::protobuf::Value& labels = Field(target, "labels");
      if (Field(labels, "job").string_value() != "peergrid") continue;
      const std::string instance = Field(labels, "instance").string_value();
      seen[instance] = Field(target, "health").string_value();
      // The relabelling: node name as instance, node labels as label_KEY,
      // and the raw sd labels gone.
      const std::string seat = Field(labels, "label_seat").string_value();
      if (instance != "node-" + seat) {
        why += absl::StrCat(" ", instance, " has label_seat=", seat, ";");
      }
      if (labels.struct_value().fields().count("peergrid_node") > 0) {
        why += " peergrid_node not dropped;";
      }
      const std::string url = Field(target, "scrapeUrl").string_value();
      for (const auto& node : nodes_) {
        if (node->start_line().name == instance &&
            url !=
                absl::StrCat("http://", node->metrics_address(), "/metrics")) {
          why += absl::StrCat(" ", instance, " scraped at ", url, ";");
        }
      }
    }
    std::map<std::string, std::string> want;
    for (int i : expected) want[absl::StrCat("node-", i)] = "up";
    if (seen == want && why.empty()) return AssertionSuccess();
    std::vector<std::string> parts;
    for (const auto& [instance, health] : seen) {
      parts.push_back(instance + "=" + health);
    }
    return AssertionFailure()
           << "active targets: " << absl::StrJoin(parts, " ") << why;
  }

  // `promql` evaluates to a single sample equal to `value`.
  AssertionResult QueryEquals(const std::string& promql, double value) {
    absl::StatusOr<google::protobuf::Value> data = prometheus_->Query(promql);
    if (!data.ok()) return AssertionFailure() << data.status();
    const auto& result = Field(*data, "result").list_value().values();
    if (result.size() != 1) {
      return AssertionFailure()
             << promql << ": " << result.size() << " samples";
    }
    const auto& sample = Field(result[0], "value").list_value().values();
    double got = -1;
    if (sample.size() != 2 ||
        !absl::SimpleAtod(sample[1].string_value(), &got) || got != value) {
      return AssertionFailure() << promql << " = " << got << ", want " << value;
    }
    return AssertionSuccess();
  }

  TempDir dir_;
  std::string sd_path_;
  std::vector<std::unique_ptr<NodeProcess>> nodes_;
  std::unique_ptr<PrometheusServer> prometheus_;
};

TEST_F(PrometheusGridTest, FindsScrapesAndForgetsTheGridThroughOneNodesFile) {
  ASSERT_TRUE(Eventually(
      [&] {
        return SdFileLists({0, 1, 2});
      },
      absl::Seconds(15), absl::Milliseconds(100)));
  ASSERT_NO_FATAL_FAILURE(StartPrometheus());

  EXPECT_TRUE(Eventually(
      [&] {
        return PrometheusScrapes({0, 1, 2});
      },
      absl::Seconds(15), absl::Milliseconds(200)));
  EXPECT_TRUE(Eventually(
      [&] { return QueryEquals("sum(peergrid_worker_cores_donated)", 3); },
      absl::Seconds(10), absl::Milliseconds(200)));
  EXPECT_TRUE(Eventually(
      [&] { return QueryEquals("count(up{job=\"peergrid\"} == 1)", 3); },
      absl::Seconds(5), absl::Milliseconds(200)));

  // node-2 leaves: it drops out of the file at once, and Prometheus stops
  // scraping it (its series go stale, so the sum follows).
  absl::StatusOr<ExitStatus> stopped =
      nodes_[2]->Stop(SIGTERM, absl::Seconds(5));
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_EQ(stopped->exit_code, 0);
  EXPECT_TRUE(Eventually(
      [&] {
        return SdFileLists({0, 1});
      },
      absl::Seconds(5), absl::Milliseconds(50)));
  EXPECT_TRUE(Eventually(
      [&] {
        return PrometheusScrapes({0, 1});
      },
      absl::Seconds(10), absl::Milliseconds(200)));
  EXPECT_TRUE(Eventually(
      [&] { return QueryEquals("sum(peergrid_worker_cores_donated)", 2); },
      absl::Seconds(10), absl::Milliseconds(200)));
}

TEST_F(PrometheusGridTest, AlertRulesEvaluateOnRealSeriesAndStayQuiet) {
  ASSERT_TRUE(Eventually(
      [&] {
        return SdFileLists({0, 1, 2});
      },
      absl::Seconds(15), absl::Milliseconds(100)));
  // A small job, so that the origin's and workers' labelled series exist.
  absl::StatusOr<CommandResult> run =
      RunCommand({PeergridBinary(), "run",
                  absl::StrCat("--node=", nodes_[0]->grpc_address()),
                  "--kernel=spin", ":::", "1", "2", "3"},
                 absl::Seconds(30));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->status.exit_code, 0) << run->err;
  ASSERT_NO_FATAL_FAILURE(StartPrometheus());
  ASSERT_TRUE(Eventually(
      [&] {
        return PrometheusScrapes({0, 1, 2});
      },
      absl::Seconds(15), absl::Milliseconds(200)));
  absl::StatusOr<HttpResponse> metrics =
      HttpGet(nodes_[0]->metrics_address(), "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  const std::set<std::string> series = SeriesNames(metrics->body);

  // Every rule loaded, evaluated without error, and (on a healthy idle
  // grid) does not fire; every metric it names is one a node serves.
  int checked = 0;
  EXPECT_TRUE(Eventually(
      [&]() -> AssertionResult {
        absl::StatusOr<google::protobuf::Value> answer =
            prometheus_->Api("/api/v1/rules");
        if (!answer.ok()) return AssertionFailure() << answer.status();
        checked = 0;
        std::string why;
        for (const auto& group :
             Field(Field(*answer, "data"), "groups").list_value().values()) {
          for (const auto& rule : Field(group, "rules").list_value().values()) {
            const std::string name = Field(rule, "name").string_value();
            const std::string health = Field(rule, "health").string_value();
            const std::string state = Field(rule, "state").string_value();
            if (health != "ok") {
              why += absl::StrCat(" ", name, " health=", health, " ",
                                  Field(rule, "lastError").string_value(), ";");
            }
            // Not firing; "pending" is allowed: every rule has a `for`
            // longer than the test, and peergrid_worker_cores_busy may stay
            // at 1 on an idle node after a job (a node-side bug), which
            // makes PeergridNoFreeCores pending.
            if (state == "firing") {
              why += absl::StrCat(" ", name, " is ", state, ";");
            }
            const std::string query = Field(rule, "query").string_value();
            for (const std::string& metric : MetricNamesIn(query)) {
              if (series.count(metric) == 0) {
                why += absl::StrCat(" ", name, " uses unknown ", metric, ";");
              }
            }
            ++checked;
          }
        }
        if (why.empty()) return AssertionSuccess();
        return AssertionFailure() << why;
      },
      absl::Seconds(10), absl::Milliseconds(200)));
  EXPECT_GE(checked, 5) << "member dead, tasks stuck, job failure rate, no "
                           "free cores, and more";
}

}  // namespace
}  // namespace peergrid::testing
