// Jobs across a grid of real `peergrid node` processes on 127.0.0.1-3,
// joined by gossip: placement over every node, exactly-once results, a
// worker killed mid-job, two origins at once, cancel, and a frozen origin.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "proto/jobs.grpc.pb.h"
#include "tests/testing/eventually.h"
#include "tests/testing/node_process.h"

namespace peergrid::testing {
namespace {

constexpr int kNodes = 3;

class GridJobsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (!HasFailure()) return;
    // Show what the nodes logged, to tell why.
    StopAndPrintLogs(nodes_);
  }

  void SetUp() override {
    for (int i = 0; i < kNodes; ++i) {
      std::vector<std::string> flags = {absl::StrCat("--name=node-", i),
                                        "--cores=1", "--metrics="};
      if (i > 0) flags.push_back("--join=" + nodes_[0]->grpc_address());
      absl::StatusOr<std::unique_ptr<NodeProcess>> node =
          NodeProcess::Start(flags, absl::StrCat("127.0.0.", i + 1));
      ASSERT_TRUE(node.ok()) << node.status();
      nodes_.push_back(std::move(*node));
      stubs_.push_back(v1::Jobs::NewStub(grpc::CreateChannel(
          nodes_.back()->grpc_address(), grpc::InsecureChannelCredentials())));
    }
    for (int i = 0; i < kNodes; ++i) {
      ASSERT_TRUE(
          Eventually([&] { return SeesAlive(i, kNodes); }, absl::Seconds(15)));
    }
  }

  ::testing::AssertionResult SeesAlive(int node, int expected) {
    grpc::ClientContext context;
    v1::ClusterStatusResponse status;
    grpc::Status call =
        stubs_[static_cast<size_t>(node)]->ClusterStatus(&context, {}, &status);
    if (!call.ok())
      return ::testing::AssertionFailure() << call.error_message();
    int alive = 0;
    for (const auto& member : status.members()) {
      alive += member.state() == v1::MEMBER_STATE_ALIVE ? 1 : 0;
    }
    if (alive == expected) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "node-" << node << " sees " << alive << " alive";
  }

  // Tasks running on `node` by its own account.
  int Running(int node) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(2));
    v1::ClusterStatusResponse status;
    if (!stubs_[static_cast<size_t>(node)]
             ->ClusterStatus(&context, {}, &status)
             .ok()) {
      return -1;
    }
    return static_cast<int>(status.members(0).advertisement().tasks_running());
  }

  // Every node from `first` on runs `expected` tasks.
  ::testing::AssertionResult EachRuns(int first, int expected) {
    for (int node = first; node < kNodes; ++node) {
      if (int running = Running(node); running != expected) {
        return ::testing::AssertionFailure()
               << "node-" << node << " runs " << running;
      }
    }
    return ::testing::AssertionSuccess();
  }

  std::string Submit(int node, const v1::Job& job) {
    grpc::ClientContext context;
    v1::SubmitRequest request;
    *request.mutable_job() = job;
    v1::SubmitResponse response;
    grpc::Status status =
        stubs_[static_cast<size_t>(node)]->Submit(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.job_id();
  }

  // Every result of the job, streamed to its end (within 60 s).
  std::vector<v1::TaskResult> Collect(int node, const std::string& id,
                                      v1::JobStatus* final_status = nullptr) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(60));
    v1::WatchRequest request;
    request.set_job_id(id);
    auto reader = stubs_[static_cast<size_t>(node)]->Watch(&context, request);
    std::vector<v1::TaskResult> results;
    v1::WatchEvent event;
    while (reader->Read(&event)) {
      if (event.has_result()) results.push_back(event.result());
      if (final_status != nullptr) *final_status = event.status();
    }
    grpc::Status status = reader->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    return results;
  }

  static v1::Job SleepJob(int tasks, int ms) {
    v1::Job job;
    for (int i = 0; i < tasks; ++i) {
      v1::KernelSpec* kernel = job.add_tasks()->mutable_kernel();
      kernel->set_name("sleep");
      kernel->set_argument(absl::StrCat(ms));
    }
    return job;
  }

  std::vector<std::unique_ptr<NodeProcess>> nodes_;
  std::vector<std::unique_ptr<v1::Jobs::Stub>> stubs_;
};

