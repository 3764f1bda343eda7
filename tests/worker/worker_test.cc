// The Worker through in-process sessions (the origin-on-the-same-node path).
#include "worker/worker.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <atomic>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/worker/test_util.h"
#include "worker/kernel.h"

namespace peergrid::worker {
namespace {

using testing::Bundle;
using testing::CollectingSink;
using testing::Eventually;
using ::testing::HasSubstr;
using testing::Kernel;
using testing::Sh;
using testing::TempDir;

class WorkerTest : public ::testing::Test {
 protected:
  void Start() { Start(WorkerOptions()); }
  void Start(WorkerOptions o) {
    if (o.cores == 0) o.cores = 2;
    o.data_dir = dir_.path() + "/data";
    o.node_name = "w1";
    auto w = Worker::Create(std::move(o), &registry_);
    ASSERT_TRUE(w.ok()) << w.status();
    worker_ = std::move(*w);
  }
  void TearDown() override { worker_.reset(); }

  // Opens a session wanting `wanted` slots and waits for `take` credits.
  std::unique_ptr<WorkSession> OpenAndTake(CollectingSink& sink,
                                           uint32_t wanted, int take) {
    v1::OpenWork open;
    open.set_origin("test");
    open.set_slots_wanted(wanted);
    auto session = worker_->OpenSession(open, sink, nullptr);
    if (!sink.Take(take)) return nullptr;
    return session;
  }

  double Metric(const std::string& name,
                const std::map<std::string, std::string>& labels = {}) {
    for (const auto& family : registry_.Collect()) {
      if (family.name != name) continue;
      for (const auto& m : family.metric) {
        bool match = true;
        for (const auto& [k, v] : labels) {
          bool found = false;
          for (const auto& l : m.label) found |= l.name == k && l.value == v;
          match &= found;
        }
        if (!match) continue;
        if (family.type == prometheus::MetricType::Counter) {
          return m.counter.value;
        }
        if (family.type == prometheus::MetricType::Gauge) return m.gauge.value;
        if (family.type == prometheus::MetricType::Histogram) {
          return static_cast<double>(m.histogram.sample_count);
        }
      }
    }
    return -1;
  }

  TempDir dir_;
  prometheus::Registry registry_;
  std::unique_ptr<Worker> worker_;
};

TEST_F(WorkerTest, CreditsThenResults) {
  Start();
  CollectingSink sink;
  v1::OpenWork open;
  open.set_origin("o1");
  open.set_slots_wanted(5);
  auto session = worker_->OpenSession(open, sink, nullptr);
  // Never more credits than donated cores.
  ASSERT_TRUE(sink.Take(2));
  EXPECT_EQ(sink.credits(), 0);
  session->Submit(
      Bundle("j", {Kernel(0, "echo", "a"), Kernel(1, "primes", "100")}));
  auto results = sink.WaitResults(2);
  ASSERT_EQ(results.size(), 2u);
  for (const auto& wr : results) {
    EXPECT_EQ(wr.job_id(), "j");
    EXPECT_EQ(wr.result().outcome(), v1::TASK_OUTCOME_SUCCEEDED);
    EXPECT_EQ(wr.result().node(), "w1");
    EXPECT_EQ(wr.result().output(), wr.result().index() == 0 ? "a" : "25");
  }
  // The results returned their credits.
  EXPECT_TRUE(sink.Take(2));
  EXPECT_EQ(Metric("peergrid_worker_tasks_finished_total",
                   {{"kind", "kernel"}, {"outcome", "succeeded"}}),
            2);
  EXPECT_EQ(Metric("peergrid_worker_cores_donated"), 2);
}

TEST_F(WorkerTest, TasksBeyondCreditsAreRefusedNotRun) {
  Start();
  CollectingSink sink;
  auto session = OpenAndTake(sink, 1, 1);
  ASSERT_NE(session, nullptr);
  session->Submit(Bundle("j", {Kernel(0, "sleep", "50"), Kernel(1, "echo", "x"),
                               Kernel(2, "echo", "y")}));
  auto results = sink.WaitResults(3);
  ASSERT_EQ(results.size(), 3u);
  int refused = 0;
  for (const auto& wr : results) {
    if (wr.result().outcome() == v1::TASK_OUTCOME_REJECTED) {
      ++refused;
      EXPECT_THAT(wr.result().reason(), HasSubstr("no credit"));
      EXPECT_NE(wr.result().index(), 0u);
    }
  }
  EXPECT_EQ(refused, 2);
  EXPECT_EQ(
      Metric("peergrid_worker_tasks_refused_total", {{"reason", "no_credit"}}),
      2);
  // A task asking for more cpus than the worker has is refused.
  ASSERT_TRUE(sink.Take(1));
  auto big = Kernel(3, "noop", "");
  big.set_cpus(3);
  session->Submit(Bundle("j", {big}));
  results = sink.WaitResults(4);
  EXPECT_THAT(results.back().result().reason(), HasSubstr("asks for 3 cpus"));
}

TEST_F(WorkerTest, UnknownKernelAndRefusedKinds) {
  WorkerOptions o;
  o.accept_exec = false;
  Start(o);
  CollectingSink sink;
  auto session = OpenAndTake(sink, 2, 2);
  ASSERT_NE(session, nullptr);
  session->Submit(Bundle("j", {Kernel(0, "frobnicate", ""), Sh(1, "true")}));
  auto results = sink.WaitResults(2);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].result().outcome(), v1::TASK_OUTCOME_REJECTED);
  EXPECT_THAT(results[0].result().reason(),
              HasSubstr("unknown kernel 'frobnicate'"));
  EXPECT_THAT(results[1].result().reason(), HasSubstr("--accept=kernel"));
  // Refusals do not consume credits: two more tasks are accepted.
  session->Submit(Bundle("j", {Kernel(2, "noop", ""), Kernel(3, "noop", "")}));
  results = sink.WaitResults(4);
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(results[2].result().outcome(), v1::TASK_OUTCOME_SUCCEEDED);
  EXPECT_EQ(results[3].result().outcome(), v1::TASK_OUTCOME_SUCCEEDED);
}

