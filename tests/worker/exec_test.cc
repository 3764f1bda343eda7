// Exec tasks through ExecRunner and ProcessReactor.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/worker/test_util.h"
#include "worker/exec_runner.h"
#include "worker/process.h"

namespace peergrid::worker {
namespace {

using testing::Eventually;
using testing::Future;
using ::testing::HasSubstr;
using testing::ProcessGone;
using testing::TempDir;

class ExecTest : public ::testing::Test {
 protected:
  void MakeRunner(ExecLimits limits = {}, bool bwrap = false,
                  std::string user = "nobody") {
    runner_.reset();
    ExecRunnerOptions o;
    o.work_root = data_.path() + "/work";
    o.exec_user = std::move(user);
    o.bwrap = bwrap;
    o.limits = limits;
    auto r = ExecRunner::Create(std::move(o), reactor_);
    ASSERT_TRUE(r.ok()) << r.status();
    runner_ = std::move(*r);
  }
  void SetUp() override { MakeRunner(); }

  static v1::Task Sh(const std::string& script) {
    v1::Task t;
    t.set_index(7);
    auto* e = t.mutable_exec();
    e->add_argv("sh");
    e->add_argv("-c");
    e->add_argv(script);
    return t;
  }

  v1::TaskResult Run(
      const v1::Task& task, absl::Duration timeout = absl::Seconds(20),
      const absl::flat_hash_map<std::string, std::string>& blobs = {},
      uint64_t* id_out = nullptr) {
    auto result = std::make_shared<Future<v1::TaskResult>>();
    const uint64_t id = runner_->Run(
        task, timeout, blobs, [result](v1::TaskResult r) { result->Set(r); });
    if (id_out != nullptr) *id_out = id;
    v1::TaskResult r;
    EXPECT_TRUE(result->Wait(absl::Seconds(30), &r)) << "no result";
    return r;
  }