TEST_F(GridJobsTest, AJobOnAnyNodeRunsOverTheWholeGridExactlyOnce) {
  const std::string id = Submit(1, SleepJob(1000, 3));
  v1::JobStatus final_status;
  const std::vector<v1::TaskResult> results = Collect(1, id, &final_status);
  ASSERT_EQ(results.size(), 1000u);
  std::set<uint64_t> indexes;
  std::map<std::string, int> per_node;
  for (const v1::TaskResult& result : results) {
    EXPECT_EQ(result.outcome(), v1::TASK_OUTCOME_SUCCEEDED) << result.reason();
    indexes.insert(result.index());
    ++per_node[result.node()];
  }
  EXPECT_EQ(indexes.size(), 1000u) << "every task exactly once";
  EXPECT_EQ(final_status.state(), v1::JOB_STATE_DONE);
  EXPECT_THAT(per_node, ::testing::SizeIs(3)) << "work ran on every node";
}

TEST_F(GridJobsTest, AKilledWorkersTasksRunAgainElsewhere) {
  const std::string id = Submit(0, SleepJob(40, 200));
  // Wait until node-2 holds a task, then kill it without warning.
  ASSERT_TRUE(Eventually(
      [&]() -> ::testing::AssertionResult {
        if (Running(2) > 0) return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure() << "node-2 idle";
      },
      absl::Seconds(10), absl::Milliseconds(5)));
  const absl::Time killed = absl::Now();
  nodes_[2]->process().Signal(SIGKILL);
  ASSERT_TRUE(nodes_[2]->process().Wait(absl::Seconds(5)).ok());

  v1::JobStatus final_status;
  const std::vector<v1::TaskResult> results = Collect(0, id, &final_status);
  ASSERT_EQ(results.size(), 40u);
  EXPECT_EQ(final_status.state(), v1::JOB_STATE_DONE);
  std::set<uint64_t> indexes;
  int rerun = 0;
  for (const v1::TaskResult& result : results) {
    indexes.insert(result.index());
    EXPECT_EQ(result.outcome(), v1::TASK_OUTCOME_SUCCEEDED) << result.reason();
    if (result.attempts() == 2) {
      ++rerun;
      EXPECT_NE(result.node(), "node-2");
    }
  }
  EXPECT_EQ(indexes.size(), 40u);
  EXPECT_GE(rerun, 1) << "the task node-2 held ran again";
  // 40 x 200 ms over the two survivors' two slots is ~4 s of work.
  EXPECT_LT(absl::Now() - killed, absl::Seconds(30));
}

TEST_F(GridJobsTest, ALongTaskOnAnotherNodeKeepsItsStream) {
  // Longer than the idle-channel timeout (5 s): the stream must stay up and
  // the task run once.
  v1::Job job = SleepJob(3, 8000);
  job.mutable_tasks(0)->set_cpus(1);
  const std::string id = Submit(0, job);
  v1::JobStatus final_status;
  const std::vector<v1::TaskResult> results = Collect(0, id, &final_status);
  ASSERT_EQ(results.size(), 3u);
  std::set<std::string> nodes;
  for (const v1::TaskResult& result : results) {
    EXPECT_EQ(result.outcome(), v1::TASK_OUTCOME_SUCCEEDED) << result.reason();
    EXPECT_EQ(result.attempts(), 1u) << result.node();
    nodes.insert(result.node());
  }
  EXPECT_EQ(nodes.size(), 3u) << "one task on each node";
}

// Start and end of each task, in ns, from its own stdout.
struct Interval {
  int64_t start = 0;
  int64_t end = 0;
};

