// Drives the origin's work streams: picks workers with the placement policy,
// keeps one channel per chosen worker, spends each worker's credits on
// pending tasks, hands results to the job manager, and gives back the tasks
// of a channel that breaks or a worker that gossip says is gone.
//
// Threading: the dispatcher owns one thread, which re-plans every
// `tick` (and at once when work arrives); channel events arrive on other
// threads and are handled without blocking. One mutex guards the channel
// table; channel methods and job manager wake-ups are called without it.
#ifndef PEERGRID_SCHEDULER_DISPATCHER_H_
#define PEERGRID_SCHEDULER_DISPATCHER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/random/random.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "scheduler/job_manager.h"
#include "scheduler/placement.h"
#include "scheduler/work_channel.h"

namespace peergrid::scheduler {

struct DispatcherOptions {
  absl::Duration tick = absl::Milliseconds(50);
  // A channel with nothing in flight and nothing pending for this long is
  // closed, so that idle origins reserve nothing on workers.
  absl::Duration idle_close = absl::Seconds(5);
  // After a channel to a worker breaks, wait this long before opening
  // another, doubling up to `reopen_backoff_max` while it keeps breaking
  // (gossip may still list a worker that just died).
  absl::Duration reopen_backoff = absl::Milliseconds(200);
  absl::Duration reopen_backoff_max = absl::Seconds(5);
  PlacementOptions placement;
};

class Dispatcher {
 public:
  // The members that may run tasks (the origin itself included): alive ones,
  // and suspects with `alive` false. A worker missing from the list is gone:
  // its channel closes and its tasks run elsewhere.
  using MembersFn = std::function<std::vector<WorkerView>()>;

  // `jobs` must outlive the dispatcher.
  Dispatcher(DispatcherOptions options, JobManager& jobs, MembersFn members,
             WorkChannelFactory open_channel);
  // Stops the thread and closes every channel.
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Starts the thread. Workers learn the origin's name, and the address
  // they fetch input blobs from, when a channel opens.
  void Start(const std::string& origin_name, const std::string& origin_address);
  // Closes every channel (their tasks go back to pending) and stops.
  void Stop();

  // Cancels a job and tells the workers running its tasks to stop them.
  absl::StatusOr<v1::JobStatus> CancelJob(const std::string& job_id);

  // Open channels, for status and tests.
  size_t channel_count() const;

 private:
  class Channel;

  void Run();
  void Plan();
  // Spends `channel`'s credits on pending tasks and sends them.
  void Fill(const std::shared_ptr<Channel>& channel);
  void FillAll();
  void OnClosed(const std::shared_ptr<Channel>& channel,
                const absl::Status& status);
  // The channel's stream once its factory has returned and until it
  // reported closed, else null.
  std::shared_ptr<WorkChannel> Ready(Channel& channel);

  const DispatcherOptions options_;
  std::string origin_name_;  // Set by Start().
  std::string origin_address_;
  JobManager& jobs_;
  const MembersFn members_;
  const WorkChannelFactory open_channel_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Channel>> channels_
      ABSL_GUARDED_BY(mu_);  // By worker name.
  // Channels that reported closed; their streams are dropped by Run().
  std::vector<std::shared_ptr<Channel>> closed_ ABSL_GUARDED_BY(mu_);
  // Channels opened and not yet reported closed.
  int live_channels_ ABSL_GUARDED_BY(mu_) = 0;
  // Workers whose channel broke: when a new one may open, and the backoff.
  struct Backoff {
    absl::Time retry_at;
    absl::Duration delay;
  };
  absl::flat_hash_map<std::string, Backoff> backoff_ ABSL_GUARDED_BY(mu_);
  ChannelId next_channel_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  absl::BitGen random_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace peergrid::scheduler

#endif  // PEERGRID_SCHEDULER_DISPATCHER_H_