  TempDir data_;
  ProcessReactor reactor_;
  std::unique_ptr<ExecRunner> runner_;
};

TEST_F(ExecTest, StdoutStderrAndExitCode) {
  auto r = Run(Sh("echo out; echo err >&2; exit 3"));
  EXPECT_EQ(r.index(), 7u);
  EXPECT_EQ(r.outcome(), v1::TASK_OUTCOME_FAILED);
  EXPECT_EQ(r.exit_code(), 3);
  EXPECT_EQ(r.signal(), 0);
  EXPECT_EQ(r.stdout(), "out\n");
  EXPECT_EQ(r.stderr(), "err\n");
  EXPECT_EQ(r.stdout_bytes(), 4u);
  EXPECT_THAT(r.reason(), HasSubstr("exit code 3"));
  EXPECT_GT(r.wall_us(), 0);

  auto ok = Run(Sh("printf hello"));
  EXPECT_EQ(ok.outcome(), v1::TASK_OUTCOME_SUCCEEDED);
  EXPECT_EQ(ok.exit_code(), 0);
  EXPECT_EQ(ok.stdout(), "hello");
}

TEST_F(ExecTest, KilledBySignalIsReported) {
  auto r = Run(Sh("kill -SEGV $$"));
  EXPECT_EQ(r.outcome(), v1::TASK_OUTCOME_FAILED);
  EXPECT_EQ(r.signal(), SIGSEGV);
  EXPECT_THAT(r.reason(), HasSubstr("SIGSEGV"));
}

TEST_F(ExecTest, StdinSmallAndLarge) {
  v1::Task t;
  t.mutable_exec()->add_argv("cat");
  t.mutable_exec()->set_stdin("hello stdin");
  EXPECT_EQ(Run(t).stdout(), "hello stdin");

  v1::Task big;
  big.mutable_exec()->add_argv("wc");
  big.mutable_exec()->add_argv("-c");
  big.mutable_exec()->set_stdin(std::string(3 << 20, 'x'));
  auto r = Run(big);
  EXPECT_EQ(r.outcome(), v1::TASK_OUTCOME_SUCCEEDED);
  EXPECT_EQ(r.stdout(), absl::StrCat(3 << 20, "\n"));
  // A child that never reads a large stdin is not a problem.
  auto t2 = Sh("exit 0");
  t2.mutable_exec()->set_stdin(std::string(1 << 20, 'y'));
  EXPECT_EQ(Run(t2).outcome(), v1::TASK_OUTCOME_SUCCEEDED);
}

TEST_F(ExecTest, CleanEnvironmentPlusTaskVariables) {
  setenv("PEERGRID_TEST_LEAK", "1", 1);
  auto t = Sh("env");
  (*t.mutable_exec()->mutable_env())["FOO"] = "bar baz";
  auto r = Run(t);
  ASSERT_EQ(r.outcome(), v1::TASK_OUTCOME_SUCCEEDED) << r.reason();
  EXPECT_THAT(r.stdout(), HasSubstr("FOO=bar baz\n"));
  EXPECT_THAT(r.stdout(), HasSubstr("PATH=/usr/local/bin:/usr/bin:/bin"));
  EXPECT_THAT(r.stdout(), HasSubstr("HOME=" + data_.path() + "/work/t"));
  EXPECT_THAT(r.stdout(), ::testing::Not(HasSubstr("PEERGRID_TEST_LEAK")));
}

TEST_F(ExecTest, PrivateWorkingDirectoryIsRemoved) {
  auto r = Run(Sh("pwd; touch mine"));
  ASSERT_EQ(r.outcome(), v1::TASK_OUTCOME_SUCCEEDED) << r.reason();
  const std::string dir(absl::StripSuffix(r.stdout(), "\n"));
  EXPECT_THAT(dir, HasSubstr(data_.path() + "/work/t"));
  // Emptied for reuse by a later task (or removed).
  EXPECT_TRUE(!std::filesystem::exists(dir) || std::filesystem::is_empty(dir));
  // A task that locks its directory and leaves hidden files behind does not
  // leak them to the next task in that directory.
  auto messy =
      Run(Sh("touch .hidden; mkdir -p a/b; touch a/b/c; chmod 0 a; "
             "chmod 777 ."));
  ASSERT_EQ(messy.outcome(), v1::TASK_OUTCOME_SUCCEEDED) << messy.reason();
  auto next = Run(Sh("ls -A; stat -c %a ."));
  EXPECT_EQ(next.stdout(), "700\n");
}

TEST_F(ExecTest, InputFilesPlacedAndOutputFilesCollected) {
  const std::string blob = data_.Write("cached_blob", "input data\n");
  auto t =
      Sh("mkdir -p out && cat in/data.txt > out/copy.txt && "
         "printf 2 > two.txt");
  auto* in = t.mutable_exec()->add_inputs();
  in->set_path("in/data.txt");
  in->set_blob_sha256("aa");
  t.mutable_exec()->add_output_files("out/copy.txt");
  t.mutable_exec()->add_output_files("two.txt");
  auto r = Run(t, absl::Seconds(20), {{"aa", blob}});
  ASSERT_EQ(r.outcome(), v1::TASK_OUTCOME_SUCCEEDED) << r.reason();
  ASSERT_EQ(r.output_files_size(), 2);
  EXPECT_EQ(r.output_files(0).path(), "out/copy.txt");
  EXPECT_EQ(r.output_files(0).data(), "input data\n");
  EXPECT_EQ(r.output_files(1).data(), "2");
  // The task may write to its copy; the cached blob stays intact.
  auto w = Sh("echo changed > in/data.txt");
  *w.mutable_exec()->add_inputs() = *in;
  EXPECT_EQ(Run(w, absl::Seconds(20), {{"aa", blob}}).outcome(),
            v1::TASK_OUTCOME_SUCCEEDED);
  EXPECT_EQ(data_.Read("cached_blob"), "input data\n");
}

TEST_F(ExecTest, MissingOrEscapingOutputsFail) {
  auto t = Sh("ln -s /etc/passwd link.txt");
  t.mutable_exec()->add_output_files("nothere.txt");
  t.mutable_exec()->add_output_files("link.txt");
  auto r = Run(t);
  EXPECT_EQ(r.outcome(), v1::TASK_OUTCOME_FAILED);
  EXPECT_THAT(r.reason(), HasSubstr("nothere.txt"));
  EXPECT_EQ(r.output_files_size(), 0);  // The symlink is not followed.

  auto bad = Sh("true");
  bad.mutable_exec()->add_output_files("../../etc/passwd");
  EXPECT_EQ(Run(bad).outcome(), v1::TASK_OUTCOME_REJECTED);
  auto bad_in = Sh("true");
  bad_in.mutable_exec()->add_inputs()->set_path("/abs");
  EXPECT_EQ(Run(bad_in).outcome(), v1::TASK_OUTCOME_REJECTED);
}

TEST_F(ExecTest, AnOutputThatIsAFifoFailsTheTaskAndWedgesNothing) {
  // Opening a FIFO to read it would wait for a writer that never comes.
  auto fifo = Sh("mkfifo out.txt");
  fifo.mutable_exec()->add_output_files("out.txt");
  const v1::TaskResult r = Run(fifo, absl::Seconds(5));
  EXPECT_EQ(r.outcome(), v1::TASK_OUTCOME_FAILED) << r.reason();
  EXPECT_THAT(r.reason(), HasSubstr("not produced (as a regular file)"));
  // The runner still runs the next task.
  EXPECT_EQ(Run(Sh("echo next")).stdout(), "next\n");
}

TEST_F(ExecTest, MissingCommandIsRejectedWithReason) {
  v1::Task t;
  t.mutable_exec()->add_argv("no-such-command-peergrid");
  auto r = Run(t);
  EXPECT_EQ(r.outcome(), v1::TASK_OUTCOME_REJECTED);
  EXPECT_THAT(r.reason(), HasSubstr("command not found: no-such-command"));

  v1::Task notexec;
  notexec.mutable_exec()->add_argv("/etc/passwd");
  EXPECT_EQ(Run(notexec).outcome(), v1::TASK_OUTCOME_REJECTED);

  v1::Task empty;
  empty.mutable_exec();
  EXPECT_EQ(Run(empty).outcome(), v1::TASK_OUTCOME_REJECTED);
}

TEST_F(ExecTest, TimeoutKillsTheWholeProcessTree) {
  const absl::Time t0 = absl::Now();
  auto r = Run(Sh("sleep 1000 & echo $!; sleep 1000"), absl::Milliseconds(300));
  EXPECT_EQ(r.outcome(), v1::TASK_OUTCOME_TIMED_OUT);
  EXPECT_THAT(r.reason(), HasSubstr("timeout"));
  EXPECT_LT(absl::Now() - t0, absl::Seconds(3));
  pid_t child = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(r.stdout()), &child))
      << r.stdout();
  EXPECT_TRUE(Eventually([&] { return ProcessGone(child); }, absl::Seconds(2),
                         "background sleep gone"));
}

