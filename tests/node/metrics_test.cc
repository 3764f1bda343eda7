// A node's /metrics endpoint, read over HTTP as Prometheus would.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/machine.h"
#include "common/version.h"
#include "tests/testing/eventually.h"
#include "tests/testing/http.h"
#include "tests/testing/node_process.h"

namespace peergrid::testing {
namespace {

using ::testing::HasSubstr;

// The value of the sample line that starts with `series` ("name{labels}").
std::optional<double> Sample(const std::string& text,
                             const std::string& series) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(line, series + " ")) {
      double value = 0;
      if (absl::SimpleAtod(line.substr(series.size() + 1), &value))
        return value;
    }
  }
  return std::nullopt;
}

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<NodeProcess>> node =
        NodeProcess::Start({"--name=metered", "--cores=1"});
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
  }

  std::string Scrape() {
    absl::StatusOr<HttpResponse> response =
        HttpGet(node_->metrics_address(), "/metrics");
    EXPECT_TRUE(response.ok()) << response.status();
    if (!response.ok()) return "";
    EXPECT_EQ(response->status, 200);
    return response->body;
  }

  std::unique_ptr<NodeProcess> node_;
};

TEST_F(MetricsTest, ExposesBuildMachineAndDonation) {
  const std::string text = Scrape();
  EXPECT_EQ(Sample(text, absl::StrCat("peergrid_build_info{version=\"",
                                      Version(), "\"}")),
            1.0);
  EXPECT_EQ(Sample(text, "peergrid_machine_cores"), MachineCores());
  EXPECT_EQ(Sample(text, "peergrid_worker_cores_donated"), 1.0);
}

TEST_F(MetricsTest, ExposesProcessMetrics) {
  const std::string text = Scrape();
  const std::optional<double> resident =
      Sample(text, "peergrid_process_resident_memory_bytes");
  ASSERT_TRUE(resident.has_value()) << text;
  EXPECT_GT(*resident, 1 << 20);
  EXPECT_LT(*resident, 1 << 30);
  EXPECT_TRUE(Sample(text, "peergrid_process_cpu_seconds_total").has_value());
  EXPECT_GT(Sample(text, "peergrid_process_threads").value_or(0), 1);
}

TEST_F(MetricsTest, CountsGrpcRequestsByMethodAndCode) {
  const std::string series =
      "peergrid_grpc_server_requests_total{code=\"OK\",method=\"/"
      "peergrid.v1.Jobs/ClusterStatus\"}";
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<CommandResult> status =
        RunCommand({PeergridBinary(), "status",
                    absl::StrCat("--node=", node_->grpc_address())});
    ASSERT_TRUE(status.ok() && status->status.exit_code == 0);
  }
  // The interceptor counts a call when gRPC releases it, just after the
  // client has its answer.
  EXPECT_TRUE(Eventually(
      [&]() -> ::testing::AssertionResult {
        const std::optional<double> count = Sample(Scrape(), series);
        if (count == 3.0) return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure()
               << series << " = " << count.value_or(-1);
      },
      absl::Seconds(5)));
}

TEST_F(MetricsTest, WorkerGaugesReturnToZeroAfterAJob) {
  absl::StatusOr<CommandResult> run = RunCommand(
      {PeergridBinary(), "run", absl::StrCat("--node=", node_->grpc_address()),
       "--kernel=sleep", ":::", "20", "20", "20"});
  ASSERT_TRUE(run.ok() && run->status.exit_code == 0);
  // The results are sent after the gauges are updated.
  const std::string text = Scrape();
  EXPECT_EQ(Sample(text, "peergrid_worker_cores_busy"), 0.0);
  EXPECT_EQ(Sample(text, "peergrid_worker_tasks_running"), 0.0);
  EXPECT_EQ(Sample(text, "peergrid_worker_tasks_queued"), 0.0);
  EXPECT_EQ(Sample(text,
                   "peergrid_worker_tasks_finished_total{kind=\"kernel\","
                   "outcome=\"succeeded\"}"),
            3.0);
}

TEST_F(MetricsTest, EveryFamilyHasHelpAndThePeergridPrefix) {
  const std::string text = Scrape();
  int families = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, "# TYPE ")) continue;
    const std::vector<std::string> words = absl::StrSplit(line, ' ');
    const std::string& name = words[2];
    if (absl::StartsWith(name, "exposer_")) continue;  // prometheus-cpp's own.
    ++families;
    EXPECT_TRUE(absl::StartsWith(name, "peergrid_")) << name;
    EXPECT_THAT(text, HasSubstr(absl::StrCat("# HELP ", name, " ")));
  }
  EXPECT_GE(families, 6);
}

TEST_F(MetricsTest, PassesPromtoolCheck) {
  const std::string text = Scrape();
  char path[] = "/tmp/peergrid-metrics-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, text.data(), text.size()),
            static_cast<ssize_t>(text.size()));
  close(fd);
  absl::StatusOr<CommandResult> check = RunCommand(
      {"/bin/sh", "-c",
       absl::StrCat("command -v promtool >/dev/null || { echo 'promtool not "
                    "found: install Debian package prometheus (deploy/setup "
                    "does)'; exit 127; }; promtool check metrics < ",
                    path)});
  unlink(path);
  ASSERT_TRUE(check.ok()) << check.status();
  EXPECT_EQ(check->status.exit_code, 0) << check->out << check->err;
}

}  // namespace
}  // namespace peergrid::testing
