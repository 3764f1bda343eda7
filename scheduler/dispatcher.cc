#include "scheduler/dispatcher.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/thread_name.h"

namespace peergrid::scheduler {

// One channel and its bookkeeping. Events come from the channel's threads.
class Dispatcher::Channel : public WorkChannelEvents,
                            public std::enable_shared_from_this<Channel> {
 public:
  Channel(Dispatcher& dispatcher, ChannelId id, WorkerEndpoint worker)
      : dispatcher_(dispatcher), id_(id), worker_(std::move(worker)) {}

  void OnCredits(uint32_t slots) override {
    {
      absl::MutexLock lock(&dispatcher_.mu_);
      credits += slots;
      last_busy = absl::Now();
      dispatcher_.backoff_.erase(worker_.name);  // It works again.
    }
    dispatcher_.Fill(shared_from_this());
  }
  void OnResult(v1::WorkResult result) override {
    {
      absl::MutexLock lock(&dispatcher_.mu_);
      last_busy = absl::Now();
    }
    dispatcher_.jobs_.AcceptResult(id_, worker_.name, std::move(result));
  }
  void OnClosed(const absl::Status& status) override {
    dispatcher_.OnClosed(shared_from_this(), status);
  }

  ChannelId id() const { return id_; }
  const WorkerEndpoint& worker() const { return worker_; }

  // The stream, once its factory has returned; dropped after it reported
  // closed, which breaks the cycle through the stream's hold on these
  // events. Users copy it under the mutex (Dispatcher::Ready).
  std::shared_ptr<WorkChannel> channel ABSL_GUARDED_BY(dispatcher_.mu_);
  bool reported_closed ABSL_GUARDED_BY(dispatcher_.mu_) = false;
  uint32_t credits ABSL_GUARDED_BY(dispatcher_.mu_) = 0;
  uint32_t demand ABSL_GUARDED_BY(dispatcher_.mu_) = 0;
  bool closed ABSL_GUARDED_BY(dispatcher_.mu_) = false;
  absl::Time last_busy ABSL_GUARDED_BY(dispatcher_.mu_) = absl::Now();

 private:
  Dispatcher& dispatcher_;
  const ChannelId id_;
  const WorkerEndpoint worker_;
};

Dispatcher::Dispatcher(DispatcherOptions options, JobManager& jobs,
                       MembersFn members, WorkChannelFactory open_channel)
    : options_(std::move(options)),
      jobs_(jobs),
      members_(std::move(members)),
      open_channel_(std::move(open_channel)) {}

Dispatcher::~Dispatcher() { Stop(); }

void Dispatcher::Start(const std::string& origin_name,
                       const std::string& origin_address) {
  origin_name_ = origin_name;
  origin_address_ = origin_address;
  jobs_.SetWorkAvailableListener([this] {
    FillAll();
    absl::MutexLock lock(&mu_);
    wake_ = true;
  });
  thread_ = std::thread([this] {
    SetCurrentThreadName("pg-dispatcher");
    Run();
  });
}

void Dispatcher::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  jobs_.SetWorkAvailableListener(nullptr);
  if (thread_.joinable()) thread_.join();
  std::vector<std::shared_ptr<Channel>> channels;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [name, channel] : channels_) channels.push_back(channel);
  }
  for (auto& channel : channels) {
    if (std::shared_ptr<WorkChannel> ready = Ready(*channel)) ready->Close();
  }
  // Every channel reports closed (remote ones from a gRPC thread, soon
  // after Close); none may do so once the dispatcher is gone.
  std::vector<std::shared_ptr<WorkChannel>> streams;
  {
    absl::MutexLock lock(&mu_);
    const auto all_closed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return live_channels_ == 0;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&all_closed), absl::Seconds(5))) {
      LogWarning("%d work channels did not close", live_channels_);
    }
    channels_.clear();
    for (auto& channel : closed_)
      streams.push_back(std::move(channel->channel));
    closed_.clear();
  }
}