TEST_F(ExecTest, BackgroundChildrenDoNotOutliveTheTask) {
  auto r = Run(Sh("sleep 1000 & echo $!"));
  ASSERT_EQ(r.outcome(), v1::TASK_OUTCOME_SUCCEEDED) << r.reason();
  pid_t child = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(r.stdout()), &child));
  // Killed, and reaped too (the reactor is a child subreaper): no zombie.
  EXPECT_TRUE(Eventually(
      [&] { return !std::filesystem::exists(absl::StrCat("/proc/", child)); },
      absl::Seconds(2), "background sleep gone and reaped"));
}

TEST_F(ExecTest, KillCancelsWithinASecond) {
  auto result = std::make_shared<Future<v1::TaskResult>>();
  const uint64_t id =
      runner_->Run(Sh("sleep 30"), absl::Seconds(60), {},
                   [result](v1::TaskResult r) { result->Set(r); });
  ASSERT_NE(id, 0u);
  const absl::Time t0 = absl::Now();
  reactor_.Kill(id);
  v1::TaskResult r;
  ASSERT_TRUE(result->Wait(absl::Seconds(1), &r));
  EXPECT_LT(absl::Now() - t0, absl::Seconds(1));
  EXPECT_EQ(r.outcome(), v1::TASK_OUTCOME_CANCELLED);
}

