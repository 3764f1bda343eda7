#include "scheduler/job_manager.h"

#include <algorithm>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "scheduler/metrics.h"

namespace peergrid::scheduler {

struct JobManager::TaskState {
  enum class Phase : uint8_t { kPending, kInFlight, kDone };
  Phase phase = Phase::kPending;
  uint32_t attempts = 0;
  ChannelId channel = 0;
  absl::Time since;  // When it became pending, or was sent.
};

struct JobManager::JobRecord {
  std::string id;
  v1::Job job;  // Tasks sorted so that job.tasks(i).index() == i.
  v1::JobStatus status;
  std::vector<TaskState> tasks;
  std::deque<uint64_t> pending;         // May hold tasks finished meanwhile.
  std::vector<v1::TaskResult> results;  // In the order accepted.
  absl::flat_hash_map<uint64_t, Waiter> waiters;
  uint32_t retries = 0;
  bool retry_failed = false;
  bool finished = false;
  bool runnable = false;                  // Listed in runnable_.
  std::vector<std::string> blob_sha256s;  // References into blobs_.
  uint32_t max_cpus = 1;                  // The most any of its tasks asks for.
};

namespace {

std::string IdPrefix(const std::string& origin) {
  std::string prefix;
  for (char c : origin) {
    prefix += absl::ascii_isalnum(static_cast<unsigned char>(c)) ? c : '-';
  }
  return prefix.empty() ? "job" : prefix;
}

}  // namespace

JobManager::JobManager(JobManagerOptions options,
                       prometheus::Registry* registry)
    : options_(std::move(options)),
      metrics_(std::make_unique<SchedulerMetrics>(registry)),
      // Tells apart ids of two origins of one name started in one second.
      id_nonce_(absl::Uniform<uint16_t>(absl::BitGen())) {}

JobManager::~JobManager() = default;

void JobManager::SetWorkAvailableListener(std::function<void()> listener) {
  absl::MutexLock lock(&mu_);
  work_available_ = std::move(listener);
}

absl::StatusOr<std::string> JobManager::Submit(v1::Job job,
                                               const std::string& submitter) {
  NormalizeJob(job);
  if (absl::Status valid = ValidateJob(job, options_.limits); !valid.ok()) {
    return valid;
  }
  // Validation proved the indexes are 0..n-1; order the tasks by them.
  std::sort(job.mutable_tasks()->begin(), job.mutable_tasks()->end(),
            [](const v1::Task& a, const v1::Task& b) {
              return a.index() < b.index();
            });
  auto record = std::make_unique<JobRecord>();
  const absl::Time now = absl::Now();
  record->retries = job.defaults().retries() > 0 ? job.defaults().retries()
                                                 : options_.default_retries;
  record->retry_failed = job.defaults().retry_failed();
  record->tasks.resize(static_cast<size_t>(job.tasks_size()));
  for (const v1::Task& task : job.tasks()) {
    record->max_cpus = std::max(record->max_cpus, task.cpus());
  }
  for (TaskState& task : record->tasks) task.since = now;
  for (uint64_t i = 0; i < record->tasks.size(); ++i) {
    record->pending.push_back(i);
  }
  std::function<void()> listener;
  std::string id;
  {
    absl::MutexLock lock(&mu_);
    id = absl::StrFormat("%s-%x%04x-%d", IdPrefix(options_.origin_name),
                         absl::ToUnixSeconds(now), id_nonce_,
                         next_job_number_++);
    record->id = id;
    for (v1::Blob& blob : *job.mutable_blobs()) {
      auto [it, inserted] = blobs_.try_emplace(blob.sha256());
      if (inserted) it->second.first = std::move(*blob.mutable_data());
      ++it->second.second;
      record->blob_sha256s.push_back(blob.sha256());
    }
    job.clear_blobs();  // Kept once, in blobs_.
    record->status.set_id(id);
    record->status.set_name(job.name());
    record->status.set_submitter(submitter);
    record->status.set_state(v1::JOB_STATE_QUEUED);
    record->status.set_tasks_total(static_cast<uint64_t>(job.tasks_size()));
    record->status.set_submitted_unix_ms(absl::ToUnixMillis(now));
    record->job = std::move(job);
    pending_tasks_ += record->tasks.size();
    record->runnable = true;
    runnable_.push_back(record.get());
    order_.push_back(id);
    jobs_.emplace(id, std::move(record));
    UpdateJobStateGauges();
    metrics_->tasks_pending->Set(static_cast<double>(pending_tasks_));
    listener = work_available_;
  }
  LogInfo("job %s submitted", id);
  if (listener) listener();
  return id;
}

JobManager::JobRecord* JobManager::Find(const std::string& job_id) const {
  auto it = jobs_.find(job_id);
  return it == jobs_.end() ? nullptr : it->second.get();
}

absl::StatusOr<std::vector<ChannelId>> JobManager::Cancel(
    const std::string& job_id) {
  Wakes wakes;
  std::vector<ChannelId> channels;
  {
    absl::MutexLock lock(&mu_);
    JobRecord* job = Find(job_id);
    if (job == nullptr) {
      return absl::NotFoundError(absl::StrCat("no job '", job_id, "' here"));
    }
    if (job->finished) return channels;
    for (uint64_t i = 0; i < job->tasks.size(); ++i) {
      TaskState& task = job->tasks[i];
      if (task.phase == TaskState::Phase::kInFlight) {
        in_flight_[task.channel].erase({job, i});
        if (std::find(channels.begin(), channels.end(), task.channel) ==
            channels.end()) {
          channels.push_back(task.channel);
        }
      } else if (task.phase == TaskState::Phase::kPending) {
        --pending_tasks_;
      }
      task.phase = TaskState::Phase::kDone;
    }
    job->pending.clear();
    job->finished = true;
    job->status.set_tasks_running(0);
    job->status.set_state(v1::JOB_STATE_CANCELLED);
    job->status.set_finished_unix_ms(absl::ToUnixMillis(absl::Now()));
    CollectWakes(*job, wakes);
    ForgetOldJobs(wakes);
    UpdateJobStateGauges();
    metrics_->tasks_pending->Set(static_cast<double>(pending_tasks_));
  }
  LogInfo("job %s cancelled", job_id);
  for (auto& wake : wakes) wake();
  return channels;
}

absl::StatusOr<v1::JobStatus> JobManager::Get(const std::string& job_id) const {
  absl::MutexLock lock(&mu_);
  const JobRecord* job = Find(job_id);
  if (job == nullptr) {
    return absl::NotFoundError(absl::StrCat("no job '", job_id, "' here"));
  }
  return job->status;
}

std::vector<v1::JobStatus> JobManager::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::JobStatus> list;
  for (const std::string& id : order_) list.push_back(Find(id)->status);
  return list;
}

