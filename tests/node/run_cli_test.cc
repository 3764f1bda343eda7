// `peergrid run`, `submit`, `wait`, `jobs` and `cancel` against a real node
// process, as a researcher would use them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/testing/eventually.h"
#include "tests/testing/node_process.h"

namespace peergrid::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

class RunCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<NodeProcess>> node =
        NodeProcess::Start({"--name=solo", "--metrics="});
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
    state_dir_ =
        ::testing::TempDir() + "/state-" +
        ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  CommandResult Peergrid(std::vector<std::string> args,
                         absl::Duration timeout = absl::Seconds(60)) {
    args.insert(args.begin(), PeergridBinary());
    absl::StatusOr<CommandResult> result =
        RunCommand(args, timeout,
                   {absl::StrCat("PEERGRID_NODE=", node_->grpc_address()),
                    absl::StrCat("XDG_STATE_HOME=", state_dir_)});
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : CommandResult{};
  }

  static std::vector<std::string> Lines(const std::string& text) {
    return absl::StrSplit(text, '\n', absl::SkipEmpty());
  }

  std::unique_ptr<NodeProcess> node_;
  std::string state_dir_;
};

TEST_F(RunCliTest, RunsOneTaskPerValueAndSubstitutes) {
  CommandResult result =
      Peergrid({"run", "echo", "value={}", "number={#}", ":::", "a", "b", "c"});
  EXPECT_EQ(result.status.exit_code, 0) << result.err;
  EXPECT_THAT(Lines(result.out),
              UnorderedElementsAre("value=a number=1", "value=b number=2",
                                   "value=c number=3"));
}

TEST_F(RunCliTest, AppendsTheValueWithoutAPlaceholder) {
  CommandResult result = Peergrid({"run", "-k", "echo", "-n", ":::", "x", "y"});
  EXPECT_EQ(result.status.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "xy");
}

TEST_F(RunCliTest, KeepOrderPrintsInValueOrder) {
  std::vector<std::string> args = {"run", "-k", "--kernel=echo", ":::"};
  for (int i = 0; i < 50; ++i) args.push_back(absl::StrCat(i));
  CommandResult result = Peergrid(args);
  ASSERT_EQ(result.status.exit_code, 0) << result.err;
  std::vector<std::string> expected;
  for (int i = 0; i < 50; ++i) expected.push_back(absl::StrCat(i));
  EXPECT_EQ(Lines(result.out), expected);
}

TEST_F(RunCliTest, ExitStatusCountsFailedTasks) {
  CommandResult result =
      Peergrid({"run", "sh", "-c", "echo out{}; echo err{} >&2; exit {}",
                ":::", "0", "3", "0", "7"});
  EXPECT_EQ(result.status.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("task 2 (3) failed on solo"));
  EXPECT_THAT(result.err, HasSubstr("task 4 (7) failed on solo"));
  EXPECT_THAT(result.err, HasSubstr("err3"));
  EXPECT_THAT(Lines(result.out),
              UnorderedElementsAre("out0", "out3", "out0", "out7"));
}

TEST_F(RunCliTest, MoreThanAHundredFailuresExit101) {
  std::vector<std::string> args = {"run", "--kernel=nonesuch-but-valid"};
  CommandResult unknown = Peergrid({"run", "--kernel=warp", ":::", "1"});
  EXPECT_EQ(unknown.status.exit_code, 255);
  EXPECT_THAT(unknown.err, HasSubstr("unknown kernel 'warp'"));

  std::vector<std::string> many = {"run", "false", ":::"};
  for (int i = 0; i < 105; ++i) many.push_back(absl::StrCat(i));
  EXPECT_EQ(Peergrid(many).status.exit_code, 101);
}

TEST_F(RunCliTest, ReadsValuesFromStandardInput) {
  const std::string input = ::testing::TempDir() + "/values.txt";
  std::ofstream(input) << "one\ntwo\n";
  absl::StatusOr<CommandResult> result = RunCommand(
      {"/bin/sh", "-c",
       absl::StrCat(PeergridBinary(), " run -k --kernel=echo < ", input)},
      absl::Seconds(30),
      {absl::StrCat("PEERGRID_NODE=", node_->grpc_address())});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->status.exit_code, 0) << result->err;
  EXPECT_EQ(result->out, "one\ntwo\n");
}