TEST_F(GridJobsTest, TwoOriginsNeverOverloadAWorker) {
  v1::Job job;
  for (int i = 0; i < 24; ++i) {
    v1::ExecSpec* exec = job.add_tasks()->mutable_exec();
    for (const char* arg : {"sh", "-c", "date +%s%N; sleep 0.05; date +%s%N"}) {
      exec->add_argv(arg);
    }
  }
  const std::string a = Submit(0, job);
  const std::string b = Submit(1, job);
  std::map<std::string, std::vector<Interval>> per_node;
  for (const auto& [node, id] : {std::pair{0, a}, std::pair{1, b}}) {
    for (const v1::TaskResult& result : Collect(node, id)) {
      ASSERT_EQ(result.outcome(), v1::TASK_OUTCOME_SUCCEEDED)
          << result.reason();
      const std::vector<std::string> lines =
          absl::StrSplit(result.stdout(), '\n', absl::SkipEmpty());
      ASSERT_EQ(lines.size(), 2u) << result.stdout();
      Interval interval;
      ASSERT_TRUE(absl::SimpleAtoi(lines[0], &interval.start));
      ASSERT_TRUE(absl::SimpleAtoi(lines[1], &interval.end));
      per_node[result.node()].push_back(interval);
    }
  }
  for (const auto& [node, intervals] : per_node) {
    // The most intervals open at once on this node: each donates 1 core.
    std::vector<std::pair<int64_t, int>> edges;
    for (const Interval& interval : intervals) {
      edges.emplace_back(interval.start, 1);
      edges.emplace_back(interval.end, -1);
    }
    std::sort(edges.begin(), edges.end());
    int open = 0;
    int most = 0;
    for (const auto& [time, delta] : edges) {
      open += delta;
      most = std::max(most, open);
    }
    EXPECT_LE(most, 1) << node << " ran " << most << " tasks at once";
  }
}

TEST_F(GridJobsTest, CancelStopsTheWorkOnEveryNodeWithinASecond) {
  v1::Job job;
  for (int i = 0; i < 9; ++i) {
    v1::ExecSpec* exec = job.add_tasks()->mutable_exec();
    exec->add_argv("sleep");
    exec->add_argv("30");
  }
  const std::string id = Submit(0, job);
  ASSERT_TRUE(Eventually([&] { return EachRuns(0, 1); }, absl::Seconds(10)));
  const absl::Time start = absl::Now();
  {
    grpc::ClientContext context;
    v1::CancelRequest request;
    request.set_job_id(id);
    v1::CancelResponse response;
    ASSERT_TRUE(stubs_[0]->Cancel(&context, request, &response).ok());
    EXPECT_EQ(response.status().state(), v1::JOB_STATE_CANCELLED);
  }
  EXPECT_TRUE(Eventually([&] { return EachRuns(0, 0); }, absl::Seconds(1),
                         absl::Milliseconds(20)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(1.5));
}

// An origin that freezes (SIGSTOP: its connections stay open, as a
// powered-off machine's would until TCP gives up): gossip declares it dead
// within seconds and the workers end its streams, so its tasks stop long
// before they would end (30 s) or the keepalive would notice (80 s).
TEST_F(GridJobsTest, AFrozenOriginsTasksStopWhenItIsDeclaredDead) {
  const std::string id = Submit(0, SleepJob(3, 30000));
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(Eventually([&] { return EachRuns(1, 1); }, absl::Seconds(10)));
  const absl::Time frozen = absl::Now();
  nodes_[0]->process().Signal(SIGSTOP);
  // Death at 3 nodes: a probe within 2 s, then a 2 s suspicion (the
  // defaults, docs/membership.md); 15 s leaves room for a loaded machine.
  EXPECT_TRUE(Eventually([&] { return EachRuns(1, 0); }, absl::Seconds(15),
                         absl::Milliseconds(50)));
  std::cerr << "waited for the frozen origin's tasks to stop: "
            << absl::FormatDuration(absl::Now() - frozen) << "\n";
  nodes_[0]->process().Signal(SIGCONT);
  // The thawed origin would place the tasks again: end the job.
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
  v1::CancelRequest cancel;
  cancel.set_job_id(id);
  v1::CancelResponse response;
  EXPECT_TRUE(stubs_[0]->Cancel(&context, cancel, &response).ok());
}

}  // namespace
}  // namespace peergrid::testing
