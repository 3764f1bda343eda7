// The command line contract of `peergrid`, run as a user would.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/version.h"
#include "tests/testing/subprocess.h"

namespace peergrid::testing {
namespace {

using ::testing::HasSubstr;

CommandResult Peergrid(std::vector<std::string> args,
                       std::vector<std::string> env = {}) {
  args.insert(args.begin(), PeergridBinary());
  absl::StatusOr<CommandResult> result =
      RunCommand(args, absl::Seconds(20), env);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : CommandResult{};
}

TEST(CliTest, HelpListsTheCommands) {
  CommandResult result = Peergrid({"--help"});
  EXPECT_EQ(result.status.exit_code, 0);
  for (const char* command : {"node", "status", "version"}) {
    EXPECT_THAT(result.out, HasSubstr(absl::StrCat("  ", command, " ")));
  }
}

TEST(CliTest, EverySubcommandHasHelp) {
  for (const char* command : {"node", "status", "version"}) {
    CommandResult result = Peergrid({command, "--help"});
    EXPECT_EQ(result.status.exit_code, 0) << command;
    EXPECT_THAT(result.out,
                HasSubstr(absl::StrCat("Usage: peergrid ", command)));
  }
  CommandResult node_help = Peergrid({"node", "--help"});
  for (const char* flag :
       {"--listen=127.0.0.1:7420", "--metrics=127.0.0.1:9420", "--cores=0",
        "--insecure", "--log-level=info"}) {
    EXPECT_THAT(node_help.out, HasSubstr(flag));
  }
  EXPECT_THAT(Peergrid({"status", "--help"}).out, HasSubstr("--node="));
}

TEST(CliTest, VersionPrintsTheBuildVersion) {
  CommandResult result = Peergrid({"version"});
  EXPECT_EQ(result.status.exit_code, 0);
  EXPECT_EQ(result.out, absl::StrCat("peergrid ", Version(), "\n"));
}

TEST(CliTest, UnknownCommandIsAUsageError) {
  CommandResult result = Peergrid({"frobnicate"});
  EXPECT_EQ(result.status.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("unknown command 'frobnicate'"));
  EXPECT_EQ(Peergrid({}).status.exit_code, 2);
}

TEST(CliTest, FlagsOfAnotherCommandAreRefused) {
  CommandResult result = Peergrid({"status", "--cores=2"});
  EXPECT_EQ(result.status.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("unknown flag '--cores=2'"));
  EXPECT_EQ(Peergrid({"node", "--no-such-flag"}).status.exit_code, 2);
}

TEST(CliTest, BadFlagValuesAreUsageErrorsNamingTheFlag) {
  CommandResult letters = Peergrid({"node", "--cores=abc"});
  EXPECT_EQ(letters.status.exit_code, 2);
  EXPECT_THAT(letters.err, HasSubstr("--cores"));

  CommandResult too_many =
      Peergrid({"node", "--cores=100000", "--listen=127.0.0.1:0"});
  EXPECT_EQ(too_many.status.exit_code, 2);
  EXPECT_THAT(too_many.err, HasSubstr("--cores=100000"));

  CommandResult level =
      Peergrid({"node", "--log-level=loud", "--listen=127.0.0.1:0"});
  EXPECT_EQ(level.status.exit_code, 2);
  EXPECT_THAT(level.err, HasSubstr("log level"));

  CommandResult address = Peergrid({"node", "--listen=nowhere"});
  EXPECT_EQ(address.status.exit_code, 2);
  EXPECT_THAT(address.err, HasSubstr("'nowhere'"));
}

TEST(CliTest, NodeRefusesNonLoopbackWithoutInsecure) {
  CommandResult result = Peergrid({"node", "--listen=0.0.0.0:0", "--metrics="});
  EXPECT_NE(result.status.exit_code, 0);
  EXPECT_THAT(result.err, HasSubstr("not a loopback address"));
  EXPECT_THAT(result.err, HasSubstr("--insecure"));
  EXPECT_EQ(result.out, "") << "nothing may start";
}

TEST(CliTest, StatusNamesAnUnreachableNode) {
  // Port 1 on loopback: nothing of ours listens there.
  CommandResult result = Peergrid({"status", "--node=127.0.0.1:1"});
  EXPECT_EQ(result.status.exit_code, 1);
  EXPECT_THAT(result.err, HasSubstr("cannot reach the node at 127.0.0.1:1"));
}

TEST(CliTest, StatusReadsTheNodeFromTheEnvironment) {
  CommandResult result = Peergrid({"status"}, {"PEERGRID_NODE=127.0.0.1:2"});
  EXPECT_EQ(result.status.exit_code, 1);
  EXPECT_THAT(result.err, HasSubstr("127.0.0.1:2"));
}

}  // namespace
}  // namespace peergrid::testing