TEST_F(ExecTest, OutputCapsCutReportAndStopRunaways) {
  ExecLimits limits;
  limits.stdout_cap = 1000;
  limits.stderr_cap = 10;
  MakeRunner(limits);
  auto r = Run(Sh("echo fine >&2; head -c 200000 /dev/zero"));
  EXPECT_EQ(r.outcome(), v1::TASK_OUTCOME_LIMIT_EXCEEDED);
  EXPECT_EQ(r.stdout().size(), 1000u);
  EXPECT_GT(r.stdout_bytes(), 1000u);
  EXPECT_TRUE(r.stdout_truncated());
  EXPECT_FALSE(r.stderr_truncated());
  EXPECT_EQ(r.stderr(), "fine\n");
  EXPECT_THAT(r.reason(), HasSubstr("stdout exceeded its cap of 1000"));
  // A task printing without end is stopped at once, not at its timeout.
  const absl::Time t0 = absl::Now();
  auto runaway = Run(Sh("yes"), absl::Seconds(60));
  EXPECT_EQ(runaway.outcome(), v1::TASK_OUTCOME_LIMIT_EXCEEDED);
  EXPECT_LT(absl::Now() - t0, absl::Seconds(5));
  // Under the caps: nothing cut.
  auto fits = Run(Sh("head -c 1000 /dev/zero"));
  EXPECT_EQ(fits.outcome(), v1::TASK_OUTCOME_SUCCEEDED);
  EXPECT_FALSE(fits.stdout_truncated());
}

TEST_F(ExecTest, MemoryLimit) {
  ExecLimits limits;
  limits.memory_bytes = 64 << 20;
  MakeRunner(limits);
  v1::Task t;
  t.mutable_exec()->add_argv("perl");
  t.mutable_exec()->add_argv("-e");
  t.mutable_exec()->add_argv("$x = 'a' x 300_000_000; print 'allocated'");
  auto r = Run(t);
  EXPECT_NE(r.outcome(), v1::TASK_OUTCOME_SUCCEEDED);
  EXPECT_THAT(r.stdout(), ::testing::Not(HasSubstr("allocated")));
  // A task's own memory_bytes overrides the default.
  t.set_memory_bytes(1ull << 30);
  auto big = Run(t);
  EXPECT_EQ(big.outcome(), v1::TASK_OUTCOME_SUCCEEDED) << big.reason();
}

TEST_F(ExecTest, CpuAndFileSizeLimits) {
  ExecLimits limits;
  limits.cpu_seconds = 1;
  limits.file_size_bytes = 1000;
  MakeRunner(limits);
  auto cpu = Run(Sh("while :; do :; done"));
  EXPECT_EQ(cpu.outcome(), v1::TASK_OUTCOME_LIMIT_EXCEEDED);
  EXPECT_THAT(cpu.reason(), HasSubstr("CPU time"));
  auto fsize = Run(Sh("exec head -c 5000 /dev/zero > big"));
  EXPECT_EQ(fsize.outcome(), v1::TASK_OUTCOME_LIMIT_EXCEEDED);
  EXPECT_THAT(fsize.reason(), HasSubstr("file size"));
}

TEST_F(ExecTest, ChildGetsEmptySignalMaskAndDefaultDispositions) {
  // The node blocks SIGINT and SIGTERM in every thread and ignores SIGPIPE.
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  auto r = Run(Sh("grep -E '^Sig(Blk|Ign)' /proc/self/status"));
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  EXPECT_THAT(r.stdout(), HasSubstr("SigBlk:\t0000000000000000"));
  EXPECT_THAT(r.stdout(), HasSubstr("SigIgn:\t0000000000000000"));
}