TEST_F(WorkerTest, PluginKernelsThroughOptions) {
  WorkerOptions o;
  o.plugins = {PEERGRID_EXAMPLE_PLUGIN};
  Start(o);
  CollectingSink sink;
  auto session = OpenAndTake(sink, 1, 1);
  ASSERT_NE(session, nullptr);
  session->Submit(Bundle("j", {Kernel(0, "reverse", "peergrid")}));
  EXPECT_EQ(sink.WaitResults(1).at(0).result().output(), "dirgreep");

  WorkerOptions bad;
  bad.data_dir = dir_.path() + "/d2";
  bad.plugins = {"/nonexistent.so"};
  EXPECT_FALSE(Worker::Create(bad, nullptr).ok());
}

TEST_F(WorkerTest, SlotsSharedFairlyAmongSessions) {
  WorkerOptions o;
  o.cores = 4;
  Start(o);
  CollectingSink a, b;
  v1::OpenWork open;
  open.set_slots_wanted(10);
  auto sa = worker_->OpenSession(open, a, nullptr);
  ASSERT_TRUE(a.Take(4));  // Alone: all four.
  auto sb = worker_->OpenSession(open, b, nullptr);
  EXPECT_EQ(b.credits(), 0);  // Nothing free until a's tasks finish.
  sa->Submit(Bundle("a", {Kernel(0, "noop", ""), Kernel(1, "noop", ""),
                          Kernel(2, "noop", ""), Kernel(3, "noop", "")}));
  a.WaitResults(4);
  // The four freed slots go two and two.
  EXPECT_TRUE(Eventually([&] { return b.credits() == 2 && a.credits() == 2; },
                         absl::Seconds(5)));
  // Demand bounds grants: a session wanting 1 holds at most 1.
  sb->SetDemand(1);
  sa->SetDemand(0);
  CollectingSink c;
  open.set_slots_wanted(3);
  auto sc = worker_->OpenSession(open, c, nullptr);
  EXPECT_EQ(c.credits(), 0);  // a and b still hold their unused credits.
}

