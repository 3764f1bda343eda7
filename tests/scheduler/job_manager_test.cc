#include "scheduler/job_manager.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>

namespace peergrid::scheduler {
namespace {

using ::testing::HasSubstr;

v1::Job NoopJob(int tasks, uint32_t retries = 0) {
  v1::Job job;
  job.mutable_defaults()->set_retries(retries);
  for (int i = 0; i < tasks; ++i)
    job.add_tasks()->mutable_kernel()->set_name("noop");
  return job;
}

v1::WorkResult Result(const std::string& job_id, uint64_t index,
                      v1::TaskOutcome outcome = v1::TASK_OUTCOME_SUCCEEDED) {
  v1::WorkResult result;
  result.set_job_id(job_id);
  result.mutable_result()->set_index(index);
  result.mutable_result()->set_outcome(outcome);
  return result;
}

std::vector<uint64_t> Indexes(const TakenWork& taken) {
  std::vector<uint64_t> indexes;
  for (const v1::Bundle& bundle : taken.bundles) {
    for (const v1::Task& task : bundle.tasks()) indexes.push_back(task.index());
  }
  return indexes;
}

class JobManagerTest : public ::testing::Test {
 protected:
  JobManager jobs_{JobManagerOptions{}, nullptr};
};

TEST_F(JobManagerTest, SubmitRejectsABadJobBeforeAnythingIsQueued) {
  absl::StatusOr<std::string> id = jobs_.Submit(v1::Job());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(jobs_.PendingTasks(), 0u);
  EXPECT_TRUE(jobs_.List().empty());
}

TEST_F(JobManagerTest, TakeSharesSlotsFairlyAcrossJobs) {
  const std::string a = *jobs_.Submit(NoopJob(10));
  const std::string b = *jobs_.Submit(NoopJob(10));
  TakenWork taken = jobs_.Take(6, /*channel=*/1);
  EXPECT_EQ(taken.slots, 6u);
  ASSERT_EQ(taken.bundles.size(), 2u);
  EXPECT_EQ(taken.bundles[0].tasks_size(), 3);
  EXPECT_EQ(taken.bundles[1].tasks_size(), 3);
  EXPECT_EQ(jobs_.PendingTasks(), 14u);
  EXPECT_EQ(jobs_.Get(a)->state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(jobs_.Get(b)->tasks_running(), 3u);
}

TEST_F(JobManagerTest, TakeNeverExceedsTheSlots) {
  v1::Job job = NoopJob(4);
  job.mutable_tasks(0)->set_cpus(3);
  jobs_.Submit(job).IgnoreError();
  EXPECT_EQ(jobs_.Take(2, 1).slots, 0u) << "a 3-cpu task needs 3 slots";
  EXPECT_EQ(jobs_.Take(3, 1).slots, 3u);
  EXPECT_EQ(jobs_.Take(2, 1).slots, 2u);
}

TEST_F(JobManagerTest, AcceptsExactlyOneResultPerTask) {
  const std::string id = *jobs_.Submit(NoopJob(2));
  jobs_.Take(2, 1);
  jobs_.AcceptResult(1, "w", Result(id, 0));
  jobs_.AcceptResult(1, "w", Result(id, 0));  // A duplicate.
  JobManager::Results results = *jobs_.Read(id, 0, 100);
  EXPECT_EQ(results.events.size(), 1u);
  EXPECT_FALSE(results.finished);
  jobs_.AcceptResult(1, "w", Result(id, 1, v1::TASK_OUTCOME_FAILED));
  results = *jobs_.Read(id, 0, 100);
  ASSERT_EQ(results.events.size(), 2u);
  EXPECT_TRUE(results.finished);
  EXPECT_EQ(results.status.state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(results.status.tasks_succeeded(), 1u);
  EXPECT_EQ(results.status.tasks_failed(), 1u);
  EXPECT_EQ(results.events[0].result().node(), "w");
  EXPECT_EQ(results.events[1].result_number(), 1u);
}

TEST_F(JobManagerTest, ALostChannelsTasksRunAgainWithTheirAttemptsCounted) {
  const std::string id = *jobs_.Submit(NoopJob(3));
  EXPECT_EQ(jobs_.Take(3, /*channel=*/7).slots, 3u);
  jobs_.AcceptResult(7, "dead", Result(id, 1));
  jobs_.ChannelLost(7, "dead", "dead crashed");
  EXPECT_EQ(jobs_.PendingTasks(), 2u);
  EXPECT_THAT(Indexes(jobs_.Take(10, 8)),
              ::testing::UnorderedElementsAre(0, 2));
  // The lost worker's late result for task 0 would be a twin: dropped.
  jobs_.AcceptResult(8, "alive", Result(id, 0));
  jobs_.AcceptResult(7, "dead", Result(id, 0));
  jobs_.AcceptResult(8, "alive", Result(id, 2));
  JobManager::Results results = *jobs_.Read(id, 0, 100);
  ASSERT_EQ(results.events.size(), 3u);
  EXPECT_EQ(results.status.state(), v1::JOB_STATE_DONE);
  for (const v1::WatchEvent& event : results.events) {
    const uint32_t expected = event.result().index() == 1 ? 1 : 2;
    EXPECT_EQ(event.result().attempts(), expected) << event.DebugString();
  }
}

TEST_F(JobManagerTest, GivesUpWhenRetriesAreSpent) {
  const std::string id = *jobs_.Submit(NoopJob(1, /*retries=*/1));
  jobs_.Take(1, 1);
  jobs_.ChannelLost(1, "w1", "first loss");
  jobs_.Take(1, 2);
  jobs_.ChannelLost(2, "w2", "second loss");
  JobManager::Results results = *jobs_.Read(id, 0, 10);
  ASSERT_EQ(results.events.size(), 1u);
  EXPECT_EQ(results.events[0].result().outcome(), v1::TASK_OUTCOME_FAILED);
  EXPECT_THAT(results.events[0].result().reason(), HasSubstr("second loss"));
  EXPECT_EQ(results.events[0].result().attempts(), 2u);
  EXPECT_EQ(results.events[0].result().node(), "w2");
}

TEST_F(JobManagerTest, ARejectedTaskGoesBackToPending) {
  const std::string id = *jobs_.Submit(NoopJob(1));
  jobs_.Take(1, 1);
  jobs_.AcceptResult(1, "w", Result(id, 0, v1::TASK_OUTCOME_REJECTED));
  EXPECT_EQ(jobs_.PendingTasks(), 1u);
  EXPECT_TRUE(jobs_.Read(id, 0, 10)->events.empty());
}

TEST_F(JobManagerTest, FailuresAreRetriedOnlyWhenAsked) {
  v1::Job job = NoopJob(1, /*retries=*/2);
  job.mutable_defaults()->set_retry_failed(true);
  const std::string id = *jobs_.Submit(job);
  jobs_.Take(1, 1);
  jobs_.AcceptResult(1, "w", Result(id, 0, v1::TASK_OUTCOME_FAILED));
  EXPECT_EQ(jobs_.PendingTasks(), 1u);
  jobs_.Take(1, 1);
  jobs_.AcceptResult(1, "w", Result(id, 0));
  EXPECT_EQ(jobs_.Get(id)->state(), v1::JOB_STATE_DONE);
}

TEST_F(JobManagerTest, CancelStopsPendingWorkAndNamesBusyChannels) {
  const std::string id = *jobs_.Submit(NoopJob(5));
  jobs_.Take(2, 3);
  absl::StatusOr<std::vector<ChannelId>> channels = jobs_.Cancel(id);
  ASSERT_TRUE(channels.ok());
  EXPECT_EQ(*channels, std::vector<ChannelId>{3});
  EXPECT_EQ(jobs_.PendingTasks(), 0u);
  EXPECT_EQ(jobs_.Get(id)->state(), v1::JOB_STATE_CANCELLED);
  jobs_.AcceptResult(3, "w", Result(id, 0));  // Too late: dropped.
  EXPECT_TRUE(jobs_.Read(id, 0, 10)->events.empty());
  EXPECT_EQ(jobs_.Cancel("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(JobManagerTest, WakesAWatcherWhenItsResultArrives) {
  const std::string id = *jobs_.Submit(NoopJob(2));
  jobs_.Take(2, 1);
  std::atomic<int> woken{0};
  ASSERT_TRUE(jobs_.WakeWhenReady(id, 1, [&] { ++woken; }).ok());
  jobs_.AcceptResult(1, "w", Result(id, 0));
  EXPECT_EQ(woken, 0) << "result number 1 does not exist yet";
  jobs_.AcceptResult(1, "w", Result(id, 1));
  EXPECT_EQ(woken, 1);
  // Already there: woken at once.
  ASSERT_TRUE(jobs_.WakeWhenReady(id, 0, [&] { ++woken; }).ok());
  EXPECT_EQ(woken, 2);
}

TEST_F(JobManagerTest, ReadResumesFromAnyNumberWithoutRepeats) {
  const std::string id = *jobs_.Submit(NoopJob(5));
  jobs_.Take(5, 1);
  for (uint64_t i = 0; i < 5; ++i)
    jobs_.AcceptResult(1, "w", Result(id, 4 - i));
  JobManager::Results first = *jobs_.Read(id, 0, 2);
  JobManager::Results rest = *jobs_.Read(id, 2, 100);
  ASSERT_EQ(first.events.size(), 2u);
  ASSERT_EQ(rest.events.size(), 3u);
  EXPECT_FALSE(first.finished);
  EXPECT_TRUE(rest.finished);
  std::vector<uint64_t> seen;
  for (const auto* part : {&first, &rest}) {
    for (const v1::WatchEvent& event : part->events) {
      seen.push_back(event.result().index());
    }
  }
  EXPECT_EQ(seen, (std::vector<uint64_t>{4, 3, 2, 1, 0}));
}

TEST(JobManagerRetentionTest, ForgetsTheOldestFinishedJobs) {
  JobManagerOptions options;
  options.finished_jobs_kept = 2;
  JobManager jobs(options, nullptr);
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    ids.push_back(*jobs.Submit(NoopJob(1)));
    jobs.Take(1, 1);
    jobs.AcceptResult(1, "w", Result(ids.back(), 0));
  }
  EXPECT_EQ(jobs.List().size(), 2u);
  EXPECT_EQ(jobs.Get(ids[0]).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(jobs.Get(ids[3]).ok());
}

// One no-op task, carrying the blob "payload".
v1::Job JobWithBlob() {
  v1::Job job = NoopJob(1);
  v1::Blob* blob = job.add_blobs();
  blob->set_data("payload");
  blob->set_sha256(Sha256Hex("payload"));
  return job;
}

TEST(JobManagerBlobTest, ServesBlobsOfKeptJobs) {
  JobManager jobs(JobManagerOptions{}, nullptr);
  ASSERT_TRUE(jobs.Submit(JobWithBlob()).ok());
  EXPECT_EQ(*jobs.ReadBlob(Sha256Hex("payload")), "payload");
  EXPECT_EQ(jobs.ReadBlob(Sha256Hex("other")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(JobManagerBlobTest, ANamedWorkerGetsOnlyBlobsOfTheTasksItHolds) {
  JobManager jobs(JobManagerOptions{}, nullptr);
  ASSERT_TRUE(jobs.Submit(JobWithBlob()).ok());
  const std::string sha = Sha256Hex("payload");
  // No task is out: no worker may read it (a plain caller, unnamed, may).
  EXPECT_EQ(jobs.ReadBlob(sha, "w1").status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(jobs.ReadBlob(sha).ok());
  ASSERT_EQ(jobs.Take(1, /*channel=*/3, "w1").bundles.size(), 1u);
  EXPECT_EQ(*jobs.ReadBlob(sha, "w1"), "payload");
  EXPECT_EQ(jobs.ReadBlob(sha, "w2").status().code(),
            absl::StatusCode::kPermissionDenied);
  // Once its channel is lost the task is no longer w1's.
  jobs.ChannelLost(3, "w1", "gone");
  EXPECT_EQ(jobs.ReadBlob(sha, "w1").status().code(),
            absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace peergrid::scheduler