std::shared_ptr<WorkChannel> Dispatcher::Ready(Channel& channel) {
  absl::MutexLock lock(&mu_);
  return channel.channel;
}

size_t Dispatcher::channel_count() const {
  absl::MutexLock lock(&mu_);
  return channels_.size();
}

void Dispatcher::Run() {
  std::vector<std::shared_ptr<WorkChannel>> dropped;
  while (true) {
    // Read before the wait: work that arrives after this sets wake_.
    const bool no_work = jobs_.PendingTasks() == 0;
    {
      absl::MutexLock lock(&mu_);
      const auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return wake_ || stopping_;
      };
      // With no channel open, nothing changes until work arrives (which
      // wakes us): an idle origin sleeps until then, and one whose tasks
      // wait for a worker to appear looks once a second, not every tick.
      absl::Duration wait = options_.tick;
      if (channels_.empty()) {
        wait = no_work ? absl::InfiniteDuration() : absl::Seconds(1);
      }
      mu_.AwaitWithTimeout(absl::Condition(&woken), wait);
      if (stopping_) return;
      wake_ = false;
      // Channels that reported closed are dropped here, not in their own
      // callback, which may run inside the stream object.
      for (auto& channel : closed_) {
        dropped.push_back(std::move(channel->channel));
      }
      closed_.clear();
    }
    dropped.clear();  // Outside the lock: a stream may take time to go.
    Plan();
  }
}

void Dispatcher::Plan() {
  const std::vector<WorkerView> members = members_();
  const size_t pending = jobs_.PendingTasks();
  PlacementDemand demand;
  demand.pending_slots = pending;
  demand.max_task_cpus = std::max<uint32_t>(jobs_.MaxPendingCpus(), 1);

  std::vector<std::shared_ptr<Channel>> to_close;
  std::vector<std::pair<std::shared_ptr<Channel>, uint32_t>> demands;
  std::vector<std::shared_ptr<Channel>> opened;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    absl::flat_hash_map<std::string, const WorkerView*> alive;
    for (const WorkerView& member : members) alive[member.name] = &member;
    const absl::Time now = absl::Now();

    // Workers gossip no longer lists: their tasks go elsewhere. Channels
    // with nothing to do for a while: closed, so that they reserve nothing.
    for (auto& [name, channel] : channels_) {
      const bool idle = pending == 0 && jobs_.InFlight(channel->id()) == 0 &&
                        now - channel->last_busy > options_.idle_close;
      if (!alive.contains(name) || idle) to_close.push_back(channel);
    }
    for (const auto& channel : to_close) {
      channels_.erase(channel->worker().name);
      channel->closed = true;
    }

    const std::vector<std::string> chosen =
        ChooseWorkers(members, demand, options_.placement, random_);
    for (const std::string& name : chosen) {
      if (channels_.contains(name)) continue;
      auto backoff = backoff_.find(name);
      if (backoff != backoff_.end() && now < backoff->second.retry_at) continue;
      const WorkerView& member = *alive[name];
      auto channel = std::make_shared<Channel>(
          *this, next_channel_id_++,
          WorkerEndpoint{member.name, member.address});
      channels_.emplace(name, channel);
      ++live_channels_;
      opened.push_back(channel);
    }
    // Each channel may ask for what is pending, up to its worker's cores:
    // the workers' credits, not this estimate, bound what is sent.
    for (auto& [name, channel] : channels_) {
      auto it = alive.find(name);
      const double cores = it == alive.end() ? 1 : it->second->cores_donated;
      // What runs there now plus what could go, as the protocol defines it.
      const double in_flight =
          static_cast<double>(jobs_.InFlight(channel->id()));
      const uint32_t wanted = static_cast<uint32_t>(
          in_flight +
          std::min<double>(static_cast<double>(pending) + channel->credits,
                           std::max(cores * 2, 1.0)));
      if (wanted != channel->demand) {
        channel->demand = wanted;
        demands.emplace_back(channel, wanted);
      }
    }
  }
  for (const auto& channel : to_close) {
    LogDebug("closing work channel to %s", channel->worker().name);
    if (std::shared_ptr<WorkChannel> ready = Ready(*channel)) ready->Close();
    jobs_.ChannelLost(channel->id(), channel->worker().name,
                      absl::StrCat(channel->worker().name, " left the grid"));
  }
  for (const auto& channel : opened) {
    v1::OpenWork open;
    open.set_origin(origin_name_);
    open.set_origin_address(origin_address_);
    {
      absl::MutexLock lock(&mu_);
      open.set_slots_wanted(channel->demand);
    }
    LogDebug("opening work channel to %s at %s", channel->worker().name,
             channel->worker().address);
    std::shared_ptr<WorkChannel> opened_channel =
        open_channel_(channel->worker(), open, channel);
    {
      absl::MutexLock lock(&mu_);
      if (!channel->reported_closed) {
        channel->channel = std::move(opened_channel);
      } else {
        // It closed inside the factory: keep nothing that holds it.
        channel->closed = true;
      }
    }
    opened_channel.reset();
    Fill(channel);  // Credits may have come before it was ready.
  }
  for (const auto& [channel, wanted] : demands) {
    if (std::shared_ptr<WorkChannel> ready = Ready(*channel))
      ready->SetDemand(wanted);
  }
}

