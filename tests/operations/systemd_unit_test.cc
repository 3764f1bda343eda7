// deploy/systemd: the unit passes `systemd-analyze verify` (where the
// machine has it), keeps what exec tasks need, and the example environment
// file's flags start a real node.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/operations/operations_testing.h"
#include "tests/testing/eventually.h"
#include "tests/testing/node_process.h"

namespace peergrid::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kUnit[] = "deploy/systemd/peergrid-node.service";
constexpr char kEnvExample[] = "deploy/systemd/node.env.example";
constexpr char kInstalledBinary[] = "/usr/local/bin/peergrid";

std::string SystemdAnalyze() {
  for (const char* path :
       {"/usr/bin/systemd-analyze", "/bin/systemd-analyze"}) {
    if (access(path, X_OK) == 0) return path;
  }
  return "";
}

// The unit's settings, "Key=value" per line, comments dropped.
std::vector<std::string> Settings(const std::string& unit) {
  std::vector<std::string> settings;
  for (absl::string_view line : absl::StrSplit(unit, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#' || line[0] == ';' || line[0] == '[') {
      continue;
    }
    settings.emplace_back(line);
  }
  return settings;
}

// Runs `systemd-analyze verify` on `unit_text` saved as
// DIR/peergrid-node.service, its binary pointed at the one just built
// (verify checks that ExecStart= is executable). Returns what it reported
// about the unit; empty means clean.
std::string Verify(const std::string& analyze, const std::string& unit_text,
                   bool* passed) {
  TempDir dir;
  const std::string path = dir.File("peergrid-node.service");
  absl::StatusOr<std::string> unit =
      ReplaceAll(unit_text, kInstalledBinary, PeergridBinary());
  EXPECT_TRUE(unit.ok()) << "ExecStart= should run " << kInstalledBinary;
  EXPECT_TRUE(WriteFile(path, unit.value_or(unit_text)).ok());
  absl::StatusOr<CommandResult> result =
      RunCommand({analyze, "verify", "--man=no", path}, absl::Seconds(60));
  EXPECT_TRUE(result.ok()) << result.status();
  if (!result.ok()) return "did not run";
  // Warnings (unknown keys, values it ignores) do not change the exit
  // status; count them as failures too. Other units' noise is ignored.
  std::string about_unit;
  for (absl::string_view line :
       absl::StrSplit(result->out + result->err, '\n')) {
    if (absl::StrContains(line, "peergrid-node.service")) {
      absl::StrAppend(&about_unit, line, "\n");
    }
  }
  *passed = result->status.exit_code == 0 && about_unit.empty();
  return absl::StrCat("exit ", result->status.exit_code, "\n", about_unit,
                      result->err);
}

TEST(SystemdUnitTest, PassesSystemdAnalyzeVerify) {
  const std::string analyze = SystemdAnalyze();
  if (analyze.empty()) GTEST_SKIP() << "systemd-analyze is not installed";
  absl::StatusOr<std::string> unit = ReadFile(SourcePath(kUnit));
  ASSERT_TRUE(unit.ok()) << unit.status();
  bool passed = false;
  const std::string report = Verify(analyze, *unit, &passed);
  EXPECT_TRUE(passed) << report;

  // And the check can fail: a misspelt value is reported.
  absl::StatusOr<std::string> broken =
      ReplaceAll(*unit, "KillMode=mixed", "KillMode=mixd");
  ASSERT_TRUE(broken.ok());
  passed = true;
  const std::string broken_report = Verify(analyze, *broken, &passed);
  EXPECT_FALSE(passed) << broken_report;
}

