// deploy/prometheus passes promtool: the configuration, the rules, and the
// rules' unit tests (which fire each alert on made-up series).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "tests/operations/operations_testing.h"

namespace peergrid::testing {
namespace {

constexpr char kPromtool[] = "/usr/bin/promtool";

class PrometheusConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(access(kPromtool, X_OK), 0)
        << "no " << kPromtool << ": install Debian's prometheus (deploy/setup)";
  }

  // Runs promtool in deploy/prometheus (rule files are relative to it).
  void ExpectPromtoolPasses(std::vector<std::string> args) {
    std::vector<std::string> argv = {
        "/usr/bin/env", "-C", SourcePath("deploy/prometheus"), kPromtool};
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<CommandResult> result = RunCommand(argv, absl::Seconds(30));
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->status.exit_code, 0)
        << "promtool " << args[0] << " " << args[1] << ":\n"
        << result->out << result->err;
  }
};

TEST_F(PrometheusConfigTest, ConfigIsValid) {
  ExpectPromtoolPasses({"check", "config", "prometheus.yml"});
}

TEST_F(PrometheusConfigTest, RulesAreValid) {
  ExpectPromtoolPasses({"check", "rules", "peergrid.rules.yml"});
}

TEST_F(PrometheusConfigTest, AlertsFireWhenTheyShould) {
  ExpectPromtoolPasses({"test", "rules", "peergrid.rules.test.yml"});
}

TEST_F(PrometheusConfigTest, ABrokenConfigFails) {
  // The check above can fail: promtool refuses a scrape job without a name.
  TempDir dir;
  absl::StatusOr<std::string> config =
      ReadFile(SourcePath("deploy/prometheus/prometheus.yml"));
  ASSERT_TRUE(config.ok()) << config.status();
  config = ReplaceAll(*config, "job_name: peergrid", "job_nam: peergrid");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(WriteFile(dir.File("prometheus.yml"), *config).ok());
  absl::StatusOr<CommandResult> result =
      RunCommand({kPromtool, "check", "config", "--syntax-only",
                  dir.File("prometheus.yml")},
                 absl::Seconds(30));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_NE(result->status.exit_code, 0) << result->out << result->err;
}

}  // namespace
}  // namespace peergrid::testing
