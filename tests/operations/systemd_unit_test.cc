// deploy/systemd: the unit passes `systemd-analyze verify` (where the
// machine has it), keeps what exec tasks need, and the example environment
// file's flags start a real node.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <regex>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "node/tls/cluster_ca.h"
#include "tests/operations/operations_testing.h"
#include "tests/testing/eventually.h"
#include "tests/testing/node_process.h"

namespace peergrid::testing {
namespace {

using ::testing::AssertionFailure;
using ::testing::AssertionResult;
using ::testing::AssertionSuccess;
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

std::string Which(const std::string& program) {
  for (const char* dir : {"/usr/bin/", "/bin/", "/usr/sbin/", "/sbin/"}) {
    const std::string path = dir + program;
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return "";
}

// The system calls a SystemCallFilter= allow list names, its @groups
// expanded with `systemd-analyze syscall-filter`.
void ExpandSyscalls(const std::string& analyze, const std::string& item,
                    std::set<std::string>& out, std::set<std::string>& seen) {
  if (item.empty() || item[0] != '@') {
    out.insert(item);
    return;
  }
  if (!seen.insert(item).second) return;
  absl::StatusOr<CommandResult> listed = RunCommand(
      {analyze, "syscall-filter", "--no-pager", item}, absl::Seconds(30));
  ASSERT_TRUE(listed.ok()) << listed.status();
  bool in_group = false;
  for (absl::string_view line : absl::StrSplit(listed->out, '\n')) {
    if (!in_group) {
      in_group = absl::StripAsciiWhitespace(line) == item;
      continue;
    }
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    ExpandSyscalls(analyze, std::string(line.substr(0, line.find(' '))), out,
                   seen);
  }
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
  // there (a closed loopback port), which a node survives. Its TLS files
  // are laid out as in /etc/peergrid/tls (docs/operations.md), from a CA
  // of the test's own.
  TempDir dir;
  const std::string tls = dir.File("tls");
  std::filesystem::create_directory(tls);
  ASSERT_TRUE(tls::InitCa(dir.File("ca")).ok());
  tls::IssueOptions issue;
  issue.name = "lab2";
  issue.role = tls::Role::kNode;
  issue.out_prefix = tls + "/node";
  ASSERT_TRUE(tls::IssueCertificate(dir.File("ca"), issue).ok());
  std::filesystem::copy_file(dir.File("ca/ca.crt"), tls + "/ca.crt");
  std::filesystem::copy(dir.File("ca/crl"), tls + "/crl");
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
    absl::StrReplaceAll({{"/etc/peergrid/tls", tls}}, &flag);
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

// As root, the node runs exec tasks as nobody. With only the unit's
// capabilities and no new privileges, it still switches user, hands each
// task its directory, cleans up what the task left (even unreadable), and
// kills a task's process group at its timeout.
TEST(SystemdUnitTest, TheUnitsCapabilitiesAreEnoughForExecTasks) {
  if (geteuid() != 0) GTEST_SKIP() << "exec tasks switch user only as root";
  const std::string setpriv = Which("setpriv");
  if (setpriv.empty()) GTEST_SKIP() << "needs setpriv (util-linux)";
  absl::StatusOr<std::string> unit = ReadFile(SourcePath(kUnit));
  ASSERT_TRUE(unit.ok()) << unit.status();
  std::string bounding = "-all";
  for (const std::string& setting : Settings(*unit)) {
    absl::string_view value = setting;
    if (!absl::ConsumePrefix(&value, "CapabilityBoundingSet=")) continue;
    for (absl::string_view cap :
         absl::StrSplit(value, ' ', absl::SkipEmpty())) {
      ASSERT_TRUE(absl::ConsumePrefix(&cap, "CAP_")) << cap;
      absl::StrAppend(&bounding, ",+", absl::AsciiStrToLower(cap));
    }
  }
  ASSERT_NE(bounding, "-all") << "no CapabilityBoundingSet=";

  TempDir dir;
  std::filesystem::create_directory(dir.File("data"));
  std::filesystem::permissions(dir.path(), std::filesystem::perms::others_exec,
                               std::filesystem::perm_options::add);
  std::vector<std::string> argv = {setpriv,
                                   "--bounding-set=" + bounding,
                                   "--no-new-privs",
                                   PeergridBinary(),
                                   "node",
                                   "--name=confined",
                                   "--listen=127.0.0.1:0",
                                   "--metrics=127.0.0.1:0",
                                   "--cores=1",
                                   "--data-dir=" + dir.File("data")};
  if (!Which("bwrap").empty()) argv.push_back("--sandbox=bwrap");
  absl::StatusOr<std::unique_ptr<Subprocess>> node =
      Subprocess::Start(argv, {}, dir.File("node.log"));
  ASSERT_TRUE(node.ok()) << node.status();
  absl::StatusOr<std::string> line = (*node)->ReadStdoutLine(absl::Seconds(10));
  ASSERT_TRUE(line.ok()) << line.status()
                         << ReadFile(dir.File("node.log")).value_or("");
  absl::StatusOr<StartLine> start = ParseStartLine(*line);
  ASSERT_TRUE(start.ok()) << start.status();

  absl::StatusOr<CommandResult> run = RunCommand(
      {PeergridBinary(), "run", "--node=" + start->grpc_address, "--", "sh",
       "-c", "mkdir -p d/e && echo x > d/e/f && chmod 000 d && id -un",
       ":::", "1", "2", "3"},
      absl::Seconds(60));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->status.exit_code, 0) << run->err;
  EXPECT_EQ(run->out, "nobody\nnobody\nnobody\n") << run->err;
  // Every task directory was emptied for the next task.
  for (const auto& entry :
       std::filesystem::directory_iterator(dir.File("data/work"))) {
    EXPECT_TRUE(std::filesystem::is_empty(entry.path())) << entry.path();
  }

  const absl::Time before = absl::Now();
  run = RunCommand(
      {PeergridBinary(), "run", "--node=" + start->grpc_address, "--timeout=1s",
       "--retries=0", "--", "sleep", "60", ":::", "1"},
      absl::Seconds(30));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->status.exit_code, 1) << run->err;
  EXPECT_THAT(run->err, HasSubstr("time")) << "timed out";
  EXPECT_LT(absl::Now() - before, absl::Seconds(20));

  (*node)->Signal(SIGTERM);
  absl::StatusOr<ExitStatus> ended = (*node)->Wait(absl::Seconds(10));
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_EQ(ended->exit_code, 0) << ReadFile(dir.File("node.log")).value_or("");
}

// Every system call the node and its exec tasks make (under bubblewrap when
// it is installed) is one the unit's SystemCallFilter= allows: otherwise
// they would fail with EPERM under systemd.
TEST(SystemdUnitTest, SystemCallFilterAllowsWhatTheNodeAndItsTasksUse) {
  const std::string analyze = SystemdAnalyze();
  const std::string strace = Which("strace");
  if (analyze.empty() || strace.empty()) {
    GTEST_SKIP() << "needs systemd-analyze and strace";
  }
  absl::StatusOr<std::string> unit = ReadFile(SourcePath(kUnit));
  ASSERT_TRUE(unit.ok()) << unit.status();
  std::set<std::string> allowed;
  std::set<std::string> groups;
  for (const std::string& setting : Settings(*unit)) {
    absl::string_view value = setting;
    if (!absl::ConsumePrefix(&value, "SystemCallFilter=")) continue;
    ASSERT_FALSE(absl::StartsWith(value, "~")) << "expected an allow list";
    for (absl::string_view item :
         absl::StrSplit(value, ' ', absl::SkipEmpty())) {
      ASSERT_NO_FATAL_FAILURE(
          ExpandSyscalls(analyze, std::string(item), allowed, groups));
    }
  }
  ASSERT_GT(allowed.size(), 100u) << "no SystemCallFilter= allow list?";

  TempDir dir;
  std::filesystem::create_directory(dir.File("data"));
  std::filesystem::permissions(dir.path(), std::filesystem::perms::others_exec,
                               std::filesystem::perm_options::add);
  const std::string trace = dir.File("trace");
  std::vector<std::string> argv = {
      strace,
      "-f",
      "-qq",
      "-o",
      trace,
      PeergridBinary(),
      "node",
      "--name=traced",
      "--listen=127.0.0.1:0",
      "--metrics=127.0.0.1:0",
      "--cores=1",
      "--data-dir=" + dir.File("data"),
      "--prometheus-sd-file=" + dir.File("targets.json")};
  const bool bwrap = !Which("bwrap").empty();
  if (bwrap) argv.push_back("--sandbox=bwrap");
  absl::StatusOr<std::unique_ptr<Subprocess>> traced =
      Subprocess::Start(argv, {}, dir.File("node.log"));
  ASSERT_TRUE(traced.ok()) << traced.status();
  absl::StatusOr<std::string> line =
      (*traced)->ReadStdoutLine(absl::Seconds(20));
  if (!line.ok()) {
    GTEST_SKIP() << "the node does not start under strace here (ptrace "
                    "refused?): "
                 << ReadFile(dir.File("node.log")).value_or("");
  }
  absl::StatusOr<StartLine> start = ParseStartLine(*line);
  ASSERT_TRUE(start.ok()) << start.status();
  // Exec tasks (forks, pipes, a shell, /proc) and a kernel.
  absl::StatusOr<CommandResult> run = RunCommand(
      {PeergridBinary(), "run", "--node=" + start->grpc_address, "--", "sh",
       "-c", "echo task {}; ls /proc > /dev/null", ":::", "1", "2"},
      absl::Seconds(60));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->status.exit_code, 0) << run->out << run->err;
  run = RunCommand({PeergridBinary(), "run", "--node=" + start->grpc_address,
                    "--kernel=spin", ":::", "5"},
                   absl::Seconds(30));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->status.exit_code, 0) << run->out << run->err;

