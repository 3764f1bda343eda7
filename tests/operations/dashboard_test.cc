// deploy/grafana/peergrid-dashboard.json: it parses, it is importable (a
// datasource input, unique panel ids), it shows what operators need, every
// metric it queries is one a running node serves, and every query is
// PromQL that a real Prometheus evaluates.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

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
using ::testing::Contains;
using ::testing::IsSupersetOf;

constexpr char kDashboard[] = "deploy/grafana/peergrid-dashboard.json";

// Every PromQL string of the dashboard: panel targets' "expr" and template
// variables' queries.
void CollectQueries(const google::protobuf::Value& value,
                    std::vector<std::string>& queries) {
  if (value.has_list_value()) {
    for (const auto& item : value.list_value().values()) {
      CollectQueries(item, queries);
    }
    return;
  }
  if (!value.has_struct_value()) return;
  for (const auto& [key, field] : value.struct_value().fields()) {
    if (key == "expr" && field.has_string_value()) {
      queries.push_back(field.string_value());
    } else {
      CollectQueries(field, queries);
    }
  }
}

google::protobuf::Value LoadDashboard() {
  absl::StatusOr<std::string> text = ReadFile(SourcePath(kDashboard));
  EXPECT_TRUE(text.ok()) << text.status();
  absl::StatusOr<google::protobuf::Value> json = ParseJson(text.value_or(""));
  EXPECT_TRUE(json.ok()) << kDashboard << ": " << json.status();
  return json.value_or(google::protobuf::Value());
}

// The metric names the dashboard queries, variables included.
std::set<std::string> DashboardMetrics(const google::protobuf::Value& dash) {
  std::vector<std::string> queries;
  CollectQueries(dash, queries);
  std::set<std::string> metrics;
  for (const std::string& query : queries) {
    metrics.merge(MetricNamesIn(query));
  }
  for (const auto& variable :
       Field(Field(dash, "templating"), "list").list_value().values()) {
    metrics.merge(MetricNamesIn(Field(variable, "definition").string_value()));
    metrics.merge(
        MetricNamesIn(Field(Field(variable, "query"), "query").string_value()));
  }
  return metrics;
}

// A query as Grafana sends it, its variables filled in.
std::string Expand(std::string query) {
  for (const auto& [from, to] :
       std::vector<std::pair<std::string, std::string>>{
           {"$__rate_interval", "1m"}, {"$instance", ".*"}}) {
    query = ReplaceAll(query, from, to).value_or(query);
  }
  return query;
}

TEST(DashboardFileTest, IsImportableAndShowsWhatOperatorsNeed) {
  const google::protobuf::Value dash = LoadDashboard();
  EXPECT_EQ(Field(dash, "title").string_value(), "peergrid");
  EXPECT_FALSE(Field(dash, "uid").string_value().empty());
  // Importable anywhere: the datasource is an input chosen at import.
  const auto& inputs = Field(dash, "__inputs").list_value().values();
  ASSERT_EQ(inputs.size(), 1);
  EXPECT_EQ(Field(inputs[0], "name").string_value(), "DS_PROMETHEUS");
  EXPECT_EQ(Field(inputs[0], "pluginId").string_value(), "prometheus");

  std::set<double> ids;
  int panels = 0;
  for (const auto& panel : Field(dash, "panels").list_value().values()) {
    ++panels;
    EXPECT_TRUE(ids.insert(Field(panel, "id").number_value()).second)
        << "duplicate panel id " << Field(panel, "id").number_value();
    EXPECT_FALSE(Field(panel, "title").string_value().empty());
    if (Field(panel, "type").string_value() == "row") continue;
    EXPECT_EQ(Field(Field(panel, "datasource"), "uid").string_value(),
              "${DS_PROMETHEUS}")
        << Field(panel, "title").string_value();
    EXPECT_FALSE(Field(panel, "targets").list_value().values().empty())
        << Field(panel, "title").string_value();
  }
  EXPECT_GE(panels, 15);

  // What the issue asks to see: cores donated, busy and free per node; task
  // rate and outcomes; task duration and result round trip quantiles; queue
  // depths; members by state; gossip traffic.
  EXPECT_THAT(
      DashboardMetrics(dash),
      IsSupersetOf(
          {"peergrid_worker_cores_donated", "peergrid_worker_cores_busy",
           "peergrid_worker_tasks_finished_total",
           "peergrid_origin_tasks_finished_total",
           "peergrid_worker_task_duration_seconds_bucket",
           "peergrid_origin_result_round_trip_seconds_bucket",
           "peergrid_worker_tasks_queued", "peergrid_origin_tasks_pending",
           "peergrid_members", "peergrid_gossip_messages_total",
           "peergrid_gossip_bytes_total"}));
  std::vector<std::string> queries;
  CollectQueries(dash, queries);
  EXPECT_THAT(queries,
              Contains(::testing::HasSubstr("histogram_quantile(0.99")));
}

class DashboardOnANodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    absl::StatusOr<std::unique_ptr<NodeProcess>> node = NodeProcess::Start(
        {"--name=dashboard-node", "--cores=1",
         "--prometheus-sd-file=" + dir_.File("targets.json")});
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
    // A small job, so that the task and origin series have samples.
    absl::StatusOr<CommandResult> run =
        RunCommand({PeergridBinary(), "run",
                    absl::StrCat("--node=", node_->grpc_address()),
                    "--kernel=spin", ":::", "1", "2", "3"},
                   absl::Seconds(30));
    ASSERT_TRUE(run.ok()) << run.status();
    ASSERT_EQ(run->status.exit_code, 0) << run->err;
  }

  void TearDown() override {
    if (HasFailure() && prometheus_ != nullptr) {
      std::cerr << "--- prometheus ---\n" << prometheus_->Log();
    }
  }

  TempDir dir_;
  std::unique_ptr<NodeProcess> node_;
  std::unique_ptr<PrometheusServer> prometheus_;
};

TEST_F(DashboardOnANodeTest, EveryMetricItQueriesIsServedByTheNode) {
  absl::StatusOr<HttpResponse> metrics =
      HttpGet(node_->metrics_address(), "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  ASSERT_EQ(metrics->status, 200);
  const std::set<std::string> served = SeriesNames(metrics->body);
  const std::set<std::string> queried = DashboardMetrics(LoadDashboard());
  ASSERT_GE(queried.size(), 20u);
  for (const std::string& metric : queried) {
    EXPECT_TRUE(served.count(metric) > 0) << "the dashboard queries " << metric
                                          << ", which the node does not serve";
  }
}

TEST_F(DashboardOnANodeTest, EveryQueryEvaluatesInARealPrometheus) {
  absl::StatusOr<std::string> config =
      ReadFile(SourcePath("deploy/prometheus/prometheus.yml"));
  ASSERT_TRUE(config.ok()) << config.status();
  config = ReplaceAll(*config, "/var/lib/peergrid/prometheus-targets.json",
                      dir_.File("targets.json"));
  ASSERT_TRUE(config.ok()) << config.status();
  for (const auto& [from, to] :
       std::vector<std::pair<std::string, std::string>>{
           {"scrape_interval: 15s", "scrape_interval: 1s"},
           {"scrape_timeout: 10s", "scrape_timeout: 1s"},
           {"  - peergrid.rules.yml\n", ""}}) {
    config = ReplaceAll(*config, from, to);
    ASSERT_TRUE(config.ok()) << config.status();
  }
  ASSERT_TRUE(WriteFile(dir_.File("prometheus.yml"), *config).ok());
  absl::StatusOr<std::unique_ptr<PrometheusServer>> server =
      PrometheusServer::Start(dir_.File("prometheus.yml"), dir_.path());
  ASSERT_TRUE(server.ok()) << server.status();
  prometheus_ = std::move(*server);

  // Once the node is scraped, the variable's query finds it by name...
  ASSERT_TRUE(Eventually(
      [&]() -> AssertionResult {
        absl::StatusOr<google::protobuf::Value> values =
            prometheus_->Api("/api/v1/label/instance/values");
        if (!values.ok()) return AssertionFailure() << values.status();
        for (const auto& value : Field(*values, "data").list_value().values()) {
          if (value.string_value() == "dashboard-node") {
            return AssertionSuccess();
          }
        }
        return AssertionFailure() << "dashboard-node not scraped yet";
      },
      absl::Seconds(15), absl::Milliseconds(200)));

  // Two scrapes, so that rate() has something to work with.
  ASSERT_TRUE(Eventually(
      [&]() -> AssertionResult {
        absl::StatusOr<google::protobuf::Value> data =
            prometheus_->Query("count_over_time(peergrid_build_info[1m]) >= 2");
        if (!data.ok()) return AssertionFailure() << data.status();
        if (Field(*data, "result").list_value().values().empty()) {
          return AssertionFailure() << "fewer than two scrapes";
        }
        return AssertionSuccess();
      },
      absl::Seconds(15), absl::Milliseconds(200)));

  // ...and every panel's query is valid PromQL; most have data.
  std::vector<std::string> queries;
  CollectQueries(LoadDashboard(), queries);
  int with_data = 0;
  for (const std::string& query : queries) {
    absl::StatusOr<google::protobuf::Value> data =
        prometheus_->Query(Expand(query));
    EXPECT_TRUE(data.ok()) << query << ": " << data.status();
    if (data.ok() && !Field(*data, "result").list_value().values().empty()) {
      ++with_data;
    }
  }
  EXPECT_GE(with_data, static_cast<int>(queries.size()) / 2)
      << "most queries should find the node's series";
}

}  // namespace
}  // namespace peergrid::testing