absl::StatusOr<JobManager::Results> JobManager::Read(const std::string& job_id,
                                                     uint64_t from,
                                                     size_t max) const {
  absl::MutexLock lock(&mu_);
  const JobRecord* job = Find(job_id);
  if (job == nullptr) {
    return absl::NotFoundError(absl::StrCat("no job '", job_id, "' here"));
  }
  Results results;
  for (uint64_t n = from;
       n < job->results.size() && results.events.size() < max; ++n) {
    v1::WatchEvent& event = results.events.emplace_back();
    event.set_result_number(n);
    *event.mutable_result() = job->results[n];
  }
  results.status = job->status;
  results.finished =
      job->finished && from + results.events.size() >= job->results.size();
  return results;
}

absl::StatusOr<uint64_t> JobManager::WakeWhenReady(
    const std::string& job_id, uint64_t from, absl::AnyInvocable<void()> wake) {
  {
    absl::MutexLock lock(&mu_);
    JobRecord* job = Find(job_id);
    if (job == nullptr) {
      return absl::NotFoundError(absl::StrCat("no job '", job_id, "' here"));
    }
    if (from >= job->results.size() && !job->finished) {
      const uint64_t handle = next_wake_handle_++;
      job->waiters.emplace(handle, Waiter{from, std::move(wake)});
      return handle;
    }
  }
  wake();
  return 0;
}

