// SwimProtocol's lifecycle (start, leave, stop), its queries, the random
// choice of members and the message counters. Start and Stop run on the
// caller's thread, LeaveAsync's completion on a transport thread; the
// queries on any thread, under mu_.
#include "membership/swim.h"

#include <algorithm>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/log.h"
#include "common/version.h"
#include "membership/metrics.h"

namespace peergrid {

void SwimProtocol::Outbox::Run() {
  for (auto& call : calls_) call();
  calls_.clear();
}

SwimProtocol::SwimProtocol(MembershipOptions options,
                           std::unique_ptr<Transport> transport,
                           std::unique_ptr<Scheduler> scheduler,
                           prometheus::Registry& registry)
    : options_(std::move(options)),
      transport_(std::move(transport)),
      scheduler_(std::move(scheduler)),
      metrics_(std::make_unique<MembershipMetrics>(registry)) {
  absl::MutexLock lock(&mu_);
  rng_state_ = options_.random_seed != 0
                   ? options_.random_seed
                   : absl::Uniform<uint64_t>(absl::BitGen());
  self_advertisement_.set_name(options_.name);
  self_advertisement_.set_grpc_address(options_.advertise_address);
  self_advertisement_.set_version(Version());
  self_advertisement_.set_start_time_unix_ms(
      absl::ToUnixMillis(scheduler_->Now()));
  // Sequences start from the clock, so that a restarted node's
  // advertisements outrank those of its previous life.
  self_advertisement_.set_sequence(
      static_cast<uint64_t>(absl::ToUnixMillis(scheduler_->Now())));
  self_advertisement_.set_published_unix_ms(
      self_advertisement_.start_time_unix_ms());
  state_counts_[v1::MEMBER_STATE_ALIVE] = 1;
  metrics_->members_by_state[v1::MEMBER_STATE_ALIVE]->Set(1);
}

SwimProtocol::~SwimProtocol() { Stop(); }

void SwimProtocol::SetListener(Listener listener) {
  absl::MutexLock lock(&mu_);
  listener_ = std::move(listener);
}

absl::Status SwimProtocol::Start() {
  if (absl::Status s = ValidateMembershipOptions(options_); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  if (started_ || stopped_) {
    return absl::FailedPreconditionError("membership already started");
  }
  started_ = true;
  // Random phases keep nodes started together from probing in lockstep.
  auto phase = [this](absl::Duration d) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return d * (static_cast<double>(RandomLocked(1000)) / 1000.0);
  };
  scheduler_->RunAfter(phase(options_.probe_interval), [this] { ProbeTick(); });
  gossip_armed_ = true;
  scheduler_->RunAfter(phase(options_.gossip_interval),
                       [this] { GossipTick(); });
  scheduler_->RunAfter(
      options_.push_pull_interval / 2 + phase(options_.push_pull_interval),
      [this] { PushPullTick(); });
  scheduler_->RunAfter(
      options_.reconnect_interval + phase(options_.reconnect_interval),
      [this] { ReconnectTick(); });
  for (const std::string& seed : options_.seeds) {
    if (seed != options_.advertise_address) join_order_.push_back(seed);
  }
  for (size_t i = join_order_.size(); i > 1; --i) {
    std::swap(join_order_[i - 1], join_order_[RandomLocked(i)]);
  }
  scheduler_->RunAfter(absl::ZeroDuration(), [this] { JoinAttempt(0); });
  LogDebug("membership: %s started at %s, seeds %d", options_.name,
           options_.advertise_address, static_cast<int>(options_.seeds.size()));
  return absl::OkStatus();
}

void SwimProtocol::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  scheduler_->Shutdown();
  transport_->Shutdown();
}

