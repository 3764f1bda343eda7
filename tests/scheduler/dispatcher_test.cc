// The dispatcher against fake workers that speak the credit protocol in
// process: late binding, exactly-once results and re-placement on loss.
#include "scheduler/dispatcher.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "absl/synchronization/mutex.h"
#include "tests/testing/eventually.h"

namespace peergrid::scheduler {
namespace {

using ::peergrid::testing::Eventually;

// A worker with `slots` slots. Tasks sent to it run until the test calls
// Step(), which finishes every running task. Tracks the most tasks it ever
// held at once.
class FakeWorker {
 public:
  FakeWorker(std::string name, uint32_t slots)
      : name_(std::move(name)), slots_(slots) {}

  class Channel : public WorkChannel {
   public:
    Channel(FakeWorker& worker, std::shared_ptr<WorkChannelEvents> events)
        : worker_(worker), events_(std::move(events)) {}
    void SetDemand(uint32_t slots) override { worker_.SetDemand(this, slots); }
    void Submit(v1::Bundle bundle) override { worker_.Accept(this, bundle); }
    void Cancel(v1::CancelWork) override {}
    void Close() override {
      worker_.Drop(this, absl::CancelledError("closed"));
    }
    FakeWorker& worker_;
    std::shared_ptr<WorkChannelEvents> events_;
  };

  std::unique_ptr<WorkChannel> Open(const v1::OpenWork& open,
                                    std::shared_ptr<WorkChannelEvents> events) {
    auto channel = std::make_unique<Channel>(*this, std::move(events));
    SetDemand(channel.get(), open.slots_wanted());
    return channel;
  }

  // Finishes every running task; returns how many.
  int Step() {
    std::vector<std::pair<Channel*, v1::WorkResult>> done;
    {
      absl::MutexLock lock(&mu_);
      if (dead_) return 0;
      for (auto& [channel, tasks] : running_) {
        for (auto& [job, task] : tasks) {
          v1::WorkResult result;
          result.set_job_id(job);
          result.mutable_result()->set_index(task.index());
          result.mutable_result()->set_outcome(v1::TASK_OUTCOME_SUCCEEDED);
          result.mutable_result()->set_node(name_);
          done.emplace_back(channel, std::move(result));
        }
        tasks.clear();
      }
      held_ = 0;
    }
    for (auto& [channel, result] : done) {
      channel->events_->OnResult(std::move(result));
    }
    for (auto& [channel, result] : done) GrantFree(channel);
    return static_cast<int>(done.size());
  }

  // The worker dies: its streams break.
  void Kill() {
    std::vector<Channel*> channels;
    {
      absl::MutexLock lock(&mu_);
      dead_ = true;
      for (auto& [channel, tasks] : running_) channels.push_back(channel);
    }
    for (Channel* channel : channels) {
      Drop(channel, absl::UnavailableError("worker died"));
    }
  }

  uint32_t peak() const {
    absl::MutexLock lock(&mu_);
    return peak_;
  }
  const std::string& name() const { return name_; }

 private:
  void SetDemand(Channel* channel, uint32_t slots) {
    {
      absl::MutexLock lock(&mu_);
      demand_[channel] = slots;
      running_[channel];
    }
    GrantFree(channel);
  }
  // Grants this channel what is free, within its demand.
  void GrantFree(Channel* channel) {
    uint32_t grant = 0;
    {
      absl::MutexLock lock(&mu_);
      if (dead_ || running_.count(channel) == 0) return;
      const uint32_t outstanding = granted_[channel];
      const uint32_t wanted = demand_[channel];
      const uint32_t free = slots_ - held_ - Outstanding();
      if (wanted > outstanding) grant = std::min(wanted - outstanding, free);
      granted_[channel] += grant;
    }
    if (grant > 0) channel->events_->OnCredits(grant);
  }
  uint32_t Outstanding() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    uint32_t total = 0;
    for (auto& [channel, granted] : granted_) total += granted;
    return total;
  }
  void Accept(Channel* channel, const v1::Bundle& bundle) {
    absl::MutexLock lock(&mu_);
    for (const v1::Task& task : bundle.tasks()) {
      ASSERT_GE(granted_[channel], task.cpus()) << "sent without credit";
      granted_[channel] -= task.cpus();
      held_ += task.cpus();
      running_[channel].emplace_back(bundle.job_id(), task);
    }
    peak_ = std::max(peak_, held_);
  }
  void Drop(Channel* channel, absl::Status status) {
    {
      absl::MutexLock lock(&mu_);
      auto it = running_.find(channel);
      if (it == running_.end()) return;
      for (auto& [job, task] : it->second) held_ -= task.cpus();
      running_.erase(it);
      granted_.erase(channel);
      demand_.erase(channel);
    }
    channel->events_->OnClosed(status);
  }