void Dispatcher::Fill(const std::shared_ptr<Channel>& channel) {
  TakenWork taken;
  std::shared_ptr<WorkChannel> stream;
  {
    absl::MutexLock lock(&mu_);
    if (channel->closed || channel->channel == nullptr ||
        channel->credits == 0 || stopping_) {
      return;
    }
    taken = jobs_.Take(channel->credits, channel->id(), channel->worker().name);
    channel->credits -= taken.slots;
    stream = channel->channel;
  }
  for (v1::Bundle& bundle : taken.bundles) stream->Submit(std::move(bundle));
}

void Dispatcher::FillAll() {
  std::vector<std::shared_ptr<Channel>> channels;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [name, channel] : channels_) {
      if (channel->credits > 0) channels.push_back(channel);
    }
  }
  for (const auto& channel : channels) Fill(channel);
}

void Dispatcher::OnClosed(const std::shared_ptr<Channel>& closing,
                          const absl::Status& status) {
  Channel& channel = *closing;
  {
    absl::MutexLock lock(&mu_);
    if (channel.reported_closed) return;
    channel.reported_closed = true;
    channel.closed = true;
    --live_channels_;
    auto it = channels_.find(channel.worker().name);
    if (it != channels_.end() && it->second == closing) channels_.erase(it);
    closed_.push_back(closing);
    wake_ = true;
    if (!status.ok() && !stopping_) {
      Backoff& backoff = backoff_[channel.worker().name];
      backoff.delay =
          backoff.delay == absl::ZeroDuration()
              ? options_.reopen_backoff
              : std::min(backoff.delay * 2, options_.reopen_backoff_max);
      backoff.retry_at = absl::Now() + backoff.delay;
    }
  }
  if (!status.ok()) {
    LogDebug("work channel to %s closed: %s", channel.worker().name,
             status.ToString());
  }
  jobs_.ChannelLost(
      channel.id(), channel.worker().name,
      absl::StrCat("lost ", channel.worker().name, ": ", status.message()));
}

absl::StatusOr<v1::JobStatus> Dispatcher::CancelJob(const std::string& job_id) {
  absl::StatusOr<std::vector<ChannelId>> channels = jobs_.Cancel(job_id);
  if (!channels.ok()) return channels.status();
  const absl::flat_hash_set<ChannelId> ids(channels->begin(), channels->end());
  std::vector<std::shared_ptr<Channel>> targets;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [name, channel] : channels_) {
      if (ids.contains(channel->id())) targets.push_back(channel);
    }
  }
  v1::CancelWork cancel;
  cancel.set_job_id(job_id);
  for (const auto& channel : targets) {
    if (std::shared_ptr<WorkChannel> ready = Ready(*channel))
      ready->Cancel(cancel);
  }
  return jobs_.Get(job_id);
}

}  // namespace peergrid::scheduler