void SwimProtocol::LeaveAsync(absl::Duration timeout,
                              std::function<void(absl::Status)> done) {
  struct State {
    absl::Mutex mu;
    int pending ABSL_GUARDED_BY(mu) = 0;
    bool called ABSL_GUARDED_BY(mu) = false;
    std::function<void(absl::Status)> done;
  };
  auto state = std::make_shared<State>();
  state->done = std::move(done);
  Outbox out;
  {
    absl::MutexLock lock(&mu_);
    if (!started_ || stopped_) {
      out.Add([state] {
        state->done(absl::FailedPreconditionError("membership not running"));
      });
    } else {
      if (!leaving_) {
        leaving_ = true;
        --state_counts_[v1::MEMBER_STATE_ALIVE];
        ++state_counts_[v1::MEMBER_STATE_LEFT];
        metrics_->members_by_state[v1::MEMBER_STATE_ALIVE]->Decrement();
        metrics_->members_by_state[v1::MEMBER_STATE_LEFT]->Increment();
        BroadcastLocked(SelfUpdateLocked());
        NotifyLocked(SelfStatusLocked());
        LogInfo("membership: %s leaving", options_.name);
      }
      std::vector<std::string> targets = RandomLiveMembersLocked(
          static_cast<size_t>(std::max(2 * options_.gossip_nodes, 6)), "");
      if (targets.empty()) out.Add([state] { state->done(absl::OkStatus()); });
      {
        absl::MutexLock state_lock(&state->mu);
        state->pending = static_cast<int>(targets.size());
      }
      for (const std::string& target : targets) {
        v1::Ping ping;
        ping.set_from(options_.name);
        *ping.add_gossip() = SelfUpdateLocked();
        PiggybackLocked("", ping.mutable_gossip());
        CountMessage(kPingMessage, kSent, ping.ByteSizeLong());
        std::string address = members_.at(target).advertisement.grpc_address();
        out.Add([this, state, address, ping = std::move(ping),
                 timeout]() mutable {
          transport_->SendPing(
              address, std::move(ping), timeout,
              [state](absl::StatusOr<v1::Ack> ack) {
                bool call = false;
                {
                  absl::MutexLock state_lock(&state->mu);
                  --state->pending;
                  if (!state->called && (ack.ok() || state->pending == 0)) {
                    state->called = call = true;
                  }
                }
                if (!call) return;
                state->done(ack.ok() ? absl::OkStatus()
                                     : absl::DeadlineExceededError(
                                           "no peer acknowledged the leave"));
              });
        });
      }
    }
  }
  out.Run();
}

absl::Status SwimProtocol::Leave(absl::Duration timeout) {
  struct Result {
    absl::Notification notification;
    absl::Status status;
  };
  auto result = std::make_shared<Result>();
  LeaveAsync(timeout, [result](absl::Status status) {
    result->status = std::move(status);
    result->notification.Notify();
  });
  if (!result->notification.WaitForNotificationWithTimeout(timeout +
                                                           absl::Seconds(1))) {
    return absl::DeadlineExceededError("leave not acknowledged in time");
  }
  return result->status;
}

std::vector<v1::MemberStatus> SwimProtocol::Snapshot() const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::MemberStatus> result;
  result.reserve(members_.size() + 1);
  result.push_back(SelfStatusLocked());
  std::vector<const std::string*> names;
  names.reserve(members_.size());
  for (const auto& [name, member] : members_) names.push_back(&name);
  std::sort(names.begin(), names.end(),
            [](const std::string* a, const std::string* b) { return *a < *b; });
  for (const std::string* name : names) {
    result.push_back(StatusForLocked(*name, members_.at(*name)));
  }
  return result;
}

absl::optional<v1::MemberStatus> SwimProtocol::GetMember(
    absl::string_view name) const {
  absl::MutexLock lock(&mu_);
  if (name == options_.name) return SelfStatusLocked();
  auto it = members_.find(name);
  if (it == members_.end()) return absl::nullopt;
  return StatusForLocked(it->first, it->second);
}

size_t SwimProtocol::CountMembers(v1::MemberState state) const {
  absl::MutexLock lock(&mu_);
  int index = static_cast<int>(state);
  return index >= 0 && index < 5 ? state_counts_[index] : 0;
}

int SwimProtocol::LocalHealth() const {
  absl::MutexLock lock(&mu_);
  return health_;
}

size_t SwimProtocol::LiveCountLocked() const {
  return state_counts_[v1::MEMBER_STATE_ALIVE] +
         state_counts_[v1::MEMBER_STATE_SUSPECT];
}

std::vector<std::string> SwimProtocol::RandomLiveMembersLocked(
    size_t count, absl::string_view exclude) {
  std::vector<std::string> chosen;
  if (names_.empty() || count == 0) return chosen;
  auto eligible =
      [&](const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return name != exclude && IsLive(members_.at(name).state);
      };
  if (names_.size() <= 4 * count) {
    for (const std::string& name : names_) {
      if (eligible(name)) chosen.push_back(name);
    }
    for (size_t i = 0; i < chosen.size() && i < count; ++i) {
      std::swap(chosen[i], chosen[i + RandomLocked(chosen.size() - i)]);
    }
    if (chosen.size() > count) chosen.resize(count);
    return chosen;
  }
  for (size_t tries = 0; tries < 8 * count && chosen.size() < count; ++tries) {
    const std::string& name = names_[RandomLocked(names_.size())];
    if (eligible(name) &&
        std::find(chosen.begin(), chosen.end(), name) == chosen.end()) {
      chosen.push_back(name);
    }
  }
  return chosen;
}

uint64_t SwimProtocol::RandomLocked(uint64_t bound) {
  // splitmix64: cheap, and deterministic under a fixed seed.
  uint64_t z = (rng_state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return bound == 0 ? 0 : z % bound;
}

void SwimProtocol::CountMessage(int type, int direction, size_t bytes) const {
  metrics_->messages[type][direction]->Increment();
  metrics_->bytes[type][direction]->Increment(static_cast<double>(bytes));
}

}  // namespace peergrid
