// The origin's job manager: validates, stores and tracks jobs; hands their
// tasks out to work channels; accepts exactly one result per task; keeps the
// ordered result log that Watch streams from.
//
// Ownership and threading: the node owns one JobManager. Every method is
// thread-safe behind one mutex, and none blocks or calls out while holding
// it: notifications (Watch wake-ups, the work-available listener) run after
// the lock is released, on the calling thread. Results are numbered in the
// order they were accepted, from 0; a reader that knows the next number it
// needs neither loses nor repeats a result.
//
// A task in flight belongs to one channel (one stream to one worker). A
// channel that closes or a worker that dies gives its tasks back: they run
// again elsewhere, up to the job's `retries`. A result that comes back for a
// task already finished (the slow twin of a re-run) is dropped.
#ifndef PEERGRID_SCHEDULER_JOB_MANAGER_H_
#define PEERGRID_SCHEDULER_JOB_MANAGER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/jobs.pb.h"
#include "proto/work.pb.h"
#include "scheduler/job_validation.h"

namespace prometheus {
class Registry;
}

namespace peergrid::scheduler {

class SchedulerMetrics;

// Identifies one stream to one worker for the life of the origin.
using ChannelId = uint64_t;

struct JobManagerOptions {
  JobLimits limits;
  // Finished jobs kept for `jobs`, `wait` and late watchers; the oldest
  // finished job is forgotten beyond this.
  size_t finished_jobs_kept = 200;
  // Re-runs after lost workers when a job does not say (its retries = 0
  // means this default).
  uint32_t default_retries = 3;
  // Prefix of job ids, to tell origins apart in logs.
  std::string origin_name;
};

// The tasks one channel should send next: one bundle per job.
struct TakenWork {
  std::vector<v1::Bundle> bundles;
  uint32_t slots = 0;  // Sum of the taken tasks' cpus.
};

class JobManager {
 public:
  // `registry` may be null; it must outlive the manager.
  JobManager(JobManagerOptions options, prometheus::Registry* registry);
  ~JobManager();
  JobManager(const JobManager&) = delete;
  JobManager& operator=(const JobManager&) = delete;

  // --- Client side (the Jobs service) ---

  // Validates the whole job (InvalidArgument naming the problem) and queues
  // its tasks; returns the job's id.
  // `submitter` is recorded in the job's status (who may cancel it).
  absl::StatusOr<std::string> Submit(v1::Job job,
                                     const std::string& submitter = "");
  // Marks the job cancelled and drops its pending tasks; returns the
  // channels that still run some of its tasks, to be told to stop them.
  // NotFound for an unknown job; a finished job is left as it is.
  absl::StatusOr<std::vector<ChannelId>> Cancel(const std::string& job_id);
  absl::StatusOr<v1::JobStatus> Get(const std::string& job_id) const;
  // Every job kept, oldest first.
  std::vector<v1::JobStatus> List() const;

  // Up to `max` results from number `from` on, with the job's status.
  struct Results {
    std::vector<v1::WatchEvent> events;  // Each with result and number.
    v1::JobStatus status;
    bool finished = false;  // No result after these will ever come.
  };
  absl::StatusOr<Results> Read(const std::string& job_id, uint64_t from,
                               size_t max) const;
  // Calls `wake` once, from whichever thread makes it true, when result
  // number `from` exists or the job finishes or is forgotten. If that is
  // already so, calls it before returning. Returns a handle for
  // CancelWake(). NotFound for an unknown job.
  absl::StatusOr<uint64_t> WakeWhenReady(const std::string& job_id,
                                         uint64_t from,
                                         absl::AnyInvocable<void()> wake);
  // Forgets a wake-up that has not run; harmless if it has.
  void CancelWake(const std::string& job_id, uint64_t handle);

  // The content of a blob some job carries (workers fetch inputs from it).
  // A non-empty `requester` (a worker's proven name) must hold a task of a
  // job that carries the blob: PermissionDenied otherwise.
  absl::StatusOr<std::string> ReadBlob(const std::string& sha256,
                                       const std::string& requester = "") const;

  // --- Dispatcher side ---

  // Called (without locks) whenever tasks become pending.
  void SetWorkAvailableListener(std::function<void()> listener);
  // Tasks waiting for a worker, and the most cpus a task of a job with
  // pending tasks asks for.
  size_t PendingTasks() const;
  uint32_t MaxPendingCpus() const;
  // Tasks in flight on `channel`.
  size_t InFlight(ChannelId channel) const;
  // Takes pending tasks worth at most `slots` cpus, fairly across jobs (one
  // task per job in turn), and records them in flight on `channel`, which
  // goes to `worker` (for ReadBlob's check; until ChannelLost).
  TakenWork Take(uint32_t slots, ChannelId channel,
                 const std::string& worker = "");
  // A result from `channel`. The first result for a task is kept; later
  // ones are dropped. A REJECTED result (the worker could not take the
  // task) sends the task back to pending while its retries last.
  void AcceptResult(ChannelId channel, const std::string& worker,
                    v1::WorkResult result);
  // The channel to `worker` closed or the worker died: its tasks in flight
  // go back to pending, or fail when their retries are spent.
  void ChannelLost(ChannelId channel, const std::string& worker,
                   const std::string& reason);

 private:
  struct TaskState;
  struct JobRecord;
  struct Waiter {
    uint64_t from;
    absl::AnyInvocable<void()> wake;
  };
  using Wakes = std::vector<absl::AnyInvocable<void()>>;

  JobRecord* Find(const std::string& job_id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records a final result for a task and finishes the job when it was the
  // last. Collects the watchers to wake.
  void Finish(JobRecord& job, uint64_t index, v1::TaskResult result,
              Wakes& wakes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends a task back to pending, or fails it when its retries are spent.
  void Requeue(JobRecord& job, uint64_t index, const std::string& worker,
               const std::string& reason, Wakes& wakes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeFinishJob(JobRecord& job, Wakes& wakes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CollectWakes(JobRecord& job, Wakes& wakes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ForgetOldJobs(Wakes& wakes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UpdateJobStateGauges() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool HoldsTaskWithBlob(const std::string& worker,
                         const std::string& sha256) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const JobManagerOptions options_;
  std::unique_ptr<SchedulerMetrics> metrics_;
  const uint16_t id_nonce_;

  mutable absl::Mutex mu_;
  std::function<void()> work_available_ ABSL_GUARDED_BY(mu_);
  // Jobs in submission order (ids), and by id.
  std::deque<std::string> order_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::unique_ptr<JobRecord>> jobs_
      ABSL_GUARDED_BY(mu_);
  // Running jobs with pending tasks, served in turn by Take().
  std::deque<JobRecord*> runnable_ ABSL_GUARDED_BY(mu_);
  size_t pending_tasks_ ABSL_GUARDED_BY(mu_) = 0;
  // Tasks in flight per channel: (job, task index). A job leaves these sets
  // when it finishes, so the pointers never dangle.
  absl::flat_hash_map<ChannelId,
                      absl::flat_hash_set<std::pair<JobRecord*, uint64_t>>>
      in_flight_ ABSL_GUARDED_BY(mu_);
  // The worker each channel with tasks in flight goes to, by Take().
  absl::flat_hash_map<ChannelId, std::string> channel_workers_
      ABSL_GUARDED_BY(mu_);
  // Blobs of kept jobs, with how many jobs carry each.
  absl::flat_hash_map<std::string, std::pair<std::string, int>> blobs_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_job_number_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t next_wake_handle_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace peergrid::scheduler

#endif  // PEERGRID_SCHEDULER_JOB_MANAGER_H_