TEST_F(RunCliTest, SavesResultsAndShipsFiles) {
  const std::string dir =
      ::testing::TempDir() + "/results-" + std::to_string(getpid());
  const std::string shipped = ::testing::TempDir() + "/greeting.txt";
  std::ofstream(shipped) << "hello from the origin";
  CommandResult result =
      Peergrid({"run", "--results=" + dir, "--ship=" + shipped, "sh", "-c",
                "cat greeting.txt; echo ' #{}'", ":::", "1", "2"});
  ASSERT_EQ(result.status.exit_code, 0) << result.err;
  std::ifstream first(dir + "/1/stdout");
  std::string line;
  std::getline(first, line);
  EXPECT_EQ(line, "hello from the origin #1");
  std::ifstream exit_file(dir + "/2/exit");
  std::getline(exit_file, line);
  EXPECT_EQ(line, "0");
}

TEST_F(RunCliTest, AShippedProgramRuns) {
  const std::string program = ::testing::TempDir() + "/simulate";
  std::ofstream(program) << "#!/bin/sh\necho simulated $2\n";
  ASSERT_EQ(chmod(program.c_str(), 0755), 0);
  CommandResult result =
      Peergrid({"run", "-k", "--ship=" + program, "--", "./simulate", "--seed",
                "{}", ":::", "1", "2"});
  EXPECT_EQ(result.status.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "simulated 1\nsimulated 2\n");
}

TEST_F(RunCliTest, JsonPrintsOneResultPerLine) {
  CommandResult result =
      Peergrid({"run", "--json", "--kernel=echo", ":::", "q"});
  ASSERT_EQ(result.status.exit_code, 0) << result.err;
  ASSERT_EQ(Lines(result.out).size(), 1u);
  EXPECT_THAT(result.out, HasSubstr("\"outcome\":\"TASK_OUTCOME_SUCCEEDED\""));
  EXPECT_THAT(result.out, HasSubstr("\"node\":\"solo\""));
}

TEST_F(RunCliTest, UsageErrorsExit255) {
  EXPECT_EQ(Peergrid({"run", "echo"}, absl::Seconds(10)).status.exit_code, 255)
      << "no values, stdin not a terminal but empty";
  EXPECT_EQ(Peergrid({"run", "--cpus=0", "echo", ":::", "1"}).status.exit_code,
            255);
  EXPECT_EQ(
      Peergrid({"run", "--no-such-flag", "echo", ":::", "1"}).status.exit_code,
      255);
}

TEST_F(RunCliTest, SubmitAJsonJobAndWaitWithoutRepeats) {
  const std::string job_file = ::testing::TempDir() + "/job.json";
  std::ofstream(job_file) << R"({
    "name": "from-json",
    "tasks": [
      {"kernel": {"name": "echo", "argument": "Zmlyc3Q="}},
      {"kernel": {"name": "echo", "argument": "c2Vjb25k"}}
    ]
  })";
  CommandResult submitted = Peergrid({"submit", job_file});
  ASSERT_EQ(submitted.status.exit_code, 0) << submitted.err;
  const std::string id = Lines(submitted.out).at(0);

  CommandResult first = Peergrid({"wait", id});
  EXPECT_EQ(first.status.exit_code, 0) << first.err;
  EXPECT_THAT(Lines(first.out), UnorderedElementsAre("first", "second"));
  // Called again: everything was printed already, nothing repeats.
  CommandResult again = Peergrid({"wait", id});
  EXPECT_EQ(again.status.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, "");
  // --from=0 asks for everything again.
  EXPECT_EQ(Lines(Peergrid({"wait", "--from=0", id}).out).size(), 2u);

  CommandResult listed = Peergrid({"jobs"});
  EXPECT_THAT(listed.out, HasSubstr(id));
  EXPECT_THAT(listed.out, HasSubstr("from-json"));
}