  // The node is the first process in the trace; stop it by that PID so
  // that its graceful leave is traced too, and strace ends with it.
  absl::StatusOr<std::string> text = ReadFile(trace);
  ASSERT_TRUE(text.ok()) << text.status();
  int node_pid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(text->substr(0, text->find(' ')), &node_pid))
      << text->substr(0, 200);
  ASSERT_EQ(kill(node_pid, SIGTERM), 0);
  absl::StatusOr<ExitStatus> ended = (*traced)->Wait(absl::Seconds(15));
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_EQ(ended->exit_code, 0);

  text = ReadFile(trace);
  ASSERT_TRUE(text.ok()) << text.status();
  static const std::regex kCall(R"(^\d+ +([a-z0-9_]+)\()");
  std::set<std::string> used;
  for (absl::string_view trace_line : absl::StrSplit(*text, '\n')) {
    std::match_results<absl::string_view::const_iterator> match;
    if (std::regex_search(trace_line.begin(), trace_line.end(), match, kCall)) {
      used.insert(match[1].str());
    }
  }
  EXPECT_GT(used.size(), 30u);
  for (const std::string& call : used) {
    EXPECT_TRUE(allowed.count(call) > 0)
        << call << " is used" << (bwrap ? " (with bwrap)" : "")
        << " but not allowed by SystemCallFilter=";
  }
}

}  // namespace
}  // namespace peergrid::testing