void JobManager::CancelWake(const std::string& job_id, uint64_t handle) {
  absl::MutexLock lock(&mu_);
  if (JobRecord* job = Find(job_id)) job->waiters.erase(handle);
}

absl::StatusOr<std::string> JobManager::ReadBlob(
    const std::string& sha256, const std::string& requester) const {
  absl::MutexLock lock(&mu_);
  auto it = blobs_.find(sha256);
  if (it == blobs_.end()) {
    return absl::NotFoundError(absl::StrCat("no blob ", sha256, " here"));
  }
  if (!requester.empty() && !HoldsTaskWithBlob(requester, sha256)) {
    return absl::PermissionDeniedError(
        absl::StrCat("worker '", requester,
                     "' holds no task of a job that carries blob ", sha256));
  }
  metrics_->blob_bytes_shipped->Increment(
      static_cast<double>(it->second.first.size()));
  return it->second.first;
}

size_t JobManager::PendingTasks() const {
  absl::MutexLock lock(&mu_);
  return pending_tasks_;
}

uint32_t JobManager::MaxPendingCpus() const {
  absl::MutexLock lock(&mu_);
  uint32_t most = 0;
  for (const JobRecord* job : runnable_) most = std::max(most, job->max_cpus);
  return most;
}

size_t JobManager::InFlight(ChannelId channel) const {
  absl::MutexLock lock(&mu_);
  auto it = in_flight_.find(channel);
  return it == in_flight_.end() ? 0 : it->second.size();
}

bool JobManager::HoldsTaskWithBlob(const std::string& worker,
                                   const std::string& sha256) const {
  // A worker holds few tasks at once (its credits), each job few blobs.
  for (const auto& [channel, tasks] : in_flight_) {
    auto owner = channel_workers_.find(channel);
    if (owner == channel_workers_.end() || owner->second != worker) continue;
    for (const auto& [job, index] : tasks) {
      const std::vector<std::string>& carried = job->blob_sha256s;
      if (std::find(carried.begin(), carried.end(), sha256) != carried.end()) {
        return true;
      }
    }
  }
  return false;
}

TakenWork JobManager::Take(uint32_t slots, ChannelId channel,
                           const std::string& worker) {
  TakenWork taken;
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&mu_);
  if (!worker.empty()) channel_workers_[channel] = worker;
  absl::flat_hash_map<JobRecord*, size_t> bundle_of;
  size_t skipped = 0;  // Jobs passed over in a row because nothing fit.
  while (taken.slots < slots && !runnable_.empty() &&
         skipped < runnable_.size()) {
    JobRecord* job = runnable_.front();
    runnable_.pop_front();
    while (!job->pending.empty() && job->tasks[job->pending.front()].phase !=
                                        TaskState::Phase::kPending) {
      job->pending.pop_front();  // Finished while it waited.
    }
    if (job->finished || job->pending.empty()) {
      job->runnable = false;
      continue;
    }
    const uint64_t index = job->pending.front();
    const v1::Task& task = job->job.tasks(static_cast<int>(index));
    if (task.cpus() > slots - taken.slots) {
      runnable_.push_back(job);
      ++skipped;
      continue;
    }
    skipped = 0;
    job->pending.pop_front();
    --pending_tasks_;
    TaskState& state = job->tasks[index];
    metrics_->queue_seconds->Observe(absl::ToDoubleSeconds(now - state.since));
    state.phase = TaskState::Phase::kInFlight;
    state.channel = channel;
    state.since = now;
    ++state.attempts;
    in_flight_[channel].insert({job, index});
    job->status.set_tasks_running(job->status.tasks_running() + 1);
    if (job->status.state() == v1::JOB_STATE_QUEUED) {
      job->status.set_state(v1::JOB_STATE_RUNNING);
      UpdateJobStateGauges();
    }
    auto [it, inserted] = bundle_of.try_emplace(job, taken.bundles.size());
    if (inserted) taken.bundles.emplace_back().set_job_id(job->id);
    *taken.bundles[it->second].add_tasks() = task;
    taken.slots += task.cpus();
    metrics_->tasks_placed->Increment();
    runnable_.push_back(job);  // Its turn again after the others.
  }
  metrics_->tasks_pending->Set(static_cast<double>(pending_tasks_));
  size_t in_flight = 0;
  for (const auto& [id, set] : in_flight_) in_flight += set.size();
  metrics_->tasks_in_flight->Set(static_cast<double>(in_flight));
  return taken;
}