TEST_F(WorkerTest, CancelTaskJobAndSession) {
  Start();
  CollectingSink sink;
  auto session = OpenAndTake(sink, 2, 2);
  ASSERT_NE(session, nullptr);
  session->Submit(
      Bundle("j1", {Kernel(0, "sleep", "60000"), Sh(1, "sleep 60")}));
  ASSERT_TRUE(Eventually([&] { return worker_->stats().running == 2; },
                         absl::Seconds(5)));
  const absl::Time t0 = absl::Now();
  v1::CancelWork one;
  one.set_job_id("j1");
  one.add_task_indexes(1);
  session->Cancel(one);
  auto r = sink.WaitResults(1, absl::Seconds(1));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].result().index(), 1u);
  EXPECT_EQ(r[0].result().outcome(), v1::TASK_OUTCOME_CANCELLED);
  v1::CancelWork job;
  job.set_job_id("j1");
  session->Cancel(job);
  r = sink.WaitResults(2, absl::Seconds(1));
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[1].result().outcome(), v1::TASK_OUTCOME_CANCELLED);
  EXPECT_LT(absl::Now() - t0, absl::Seconds(1));

  // Closing a session stops everything it runs within a second.
  ASSERT_TRUE(sink.Take(2));
  session->Submit(Bundle("j2", {Sh(0, "sleep 60"), Sh(1, "sleep 60")}));
  ASSERT_TRUE(Eventually([&] { return worker_->stats().running == 2; },
                         absl::Seconds(5)));
  const absl::Time t1 = absl::Now();
  session->Close();
  EXPECT_TRUE(Eventually([&] { return worker_->stats().running == 0; },
                         absl::Seconds(1)));
  EXPECT_LT(absl::Now() - t1, absl::Seconds(1));
}

TEST_F(WorkerTest, SuspendAndResumeExecTasks) {
  Start();
  CollectingSink sink;
  auto session = OpenAndTake(sink, 1, 1);
  ASSERT_NE(session, nullptr);
  session->Submit(Bundle("j", {Sh(0, absl::StrCat("echo $$ > ", dir_.path(),
                                                  "/pid; exec sleep 60"))}));
  pid_t pid = 0;
  ASSERT_TRUE(Eventually(
      [&] {
        std::ifstream in(dir_.path() + "/pid");
        return static_cast<bool>(in >> pid) && pid > 0;
      },
      absl::Seconds(5)));
  worker_->SetDonatedForTest(0, /*suspend=*/true);
  EXPECT_TRUE(Eventually([&] { return testing::ProcessState(pid) == 'T'; },
                         absl::Seconds(2)));
  EXPECT_EQ(worker_->cores_donated(), 0);
  EXPECT_TRUE(worker_->stats().suspended);
  worker_->SetDonatedForTest(2, /*suspend=*/false);
  EXPECT_TRUE(Eventually([&] { return testing::ProcessState(pid) == 'S'; },
                         absl::Seconds(2)));
}

TEST_F(WorkerTest, DonationLimitsGrants) {
  Start();
  std::atomic<int> load_changes{0};
  worker_->SetLoadListener([&] { ++load_changes; });
  worker_->SetDonatedForTest(1, false);
  EXPECT_GE(load_changes.load(), 1);
  EXPECT_EQ(worker_->cores_donated(), 1);
  CollectingSink sink;
  auto session = OpenAndTake(sink, 5, 1);
  ASSERT_NE(session, nullptr);
  EXPECT_EQ(sink.credits(), 0);
  worker_->SetDonatedForTest(2, false);
  EXPECT_TRUE(sink.Take(1));
  EXPECT_EQ(worker_->cores_free(), 2);
}

TEST(WorkerFlagsTest, ParsesDonateAcceptAndSandbox) {
  EXPECT_EQ(*ParseDonateMode("idle"), DonateMode::kIdle);
  EXPECT_EQ(*ParseDonateMode("all"), DonateMode::kAll);
  EXPECT_FALSE(ParseDonateMode("some").ok());
  WorkerOptions o;
  ASSERT_TRUE(ParseAcceptKinds("kernel", o).ok());
  EXPECT_FALSE(o.accept_exec);
  EXPECT_TRUE(o.accept_kernel);
  ASSERT_TRUE(ParseAcceptKinds("exec,kernel", o).ok());
  EXPECT_TRUE(o.accept_exec);
  EXPECT_FALSE(ParseAcceptKinds("gpu", o).ok());
  EXPECT_FALSE(ParseAcceptKinds("", o).ok());
  ASSERT_TRUE(ParseSandbox("bwrap", o).ok());
  EXPECT_TRUE(o.sandbox_bwrap);
  EXPECT_FALSE(ParseSandbox("docker", o).ok());
}

}  // namespace
}  // namespace peergrid::worker