  const std::string name_;
  const uint32_t slots_;
  mutable absl::Mutex mu_;
  std::map<Channel*, std::vector<std::pair<std::string, v1::Task>>> running_
      ABSL_GUARDED_BY(mu_);
  std::map<Channel*, uint32_t> granted_ ABSL_GUARDED_BY(mu_);
  std::map<Channel*, uint32_t> demand_ ABSL_GUARDED_BY(mu_);
  uint32_t held_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t peak_ ABSL_GUARDED_BY(mu_) = 0;
  bool dead_ ABSL_GUARDED_BY(mu_) = false;
};

class DispatcherTest : public ::testing::Test {
 protected:
  void StartGrid(std::vector<uint32_t> slots,
                 absl::Duration idle_close = absl::Seconds(5)) {
    for (size_t i = 0; i < slots.size(); ++i) {
      workers_.push_back(
          std::make_unique<FakeWorker>("w" + std::to_string(i), slots[i]));
    }
    DispatcherOptions options;
    options.tick = absl::Milliseconds(5);
    options.idle_close = idle_close;
    dispatcher_ = std::make_unique<Dispatcher>(
        options, jobs_,
        [this] {
          std::vector<WorkerView> members;
          absl::MutexLock lock(&mu_);
          for (const auto& worker : workers_) {
            if (dead_.count(worker->name()) == 0) {
              // A stale view: everyone claims 8 free cores.
              members.push_back({worker->name(), worker->name(), 8, 8});
            }
          }
          return members;
        },
        [this](const WorkerEndpoint& endpoint, const v1::OpenWork& open,
               std::shared_ptr<WorkChannelEvents> events) {
          for (const auto& worker : workers_) {
            if (worker->name() == endpoint.name) {
              return worker->Open(open, std::move(events));
            }
          }
          ADD_FAILURE() << "unknown worker " << endpoint.name;
          return std::unique_ptr<WorkChannel>();
        });
    dispatcher_->Start("origin", "origin:1");
  }

  // Steps every live worker until the job finishes or 10 s pass.
  ::testing::AssertionResult RunToEnd(const std::string& id) {
    return Eventually(
        [&]() -> ::testing::AssertionResult {
          for (const auto& worker : workers_) worker->Step();
          absl::StatusOr<v1::JobStatus> status = jobs_.Get(id);
          if (status.ok() && status->state() == v1::JOB_STATE_DONE) {
            return ::testing::AssertionSuccess();
          }
          return ::testing::AssertionFailure() << status->DebugString();
        },
        absl::Seconds(10), absl::Milliseconds(1));
  }

  absl::Mutex mu_;
  std::set<std::string> dead_ ABSL_GUARDED_BY(mu_);
  JobManager jobs_{JobManagerOptions{}, nullptr};
  std::vector<std::unique_ptr<FakeWorker>> workers_;
  std::unique_ptr<Dispatcher> dispatcher_;
};

v1::Job NoopJob(int tasks) {
  v1::Job job;
  for (int i = 0; i < tasks; ++i)
    job.add_tasks()->mutable_kernel()->set_name("noop");
  return job;
}

TEST_F(DispatcherTest, RunsEveryTaskOnceWithinEachWorkersSlots) {
  StartGrid({2, 1, 3});
  const std::string id = *jobs_.Submit(NoopJob(1000));
  ASSERT_TRUE(RunToEnd(id));
  JobManager::Results results = *jobs_.Read(id, 0, 5000);
  ASSERT_EQ(results.events.size(), 1000u);
  std::set<uint64_t> indexes;
  std::map<std::string, int> per_node;
  for (const v1::WatchEvent& event : results.events) {
    indexes.insert(event.result().index());
    ++per_node[event.result().node()];
    EXPECT_EQ(event.result().attempts(), 1u);
  }
  EXPECT_EQ(indexes.size(), 1000u);
  EXPECT_EQ(per_node.size(), 3u) << "every worker took part";
  // The view claimed 8 free cores each; credits held the workers to theirs.
  EXPECT_LE(workers_[0]->peak(), 2u);
  EXPECT_LE(workers_[1]->peak(), 1u);
  EXPECT_LE(workers_[2]->peak(), 3u);
}

TEST_F(DispatcherTest, TasksOfAKilledWorkerRunElsewhere) {
  StartGrid({2, 2});
  const std::string id = *jobs_.Submit(NoopJob(100));
  // Let both workers take tasks, then kill one with its tasks in hand.
  ASSERT_TRUE(Eventually(
      [&]() -> ::testing::AssertionResult {
        if (workers_[0]->peak() == 2 && workers_[1]->peak() == 2) {
          return ::testing::AssertionSuccess();
        }
        return ::testing::AssertionFailure() << "workers not busy yet";
      },
      absl::Seconds(5)));
  {
    absl::MutexLock lock(&mu_);
    dead_.insert("w1");
  }
  workers_[1]->Kill();
  ASSERT_TRUE(RunToEnd(id));
  JobManager::Results results = *jobs_.Read(id, 0, 1000);
  ASSERT_EQ(results.events.size(), 100u);
  int rerun = 0;
  for (const v1::WatchEvent& event : results.events) {
    EXPECT_EQ(event.result().node(), "w0");
    rerun += event.result().attempts() == 2 ? 1 : 0;
  }
  EXPECT_EQ(rerun, 2) << "the two tasks the dead worker held";
}

TEST_F(DispatcherTest, ABusyChannelIsNotClosedAsIdle) {
  StartGrid({1}, /*idle_close=*/absl::Milliseconds(20));
  const std::string id = *jobs_.Submit(NoopJob(1));
  ASSERT_TRUE(Eventually(
      [&]() -> ::testing::AssertionResult {
        if (workers_[0]->peak() == 1) return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure() << "not sent yet";
      },
      absl::Seconds(5)));
  // The task runs for many idle periods before it finishes.
  absl::SleepFor(absl::Milliseconds(200));
  ASSERT_EQ(dispatcher_->channel_count(), 1u);
  ASSERT_TRUE(RunToEnd(id));
  EXPECT_EQ(jobs_.Read(id, 0, 1)->events[0].result().attempts(), 1u);
}

TEST_F(DispatcherTest, CancelReachesTheJob) {
  StartGrid({2});
  const std::string id = *jobs_.Submit(NoopJob(10));
  absl::StatusOr<v1::JobStatus> status = dispatcher_->CancelJob(id);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(jobs_.PendingTasks(), 0u);
}

}  // namespace
}  // namespace peergrid::scheduler