TEST(SystemdUnitTest, KeepsWhatTheWorkerNeeds) {
  absl::StatusOr<std::string> unit = ReadFile(SourcePath(kUnit));
  ASSERT_TRUE(unit.ok()) << unit.status();
  const std::vector<std::string> settings = Settings(*unit);
  auto value_of = [&](const std::string& key) {
    std::string value;
    for (const std::string& setting : settings) {
      if (absl::StartsWith(setting, key + "="))
        value = setting.substr(key.size() + 1);
    }
    return value;
  };
  // Graceful leave: SIGTERM to the node only, which hands its tasks back.
  EXPECT_EQ(value_of("KillMode"), "mixed");
  EXPECT_EQ(value_of("KillSignal"), "SIGTERM");
  EXPECT_THAT(value_of("ExecStart"),
              HasSubstr(absl::StrCat(kInstalledBinary, " node ")));
  EXPECT_THAT(value_of("ExecStart"), HasSubstr("--data-dir=%S/peergrid"));
  EXPECT_THAT(value_of("ExecStart"), HasSubstr("$PEERGRID_FLAGS"));
  EXPECT_EQ(value_of("EnvironmentFile"), "/etc/peergrid/node.env");
  EXPECT_EQ(value_of("StateDirectory"), "peergrid");
  // Root, to run exec tasks as --exec-user; only the capabilities for that.
  EXPECT_EQ(value_of("User"), "");
  for (const char* capability :
       {"CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_CHOWN", "CAP_FOWNER"}) {
    EXPECT_THAT(value_of("CapabilityBoundingSet"), HasSubstr(capability));
  }
  EXPECT_THAT(value_of("CapabilityBoundingSet"),
              Not(HasSubstr("CAP_SYS_ADMIN")));
  EXPECT_EQ(value_of("NoNewPrivileges"), "yes");
  EXPECT_EQ(value_of("ProtectSystem"), "strict");
  // bubblewrap needs namespaces, mounts and a fresh /proc.
  EXPECT_THAT(value_of("SystemCallFilter"), HasSubstr("@mount"));
  EXPECT_EQ(value_of("RestrictNamespaces"), "");
  EXPECT_EQ(value_of("ProtectKernelTunables"), "");
  EXPECT_EQ(value_of("ProtectProc"), "");
  EXPECT_EQ(value_of("PrivateUsers"), "");
  EXPECT_THAT(value_of("RestrictAddressFamilies"), HasSubstr("AF_NETLINK"));
}

TEST(SystemdUnitTest, TheExampleFlagsStartANode) {
  absl::StatusOr<std::string> env = ReadFile(SourcePath(kEnvExample));
  ASSERT_TRUE(env.ok()) << env.status();
  std::string flags_line;
  for (absl::string_view line : absl::StrSplit(*env, '\n')) {
    if (absl::ConsumePrefix(&line, "PEERGRID_FLAGS=")) {
      flags_line = std::string(line);
    }
  }
  ASSERT_FALSE(flags_line.empty()) << "no PEERGRID_FLAGS= line";
  // This machine is 127.0.0.1 with free ports; the grid it joins is not
  // there (a closed loopback port), which a node survives.
  TempDir dir;
  std::vector<std::string> flags;
  for (absl::string_view part :
       absl::StrSplit(flags_line, ' ', absl::SkipEmpty())) {
    std::string flag(part);
    if (absl::StartsWith(flag, "--listen=") ||
        absl::StartsWith(flag, "--metrics=")) {
      flag = flag.substr(0, flag.find('=') + 1) + "127.0.0.1:0";
    } else if (absl::StartsWith(flag, "--join=")) {
      flag = "--join=127.0.0.1:1";
    }
    flags.push_back(flag);
  }
  // What the unit adds.
  flags.push_back("--data-dir=" + dir.File("data"));
  flags.push_back("--prometheus-sd-file=" + dir.File("targets.json"));
  std::filesystem::create_directory(dir.File("data"));
  // As /var/lib/peergrid (StateDirectoryMode=0755): when the test runs as
  // root, exec tasks run as nobody, who must reach the data directory.
  std::filesystem::permissions(dir.path(), std::filesystem::perms::others_exec,
                               std::filesystem::perm_options::add);
  absl::StatusOr<std::unique_ptr<NodeProcess>> node = NodeProcess::Start(flags);
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_TRUE(Eventually(
      [&]() -> ::testing::AssertionResult {
        if (ReadFile(dir.File("targets.json"))
                .value_or("")
                .find((*node)->metrics_address()) != std::string::npos) {
          return ::testing::AssertionSuccess();
        }
        return ::testing::AssertionFailure() << "no target file yet";
      },
      absl::Seconds(5), absl::Milliseconds(50)));
  absl::StatusOr<ExitStatus> stopped = (*node)->Stop(SIGTERM, absl::Seconds(5));
  ASSERT_TRUE(stopped.ok()) << stopped.status() << (*node)->Log();
  EXPECT_EQ(stopped->exit_code, 0) << (*node)->Log();
}

}  // namespace
}  // namespace peergrid::testing