TEST_F(RunCliTest, SubmitRefusesABadJobClearly) {
  const std::string job_file = ::testing::TempDir() + "/bad.json";
  std::ofstream(job_file) << R"({"tasks": [{"exec": {"argv": []}}]})";
  CommandResult result = Peergrid({"submit", job_file});
  EXPECT_EQ(result.status.exit_code, 1);
  EXPECT_THAT(result.err, HasSubstr("the command is empty"));
  std::ofstream(job_file) << "{not json";
  EXPECT_EQ(Peergrid({"submit", job_file}).status.exit_code, 2);
  EXPECT_EQ(Peergrid({"wait", "no-such-job"}).status.exit_code, 1);
  EXPECT_EQ(Peergrid({"cancel", "no-such-job"}).status.exit_code, 1);
}

TEST_F(RunCliTest, CancelStopsARunningJobWithinASecond) {
  const std::string job_file = ::testing::TempDir() + "/slow.json";
  std::ofstream(job_file) << R"({"tasks": [
      {"exec": {"argv": ["sleep", "30"]}},
      {"exec": {"argv": ["sleep", "30"]}},
      {"exec": {"argv": ["sleep", "30"]}}]})";
  CommandResult submitted = Peergrid({"submit", job_file});
  ASSERT_EQ(submitted.status.exit_code, 0) << submitted.err;
  const std::string id = Lines(submitted.out).at(0);
  ASSERT_TRUE(Eventually(
      [&]() -> ::testing::AssertionResult {
        CommandResult jobs = Peergrid({"jobs"});
        if (jobs.out.find("running") != std::string::npos) {
          return ::testing::AssertionSuccess();
        }
        return ::testing::AssertionFailure() << jobs.out;
      },
      absl::Seconds(10)));
  const absl::Time start = absl::Now();
  CommandResult cancelled = Peergrid({"cancel", id});
  EXPECT_EQ(cancelled.status.exit_code, 0) << cancelled.err;
  EXPECT_THAT(cancelled.out, HasSubstr("cancelled"));
  // The node's worker frees its cores once the sleeps are killed.
  EXPECT_TRUE(Eventually(
      [&]() -> ::testing::AssertionResult {
        CommandResult status = Peergrid({"status"});
        const std::vector<std::string> lines = Lines(status.out);
        if (lines.size() < 2)
          return ::testing::AssertionFailure() << status.err;
        const std::vector<std::string> fields =
            absl::StrSplit(lines[1], ' ', absl::SkipEmpty());
        if (fields.size() > 5 && fields[5] == "0") {
          return ::testing::AssertionSuccess();
        }
        return ::testing::AssertionFailure() << lines[1];
      },
      absl::Seconds(1)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(Peergrid({"wait", "--from=0", id}).status.exit_code, 1)
      << "a cancelled job did not succeed";
}

TEST_F(RunCliTest, CtrlCCancelsTheJob) {
  std::vector<std::string> argv = {
      PeergridBinary(), "run", "sleep", ":::", "30", "30"};
  absl::StatusOr<std::unique_ptr<Subprocess>> run = Subprocess::Start(
      argv, {absl::StrCat("PEERGRID_NODE=", node_->grpc_address())});
  ASSERT_TRUE(run.ok());
  ASSERT_TRUE(Eventually(
      [&]() -> ::testing::AssertionResult {
        CommandResult jobs = Peergrid({"jobs"});
        if (jobs.out.find("running") != std::string::npos) {
          return ::testing::AssertionSuccess();
        }
        return ::testing::AssertionFailure() << jobs.out;
      },
      absl::Seconds(10)));
  (*run)->Signal(SIGINT);
  absl::StatusOr<ExitStatus> exit = (*run)->Wait(absl::Seconds(5));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(exit->exit_code, 130);
  EXPECT_THAT((*run)->stderr_text(), HasSubstr("cancelled"));
  EXPECT_THAT(Peergrid({"jobs"}).out, HasSubstr("cancelled"));
}

}  // namespace
}  // namespace peergrid::testing