void JobManager::AcceptResult(ChannelId channel, const std::string& worker,
                              v1::WorkResult work_result) {
  Wakes wakes;
  std::function<void()> listener;
  {
    absl::MutexLock lock(&mu_);
    JobRecord* job = Find(work_result.job_id());
    if (job == nullptr || job->finished) return;  // Late: cancelled or gone.
    v1::TaskResult& result = *work_result.mutable_result();
    const uint64_t index = result.index();
    if (index >= job->tasks.size()) {
      LogWarning(
          "worker %s sent a result for task %d of job %s, which has "
          "only %d tasks; ignored",
          worker, index, job->id, job->tasks.size());
      return;
    }
    TaskState& task = job->tasks[index];
    if (task.phase == TaskState::Phase::kDone) return;  // A slower twin.
    if (task.phase == TaskState::Phase::kInFlight) {
      in_flight_[task.channel].erase({job, index});
      job->status.set_tasks_running(job->status.tasks_running() - 1);
      if (task.channel == channel) {
        metrics_->round_trip_seconds->Observe(
            absl::ToDoubleSeconds(absl::Now() - task.since));
      }
    } else {
      --pending_tasks_;  // Re-queued, but this earlier attempt finished.
    }
    if (result.node().empty()) result.set_node(worker);
    const v1::TaskOutcome outcome = result.outcome();
    const bool lost_attempt = outcome == v1::TASK_OUTCOME_REJECTED ||
                              (outcome == v1::TASK_OUTCOME_CANCELLED);
    const bool retry_own_failure = outcome != v1::TASK_OUTCOME_SUCCEEDED &&
                                   !lost_attempt && job->retry_failed &&
                                   task.attempts <= job->retries;
    if (lost_attempt || retry_own_failure) {
      Requeue(*job, index, worker,
              absl::StrCat(
                  worker, ": ",
                  result.reason().empty() ? "task not run" : result.reason()),
              wakes);
      listener = work_available_;
    } else {
      Finish(*job, index, std::move(result), wakes);
    }
    metrics_->tasks_pending->Set(static_cast<double>(pending_tasks_));
  }
  for (auto& wake : wakes) wake();
  if (listener) listener();
}

void JobManager::ChannelLost(ChannelId channel, const std::string& worker,
                             const std::string& reason) {
  Wakes wakes;
  std::function<void()> listener;
  {
    absl::MutexLock lock(&mu_);
    channel_workers_.erase(channel);
    auto it = in_flight_.find(channel);
    if (it == in_flight_.end()) return;
    auto tasks = std::move(it->second);
    in_flight_.erase(it);
    for (const auto& [job, index] : tasks) {
      job->status.set_tasks_running(job->status.tasks_running() - 1);
      Requeue(*job, index, worker, reason, wakes);
    }
    if (!tasks.empty()) listener = work_available_;
    metrics_->tasks_pending->Set(static_cast<double>(pending_tasks_));
  }
  for (auto& wake : wakes) wake();
  if (listener) listener();
}