TEST_F(ExecTest, RunsAsExecUserWhenRoot) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  EXPECT_TRUE(runner_->changes_user());
  auto r = Run(Sh("id -u; id -G; touch here && echo wrote"));
  ASSERT_EQ(r.outcome(), v1::TASK_OUTCOME_SUCCEEDED)
      << r.reason() << r.stderr();
  EXPECT_EQ(r.stdout(), "65534\n65534\nwrote\n");
}

TEST_F(ExecTest, UnreachableDataDirIsAClearError) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  TempDir top;
  chmod(top.path().c_str(), 0700);  // Above the data dir: not ours.
  ProcessReactor reactor;
  ExecRunnerOptions o;
  o.work_root = top.path() + "/data/work";
  o.exec_user = "nobody";
  auto r = ExecRunner::Create(o, reactor);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("o+x"));
  // The data dir itself (0700) is made searchable.
  chmod(top.path().c_str(), 0755);
  chmod((top.path() + "/data").c_str(), 0700);
  EXPECT_TRUE(ExecRunner::Create(o, reactor).ok());
}

// A fork bomb as the exec user hits RLIMIT_NPROC and is killed whole at
// its timeout: no process of it survives.
TEST_F(ExecTest, ForkBombIsContained) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (runs as nobody)";
  ExecLimits limits;
  limits.processes = 40;
  MakeRunner(limits);
  const absl::Time t0 = absl::Now();
  auto r = Run(Sh("echo $$; b() { b | b & }; b; sleep 100"), absl::Seconds(2));
  // Either the wall-clock limit ends it, or the shell itself fails to fork
  // once the process limit is reached; both are contained.
  EXPECT_TRUE(r.outcome() == v1::TASK_OUTCOME_TIMED_OUT ||
              r.outcome() == v1::TASK_OUTCOME_FAILED)
      << r.reason();
  EXPECT_LT(absl::Now() - t0, absl::Seconds(6));
  pid_t group = 0;
  ASSERT_TRUE(absl::SimpleAtoi(
      absl::StripAsciiWhitespace(r.stdout().substr(0, r.stdout().find('\n'))),
      &group));
  // Nothing of the bomb (its process group) is left, not even a zombie.
  auto members = [group] {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
      const std::string name = e.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream in(e.path() / "stat");
      std::string stat;
      std::getline(in, stat);
      const size_t paren = stat.rfind(')');
      if (paren == std::string::npos) continue;
      // After ") ": state, ppid, pgrp.
      std::istringstream fields(stat.substr(paren + 2));
      std::string state;
      pid_t ppid = 0, pgrp = 0;
      fields >> state >> ppid >> pgrp;
      if (pgrp == group) ++n;
    }
    return n;
  };
  EXPECT_TRUE(Eventually([&] { return members() == 0; }, absl::Seconds(5),
                         "the bomb's process group is gone"));
}

TEST_F(ExecTest, BubblewrapSandbox) {
  if (access("/usr/bin/bwrap", X_OK) != 0) GTEST_SKIP() << "no bwrap";
  MakeRunner({}, /*bwrap=*/true);
  auto r =
      Run(Sh("echo hi > /tmp/sandboxed && cat /tmp/sandboxed; "
             "touch /usr/peergrid-x 2>/dev/null || echo ro; "
             "grep -c : /proc/net/dev; echo ok > f && cat f"));
  ASSERT_EQ(r.outcome(), v1::TASK_OUTCOME_SUCCEEDED)
      << r.reason() << " " << r.stderr();
  EXPECT_EQ(r.stdout(), "hi\nro\n1\nok\n");  // Only lo: no network.
  EXPECT_FALSE(std::filesystem::exists("/tmp/sandboxed"));
  auto t = Run(Sh("sleep 1000 & echo $!; sleep 1000"), absl::Milliseconds(500));
  EXPECT_EQ(t.outcome(), v1::TASK_OUTCOME_TIMED_OUT);
}

}  // namespace
}  // namespace peergrid::worker