void JobManager::Requeue(JobRecord& job, uint64_t index,
                         const std::string& worker, const std::string& reason,
                         Wakes& wakes) {
  TaskState& task = job.tasks[index];
  if (task.attempts > job.retries) {
    v1::TaskResult result;
    result.set_index(index);
    result.set_outcome(v1::TASK_OUTCOME_FAILED);
    result.set_reason(absl::StrCat("gave up after ", task.attempts,
                                   " attempts; last: ", reason));
    result.set_exit_code(-1);
    result.set_node(worker);
    Finish(job, index, std::move(result), wakes);
    return;
  }
  task.phase = TaskState::Phase::kPending;
  task.since = absl::Now();
  job.pending.push_front(index);
  ++pending_tasks_;
  metrics_->tasks_replaced->Increment();
  if (!job.runnable) {
    job.runnable = true;
    runnable_.push_front(&job);
  }
}

void JobManager::Finish(JobRecord& job, uint64_t index, v1::TaskResult result,
                        Wakes& wakes) {
  TaskState& task = job.tasks[index];
  task.phase = TaskState::Phase::kDone;
  result.set_index(index);
  result.set_attempts(task.attempts);
  if (result.outcome() == v1::TASK_OUTCOME_SUCCEEDED) {
    job.status.set_tasks_succeeded(job.status.tasks_succeeded() + 1);
  } else {
    job.status.set_tasks_failed(job.status.tasks_failed() + 1);
  }
  metrics_->tasks_finished(result.outcome()).Increment();
  job.results.push_back(std::move(result));
  MaybeFinishJob(job, wakes);
  CollectWakes(job, wakes);
}

void JobManager::MaybeFinishJob(JobRecord& job, Wakes& wakes) {
  if (job.finished || job.results.size() < job.tasks.size()) return;
  job.finished = true;
  job.status.set_state(job.status.tasks_failed() == 0 ? v1::JOB_STATE_DONE
                                                      : v1::JOB_STATE_FAILED);
  job.status.set_finished_unix_ms(absl::ToUnixMillis(absl::Now()));
  LogInfo("job %s finished: %d succeeded, %d failed", job.id,
          job.status.tasks_succeeded(), job.status.tasks_failed());
  UpdateJobStateGauges();
  ForgetOldJobs(wakes);
}

void JobManager::CollectWakes(JobRecord& job, Wakes& wakes) {
  for (auto it = job.waiters.begin(); it != job.waiters.end();) {
    if (job.finished || it->second.from < job.results.size()) {
      wakes.push_back(std::move(it->second.wake));
      job.waiters.erase(it++);
    } else {
      ++it;
    }
  }
}

void JobManager::ForgetOldJobs(Wakes& wakes) {
  size_t finished = 0;
  for (const std::string& id : order_) finished += Find(id)->finished ? 1 : 0;
  for (auto it = order_.begin();
       it != order_.end() && finished > options_.finished_jobs_kept;) {
    JobRecord* job = Find(*it);
    if (!job->finished) {
      ++it;
      continue;
    }
    for (auto& [handle, waiter] : job->waiters) {
      wakes.push_back(std::move(waiter.wake));
    }
    for (const std::string& sha256 : job->blob_sha256s) {
      auto blob = blobs_.find(sha256);
      if (blob != blobs_.end() && --blob->second.second == 0) {
        blobs_.erase(blob);
      }
    }
    runnable_.erase(std::remove(runnable_.begin(), runnable_.end(), job),
                    runnable_.end());
    jobs_.erase(*it);
    it = order_.erase(it);
    --finished;
  }
  UpdateJobStateGauges();
}

void JobManager::UpdateJobStateGauges() {
  absl::flat_hash_map<int, int> counts;
  for (const auto& [id, job] : jobs_) ++counts[job->status.state()];
  for (int state = v1::JobState_MIN; state <= v1::JobState_MAX; ++state) {
    if (state == v1::JOB_STATE_UNSPECIFIED) continue;
    metrics_->jobs(static_cast<v1::JobState>(state))
        .Set(counts.contains(state) ? counts[state] : 0);
  }
}

}  // namespace peergrid::scheduler
