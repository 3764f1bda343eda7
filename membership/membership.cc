#include "membership/membership.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/address.h"
#include "common/log.h"
#include "common/version.h"
#include "membership/metrics.h"

namespace peergrid {
namespace {

using Updates = google::protobuf::RepeatedPtrField<v1::MemberUpdate>;

// SWIM's precedence at equal incarnation; -1 for values we do not accept.
int Rank(v1::MemberState state) {
  switch (state) {
    case v1::MEMBER_STATE_ALIVE:
      return 0;
    case v1::MEMBER_STATE_SUSPECT:
      return 1;
    case v1::MEMBER_STATE_DEAD:
      return 2;
    case v1::MEMBER_STATE_LEFT:
      return 3;
    default:
      return -1;
  }
}

// Equal advertisements give equal bytes: deterministic serialization orders
// the labels map. Compared this way rather than with MessageDifferencer,
// which works through reflection: the first call builds the descriptor pool
// of every linked .proto, and an idle node then keeps that pool and the
// reflection code resident for a comparison it makes every few seconds.
std::string CanonicalBytes(const v1::Advertisement& ad) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream out(&stream);
    out.SetSerializationDeterministic(true);
    ad.SerializeToCodedStream(&out);
  }
  return bytes;
}

bool SameAdvertisement(const v1::Advertisement& a, const v1::Advertisement& b) {
  return CanonicalBytes(a) == CanonicalBytes(b);
}

// True when two advertisements of a member differ at most in what drifts
// all the time (load average, free memory) and in their sequence: news that
// placement does not wait for.
bool OnlyDriftDiffers(const v1::Advertisement& a, const v1::Advertisement& b) {
  v1::Advertisement x = a;
  v1::Advertisement y = b;
  for (v1::Advertisement* ad : {&x, &y}) {
    ad->clear_load_average();
    ad->clear_memory_free_bytes();
    ad->clear_sequence();
    ad->clear_published_unix_ms();
  }
  return SameAdvertisement(x, y);
}

bool IsLive(v1::MemberState state) {
  return state == v1::MEMBER_STATE_ALIVE || state == v1::MEMBER_STATE_SUSPECT;
}

// Lifeguard: from `max` with no confirmation down to `min` after k of them,
// logarithmically.
absl::Duration LifeguardTimeout(int confirmations, int k, absl::Duration min,
                                absl::Duration max) {
  if (k < 1) return min;
  double fraction = std::log(confirmations + 1.0) / std::log(k + 1.0);
  absl::Duration timeout = max - (max - min) * fraction;
  return std::max(timeout, min);
}

absl::Status CheckPositive(absl::Duration d, absl::string_view what) {
  if (d <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " must be positive"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateMembershipOptions(const MembershipOptions& o) {
  if (o.name.empty()) return absl::InvalidArgumentError("empty member name");
  absl::StatusOr<HostPort> self = ParseHostPort(o.advertise_address);
  if (!self.ok()) return self.status();
  if (IsWildcardHost(self->host) || self->port == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "advertised address ", o.advertise_address, " cannot be dialled"));
  }
  for (const std::string& seed : o.seeds) {
    absl::StatusOr<HostPort> parsed = ParseHostPort(seed);
    if (!parsed.ok()) return parsed.status();
  }
  for (auto [d, what] :
       {std::make_pair(o.probe_interval, "probe interval"),
        std::make_pair(o.probe_timeout, "probe timeout"),
        std::make_pair(o.gossip_interval, "gossip interval"),
        std::make_pair(o.push_pull_interval, "push-pull interval"),
        std::make_pair(o.push_pull_timeout, "push-pull timeout"),
        std::make_pair(o.dead_retention, "dead retention"),
        std::make_pair(o.reconnect_interval, "reconnect interval"),
        std::make_pair(o.join_retry_interval, "join retry interval")}) {
    if (absl::Status s = CheckPositive(d, what); !s.ok()) return s;
  }
  if (o.probe_timeout >= o.probe_interval) {
    return absl::InvalidArgumentError(
        "probe timeout must be shorter than the probe interval");
  }
  if (o.indirect_checks < 0 || o.suspicion_multiplier < 1 ||
      o.suspicion_max_multiplier < 1 || o.retransmit_multiplier < 1 ||
      o.gossip_nodes < 1 || o.awareness_max < 0 ||
      o.advertisement_min_interval < absl::ZeroDuration() ||
      o.max_gossip_bytes < 512) {
    return absl::InvalidArgumentError("membership tunable out of range");
  }
  return absl::OkStatus();
}

struct Membership::Probe {
  std::string target;
  std::string address;
  uint64_t incarnation = 0;
  absl::Time start;
  bool in_turn = true;
  int pending = 0;
  int expected_nacks = 0;
  int nacks = 0;
  bool done = false;
};

void Membership::Outbox::Run() {
  for (auto& call : calls_) call();
  calls_.clear();
}

Membership::Membership(MembershipOptions options,
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

Membership::~Membership() { Stop(); }

void Membership::SetListener(Listener listener) {
  absl::MutexLock lock(&mu_);
  listener_ = std::move(listener);
}

absl::Status Membership::Start() {
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

void Membership::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  scheduler_->Shutdown();
  transport_->Shutdown();
}

void Membership::LeaveAsync(absl::Duration timeout,
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

absl::Status Membership::Leave(absl::Duration timeout) {
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

void Membership::SetAdvertisement(v1::Advertisement advertisement) {
  absl::MutexLock lock(&mu_);
  if (stopped_) return;
  advertisement.set_name(options_.name);
  advertisement.set_grpc_address(options_.advertise_address);
  advertisement.set_sequence(self_advertisement_.sequence());
  advertisement.set_published_unix_ms(self_advertisement_.published_unix_ms());
  if (advertisement.version().empty()) advertisement.set_version(Version());
  if (advertisement.start_time_unix_ms() == 0) {
    advertisement.set_start_time_unix_ms(
        self_advertisement_.start_time_unix_ms());
  }
  if (!pending_advertisement_.has_value() &&
      SameAdvertisement(advertisement, self_advertisement_)) {
    return;
  }
  pending_advertisement_ = std::move(advertisement);
  if (publish_scheduled_) return;
  absl::Duration wait =
      last_publish_ + options_.advertisement_min_interval - scheduler_->Now();
  if (wait <= absl::ZeroDuration()) {
    PublishLocked();
    return;
  }
  publish_scheduled_ = true;
  scheduler_->RunAfter(wait, [this] { PublishAdvertisement(); });
}

void Membership::PublishAdvertisement() {
  absl::MutexLock lock(&mu_);
  publish_scheduled_ = false;
  if (!stopped_ && pending_advertisement_.has_value()) PublishLocked();
}

void Membership::PublishLocked() {
  uint64_t sequence = self_advertisement_.sequence() + 1;
  // Only load and free memory moved: spread it on traffic there is anyway.
  const bool quiet = !leaving_ && OnlyDriftDiffers(self_advertisement_,
                                                   *pending_advertisement_);
  self_advertisement_ = std::move(*pending_advertisement_);
  self_advertisement_.set_sequence(sequence);
  last_publish_ = scheduler_->Now();
  self_advertisement_.set_published_unix_ms(absl::ToUnixMillis(last_publish_));
  pending_advertisement_.reset();
  BroadcastLocked(SelfUpdateLocked(), quiet);
  if (!quiet) SchedulePushSelfLocked();
}

void Membership::SchedulePushSelfLocked() {
  if (push_self_scheduled_ || !started_) return;
  push_self_scheduled_ = true;
  scheduler_->RunAfter(absl::ZeroDuration(), [this] { PushSelf(); });
}

std::vector<v1::MemberStatus> Membership::Snapshot() const {
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

absl::optional<v1::MemberStatus> Membership::GetMember(
    absl::string_view name) const {
  absl::MutexLock lock(&mu_);
  if (name == options_.name) return SelfStatusLocked();
  auto it = members_.find(name);
  if (it == members_.end()) return absl::nullopt;
  return StatusForLocked(it->first, it->second);
}

size_t Membership::CountMembers(v1::MemberState state) const {
  absl::MutexLock lock(&mu_);
  int index = static_cast<int>(state);
  return index >= 0 && index < 5 ? state_counts_[index] : 0;
}

int Membership::LocalHealth() const {
  absl::MutexLock lock(&mu_);
  return health_;
}

// ---------------------------------------------------------------------------
// Incoming messages.

void Membership::HandlePing(const v1::Ping& request,
                            Transport::Callback<v1::Ack> respond) {
  absl::StatusOr<v1::Ack> result;
  {
    absl::MutexLock lock(&mu_);
    if (!started_ || stopped_) {
      result = absl::UnavailableError("membership not running");
    } else if (!request.target().empty() && request.target() != options_.name) {
      result = absl::FailedPreconditionError(
          absl::StrCat("this is ", options_.name, ", not ", request.target()));
    } else {
      CountMessage(kPingMessage, kReceived, request.ByteSizeLong());
      HeardFromLocked(request.from());
      ApplyGossipLocked(request.gossip(), request.from());
      v1::Ack ack;
      ack.set_from(options_.name);
      ack.set_sequence(request.sequence());
      // Acks of gossip-only pings carry no news of their own: they are many,
      // and would use up each update's few transmissions on members that
      // just told us.
      PiggybackLocked(request.from(), ack.mutable_gossip(),
                      /*take_pending=*/!request.target().empty());
      CountMessage(kAckMessage, kSent, ack.ByteSizeLong());
      result = std::move(ack);
    }
  }
  respond(std::move(result));
}

void Membership::HandleIndirectPing(
    const v1::IndirectPingRequest& request,
    Transport::Callback<v1::IndirectPingResponse> respond) {
  v1::Ping ping;
  absl::Duration timeout;
  bool running;
  {
    absl::MutexLock lock(&mu_);
    running = started_ && !stopped_;
    if (running) {
      CountMessage(kIndirectPingMessage, kReceived, request.ByteSizeLong());
      HeardFromLocked(request.from());
      ApplyGossipLocked(request.gossip(), request.from());
      ping.set_from(options_.name);
      ping.set_target(request.target());
      ping.set_sequence(request.sequence());
      PiggybackLocked(request.target(), ping.mutable_gossip());
      CountMessage(kPingMessage, kSent, ping.ByteSizeLong());
      timeout = std::clamp(absl::Milliseconds(request.timeout_ms()),
                           absl::Milliseconds(1), 10 * options_.probe_timeout);
    }
  }
  if (!running) {
    respond(absl::UnavailableError("membership not running"));
    return;
  }
  transport_->SendPing(
      request.target_address(), std::move(ping), timeout,
      [this, respond = std::move(respond),
       requester = request.from()](absl::StatusOr<v1::Ack> ack) {
        v1::IndirectPingResponse response;
        response.set_target_acked(ack.ok());
        {
          absl::MutexLock lock(&mu_);
          if (!stopped_) {
            if (ack.ok()) {
              CountMessage(kAckMessage, kReceived, ack->ByteSizeLong());
              HeardFromLocked(ack->from());
              ApplyGossipLocked(ack->gossip(), ack->from());
            }
            PiggybackLocked(requester, response.mutable_gossip());
            CountMessage(kIndirectAckMessage, kSent, response.ByteSizeLong());
          }
        }
        respond(std::move(response));
      });
}

void Membership::HandlePushPull(
    const v1::PushPullRequest& request,
    Transport::Callback<v1::PushPullResponse> respond) {
  absl::StatusOr<v1::PushPullResponse> result;
  {
    absl::MutexLock lock(&mu_);
    if (!started_ || stopped_) {
      result = absl::UnavailableError("membership not running");
    } else {
      CountMessage(kPushPullRequestMessage, kReceived, request.ByteSizeLong());
      HeardFromLocked(request.from());
      MergeStateLocked(request.members(), request.from());
      v1::PushPullResponse response;
      response.set_from(options_.name);
      FullStateLocked(response.mutable_members());
      CountMessage(kPushPullResponseMessage, kSent, response.ByteSizeLong());
      result = std::move(response);
    }
  }
  respond(std::move(result));
}

// ---------------------------------------------------------------------------
// Failure detection.

void Membership::ProbeTick() {
  // Read once a period rather than watched: a thread waiting on gRPC's
  // connectivity events would take turns polling with gRPC's own threads
  // and wake more often than the probes do.
  std::vector<std::string> lost = transport_->TakeLostConnections();
  Outbox out;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_ || leaving_) return;
    ProbeLostConnectionsLocked(lost, out);
    std::string target = NextProbeTargetLocked();
    if (target.empty()) {
      scheduler_->RunAfter(ScaledLocked(options_.probe_interval),
                           [this] { ProbeTick(); });
      return;
    }
    StartProbeLocked(target, true, out);
  }
  out.Run();
}

void Membership::ProbeLostConnectionsLocked(
    const std::vector<std::string>& addresses, Outbox& out) {
  if (addresses.empty()) return;
  absl::Time now = scheduler_->Now();
  for (auto& [name, member] : members_) {
    if (member.state != v1::MEMBER_STATE_ALIVE ||
        std::find(addresses.begin(), addresses.end(),
                  member.advertisement.grpc_address()) == addresses.end()) {
      continue;
    }
    // A peer that keeps dropping connections costs at most one extra probe
    // per interval.
    if (now - member.hinted_probe_at < options_.probe_interval) continue;
    member.hinted_probe_at = now;
    metrics_->hinted_probes->Increment();
    LogDebug("membership: %s lost its connection to %s; probing it now",
             options_.name, name);
    StartProbeLocked(name, false, out);
  }
}

void Membership::StartProbeLocked(const std::string& target, bool in_turn,
                                  Outbox& out) {
  const Member& member = members_.at(target);
  auto probe = std::make_shared<Probe>();
  probe->target = target;
  probe->in_turn = in_turn;
  probe->address = member.advertisement.grpc_address();
  probe->incarnation = member.incarnation;
  probe->start = scheduler_->Now();
  v1::Ping ping;
  ping.set_from(options_.name);
  ping.set_target(target);
  ping.set_sequence(++probe_sequence_);
  // Our own entry rides along: a member that missed our join learns of
  // us, and one that suspects us hears first-hand that we are alive.
  *ping.add_gossip() = SelfUpdateLocked();
  PiggybackLocked(target, ping.mutable_gossip());
  metrics_->probes->Increment();
  CountMessage(kPingMessage, kSent, ping.ByteSizeLong());
  absl::Duration timeout = ScaledLocked(options_.probe_timeout);
  out.Add([this, probe, ping = std::move(ping), timeout]() mutable {
    transport_->SendPing(probe->address, std::move(ping), timeout,
                         [this, probe](absl::StatusOr<v1::Ack> ack) {
                           OnDirectAck(probe, std::move(ack));
                         });
  });
}

void Membership::OnDirectAck(std::shared_ptr<Probe> probe,
                             absl::StatusOr<v1::Ack> ack) {
  Outbox out;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    if (ack.ok()) {
      CountMessage(kAckMessage, kReceived, ack->ByteSizeLong());
      HeardFromLocked(probe->target);
      ApplyGossipLocked(ack->gossip(), ack->from());
      FinishProbeLocked(*probe, true);
    } else {
      std::vector<std::string> relays = RandomLiveMembersLocked(
          static_cast<size_t>(options_.indirect_checks), probe->target);
      if (relays.empty()) {
        FinishProbeLocked(*probe, false);
      } else {
        absl::Duration wait = std::max(ScaledLocked(options_.probe_interval) -
                                           ScaledLocked(options_.probe_timeout),
                                       ScaledLocked(options_.probe_timeout));
        probe->pending = probe->expected_nacks =
            static_cast<int>(relays.size());
        for (const std::string& relay : relays) {
          v1::IndirectPingRequest request;
          request.set_from(options_.name);
          request.set_target(probe->target);
          request.set_target_address(probe->address);
          request.set_sequence(++probe_sequence_);
          // The relay answers (a nack) before our own deadline.
          request.set_timeout_ms(absl::ToInt64Milliseconds(wait * 0.8));
          PiggybackLocked(relay, request.mutable_gossip());
          metrics_->indirect_probes->Increment();
          CountMessage(kIndirectPingMessage, kSent, request.ByteSizeLong());
          out.Add(
              [this, probe, wait, request = std::move(request),
               address =
                   members_.at(relay).advertisement.grpc_address()]() mutable {
                transport_->SendIndirectPing(
                    address, std::move(request), wait,
                    [this, probe](absl::StatusOr<v1::IndirectPingResponse> r) {
                      OnIndirectResult(probe, std::move(r));
                    });
              });
        }
      }
    }
  }
  out.Run();
}

void Membership::OnIndirectResult(
    std::shared_ptr<Probe> probe,
    absl::StatusOr<v1::IndirectPingResponse> response) {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    --probe->pending;
    if (response.ok()) {
      ++probe->nacks;
      CountMessage(kIndirectAckMessage, kReceived, response->ByteSizeLong());
      ApplyGossipLocked(response->gossip(), "");
    }
    if (!probe->done) {
      if (response.ok() && response->target_acked()) {
        FinishProbeLocked(*probe, true);
      } else if (probe->pending == 0) {
        FinishProbeLocked(*probe, false);
      }
    }
  }
}

void Membership::FinishProbeLocked(Probe& probe, bool acked) {
  probe.done = true;
  if (acked) {
    AdjustHealthLocked(-1);
  } else {
    metrics_->probe_failures->Increment();
    // Lifeguard: relays that did not even nack point at our own trouble.
    AdjustHealthLocked(
        probe.expected_nacks > 0 ? probe.expected_nacks - probe.nacks : 1);
    auto it = members_.find(probe.target);
    if (it != members_.end() && IsLive(it->second.state) &&
        it->second.incarnation == probe.incarnation) {
      if (it->second.state == v1::MEMBER_STATE_ALIVE) {
        metrics_->suspicions_raised->Increment();
        LogDebug("membership: %s suspects %s", options_.name, probe.target);
      }
      v1::MemberUpdate suspect =
          UpdateForLocked(it->first, it->second, options_.name);
      suspect.set_state(v1::MEMBER_STATE_SUSPECT);
      suspect.set_from(options_.name);
      ApplyUpdateLocked(suspect, false);
    }
  }
  if (!probe.in_turn) return;
  absl::Duration wait =
      probe.start + ScaledLocked(options_.probe_interval) - scheduler_->Now();
  scheduler_->RunAfter(std::max(wait, absl::ZeroDuration()),
                       [this] { ProbeTick(); });
}

void Membership::OnSuspicionTimeout(std::string name, uint64_t generation) {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    auto it = members_.find(name);
    if (it == members_.end() || it->second.suspicion_generation != generation ||
        it->second.state != v1::MEMBER_STATE_SUSPECT) {
      return;
    }
    metrics_->members_declared_dead->Increment();
    LogInfo("membership: %s declares %s dead", options_.name, name);
    v1::MemberUpdate dead = UpdateForLocked(name, it->second, options_.name);
    dead.set_state(v1::MEMBER_STATE_DEAD);
    dead.set_from(options_.name);
    ApplyUpdateLocked(dead, false);
  }
}

// ---------------------------------------------------------------------------
// Dissemination, anti-entropy, join and heal.

void Membership::GossipTick() {
  Outbox out;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    SendGossipLocked(options_.gossip_nodes, false, out);
    // An idle grid has no news: the timer sleeps until BroadcastLocked
    // queues some, instead of waking this thread 20 times a second. Nor
    // does a node alone (self is the one live member): its news waits for
    // a peer, whose arrival is news of its own and re-arms the timer.
    gossip_armed_ = !broadcasts_.empty() && LiveCountLocked() > 1;
    if (gossip_armed_) {
      scheduler_->RunAfter(options_.gossip_interval, [this] { GossipTick(); });
    }
  }
  out.Run();
}

void Membership::SendGossipLocked(int fanout, bool with_self, Outbox& out) {
  for (const std::string& target :
       RandomLiveMembersLocked(static_cast<size_t>(fanout), "")) {
    if (broadcasts_.empty() && !with_self) break;
    v1::Ping ping;
    ping.set_from(options_.name);
    if (with_self) *ping.add_gossip() = SelfUpdateLocked();
    PiggybackLocked("", ping.mutable_gossip());
    CountMessage(kPingMessage, kSent, ping.ByteSizeLong());
    out.Add(
        [this, ping = std::move(ping),
         address = members_.at(target).advertisement.grpc_address()]() mutable {
          transport_->SendPing(address, std::move(ping), options_.probe_timeout,
                               [this](absl::StatusOr<v1::Ack> ack) {
                                 if (ack.ok()) OnGossipAck(*ack);
                               });
        });
  }
}

void Membership::OnGossipAck(const v1::Ack& ack) {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    CountMessage(kAckMessage, kReceived, ack.ByteSizeLong());
    HeardFromLocked(ack.from());
    ApplyGossipLocked(ack.gossip(), ack.from());
  }
}

void Membership::PushPullTick() {
  Outbox out;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    // As memberlist: beyond 32 members, exchange less often, by log2 N.
    double n = static_cast<double>(LiveCountLocked());
    double scale = n <= 32 ? 1.0 : std::ceil(std::log2(n) - 5.0) + 1.0;
    scheduler_->RunAfter(options_.push_pull_interval * scale,
                         [this] { PushPullTick(); });
    if (leaving_) return;
    std::vector<std::string> peer = RandomLiveMembersLocked(1, "");
    if (peer.empty()) return;
    StartPushPull(members_.at(peer[0]).advertisement.grpc_address(), false, out,
                  nullptr);
  }
  out.Run();
}

void Membership::JoinAttempt(size_t index) {
  Outbox out;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_ || joined_ || leaving_) return;
    if (index >= join_order_.size()) {
      // Every seed failed (or there is none but ourselves): wait, retry.
      if (join_order_.empty()) {
        joined_ = true;
        return;
      }
      LogWarning("membership: %s found no seed answering; retrying in %s",
                 options_.name,
                 absl::FormatDuration(options_.join_retry_interval));
      scheduler_->RunAfter(options_.join_retry_interval,
                           [this] { JoinAttempt(0); });
      return;
    }
    // One seed at a time, so that a grid starting at once does not send
    // every seed a full-state exchange per seed.
    StartPushPull(join_order_[index], true, out, [this, index](bool ok) {
      absl::MutexLock relock(&mu_);
      if (stopped_) return;
      if (ok) {
        joined_ = true;
        LogDebug("membership: %s joined through %s", options_.name,
                 join_order_[index]);
        // Members that joined at the same time as we did may have missed
        // each other's news: a few early exchanges catch up.
        scheduler_->RunAfter(options_.join_retry_interval,
                             [this] { FollowUpPushPull(2); });
      } else {
        scheduler_->RunAfter(absl::ZeroDuration(),
                             [this, index] { JoinAttempt(index + 1); });
      }
    });
  }
  out.Run();
}

void Membership::FollowUpPushPull(int remaining) {
  Outbox out;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_ || leaving_) return;
    std::vector<std::string> peer = RandomLiveMembersLocked(1, "");
    if (peer.empty()) return;
    // A lost exchange does not count (but a few tries end it).
    StartPushPull(members_.at(peer[0]).advertisement.grpc_address(), false, out,
                  [this, remaining](bool ok) {
                    int left = ok ? remaining - 1 : std::min(remaining, 2) - 1;
                    if (left <= 0) return;
                    scheduler_->RunAfter(
                        2 * options_.join_retry_interval,
                        [this, left] { FollowUpPushPull(left); });
                  });
  }
  out.Run();
}

void Membership::ReconnectTick() {
  Outbox out;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    scheduler_->RunAfter(options_.reconnect_interval,
                         [this] { ReconnectTick(); });
    absl::Time now = scheduler_->Now();
    std::vector<std::string> forget;
    std::vector<std::string> candidates;
    absl::flat_hash_set<std::string> live_addresses;
    // names_, not members_: a deterministic order for simulations.
    for (const std::string& name : names_) {
      const Member& member = members_.at(name);
      if (IsLive(member.state)) {
        live_addresses.insert(member.advertisement.grpc_address());
      } else if (now - member.state_since > options_.dead_retention) {
        forget.push_back(name);
      } else if (member.state == v1::MEMBER_STATE_DEAD) {
        candidates.push_back(member.advertisement.grpc_address());
      }
    }
    for (const std::string& name : forget) ForgetLocked(name);
    if (leaving_ || !joined_) return;  // JoinAttempt retries the seeds.
    for (const std::string& seed : options_.seeds) {
      if (seed != options_.advertise_address && !live_addresses.contains(seed))
        candidates.push_back(seed);
    }
    if (candidates.empty()) return;
    StartPushPull(candidates[RandomLocked(candidates.size())], false, out,
                  nullptr);
  }
  out.Run();
}

void Membership::StartPushPull(const std::string& address, bool join,
                               Outbox& out, std::function<void(bool)> done) {
  v1::PushPullRequest request;
  request.set_from(options_.name);
  request.set_join(join);
  FullStateLocked(request.mutable_members());
  CountMessage(kPushPullRequestMessage, kSent, request.ByteSizeLong());
  out.Add([this, address, request = std::move(request),
           done = std::move(done)]() mutable {
    transport_->PushPull(
        address, std::move(request), options_.push_pull_timeout,
        [this, done](absl::StatusOr<v1::PushPullResponse> response) {
          {
            absl::MutexLock lock(&mu_);
            if (stopped_) return;
            if (response.ok()) {
              metrics_->push_pulls->Increment();
              CountMessage(kPushPullResponseMessage, kReceived,
                           response->ByteSizeLong());
              HeardFromLocked(response->from());
              MergeStateLocked(response->members(), response->from());
            } else {
              metrics_->push_pull_failures->Increment();
            }
          }
          if (done) done(response.ok());
        });
  });
}

// ---------------------------------------------------------------------------
// Merging news.

void Membership::ApplyGossipLocked(const Updates& updates,
                                   absl::string_view first_hand_name) {
  for (const v1::MemberUpdate& update : updates) {
    ApplyUpdateLocked(
        update, !first_hand_name.empty() && update.name() == first_hand_name);
  }
}

void Membership::MergeStateLocked(const Updates& members,
                                  absl::string_view peer) {
  // Anti-entropy news about third parties is merged quietly: it is old news
  // elsewhere, and re-gossiping a whole table per exchange would flood a
  // grid that starts at once. The peer's own entry is news worth spreading
  // (that is how a joining node becomes known).
  for (const v1::MemberUpdate& update : members) {
    const bool first_hand = !peer.empty() && update.name() == peer;
    ApplyUpdateLocked(update, first_hand, /*rebroadcast=*/first_hand);
  }
}

void Membership::ApplyUpdateLocked(const v1::MemberUpdate& update,
                                   bool first_hand, bool rebroadcast) {
  const int rank = Rank(update.state());
  if (rank < 0 || update.name().empty()) return;
  if (update.name() == options_.name) {
    ApplyNewsAboutSelfLocked(update);
    return;
  }
  absl::Time now = scheduler_->Now();
  auto it = members_.find(update.name());
  if (it == members_.end()) {
    // News of the dead about strangers is not worth keeping.
    if (!IsLive(update.state()) ||
        update.advertisement().grpc_address().empty()) {
      return;
    }
    it = members_.try_emplace(update.name()).first;
    Member& member = it->second;
    member.advertisement = update.advertisement();
    member.advertisement.set_name(update.name());
    member.incarnation = update.incarnation();
    member.state = v1::MEMBER_STATE_UNSPECIFIED;
    member.last_heard = now;
    member.advertisement_received = now;
    name_index_[it->first] = names_.size();
    names_.push_back(it->first);
    SetStateLocked(it->first, member, update.state());
    if (update.state() == v1::MEMBER_STATE_SUSPECT) {
      StartSuspicionLocked(it->first, member, update.from());
    }
    if (rebroadcast) {
      BroadcastLocked(UpdateForLocked(it->first, member, update.from()));
    }
    if (listener_) NotifyLocked(StatusForLocked(it->first, member));
    return;
  }
  const std::string& name = it->first;
  Member& member = it->second;
  const bool newer =
      update.incarnation() > member.incarnation ||
      (update.incarnation() == member.incarnation &&
       rank > Rank(member.state)) ||
      // The member itself, in a direct exchange, says it is alive: that is
      // no stale news (it is how the halves of a partition meet again).
      (first_hand && update.incarnation() == member.incarnation &&
       update.state() == v1::MEMBER_STATE_ALIVE &&
       (member.state == v1::MEMBER_STATE_SUSPECT ||
        member.state == v1::MEMBER_STATE_DEAD));
  bool changed = false;
  const v1::MemberState state_before = member.state;
  if (newer) {
    member.incarnation = update.incarnation();
    SetStateLocked(name, member, update.state());
    if (update.state() == v1::MEMBER_STATE_SUSPECT) {
      StartSuspicionLocked(name, member, update.from());
    }
    changed = true;
  } else if (update.state() == v1::MEMBER_STATE_SUSPECT &&
             member.state == v1::MEMBER_STATE_SUSPECT &&
             update.incarnation() == member.incarnation) {
    ConfirmSuspicionLocked(name, member, update);
  }
  bool quiet = false;
  if (update.has_advertisement() &&
      update.advertisement().sequence() > member.advertisement.sequence() &&
      !update.advertisement().grpc_address().empty()) {
    v1::Advertisement previous = std::move(member.advertisement);
    member.advertisement = update.advertisement();
    member.advertisement.set_name(name);
    member.advertisement_received = now;
    quiet = !changed && OnlyDriftDiffers(previous, member.advertisement);
    changed = true;
  }
  if (!changed) return;
  member.last_heard = std::max(member.last_heard, now);
  if (rebroadcast)
    BroadcastLocked(UpdateForLocked(name, member, update.from()), quiet);
  // Advertisements change every few seconds on every member (load, free
  // cores): waking the listener's thread for each would wake an idle node
  // of a large grid several times a second for nothing it listens to.
  if (listener_ && member.state != state_before) {
    NotifyLocked(StatusForLocked(name, member));
  }
}

void Membership::ApplyNewsAboutSelfLocked(const v1::MemberUpdate& update) {
  bool changed = false;
  if (update.advertisement().sequence() > self_advertisement_.sequence()) {
    // News from a previous life of this node: outbid it.
    self_advertisement_.set_sequence(update.advertisement().sequence() + 1);
    self_advertisement_.set_published_unix_ms(
        absl::ToUnixMillis(scheduler_->Now()));
    changed = true;
  }
  if (update.incarnation() > self_incarnation_ ||
      (update.incarnation() == self_incarnation_ &&
       update.state() != v1::MEMBER_STATE_ALIVE)) {
    if (update.state() != v1::MEMBER_STATE_ALIVE && !leaving_) {
      metrics_->suspicions_refuted->Increment();
      AdjustHealthLocked(1);  // Lifeguard: being suspected hints we are slow.
      LogDebug("membership: %s refutes %s from %s", options_.name,
               v1::MemberState_Name(update.state()), update.from());
    }
    self_incarnation_ = update.incarnation() + 1;
    changed = true;
    // A refutation is urgent, and piggybacked copies may ride on acks that
    // come too late to count: push it out at once as well.
    SchedulePushSelfLocked();
  }
  if (!changed) return;
  BroadcastLocked(SelfUpdateLocked());
}

void Membership::PushSelf() {
  Outbox out;
  {
    absl::MutexLock lock(&mu_);
    push_self_scheduled_ = false;
    if (stopped_) return;
    // Twice the usual fan-out: every member that heard a suspicion of us
    // runs a timer (and our acks may all come too late to carry the
    // refutation); a new advertisement should reach all within a second.
    SendGossipLocked(2 * options_.gossip_nodes, true, out);
  }
  out.Run();
}

void Membership::SetStateLocked(const std::string& name, Member& member,
                                v1::MemberState state) {
  absl::Time now = scheduler_->Now();
  if (member.state == state) return;
  const bool was_live = IsLive(member.state);
  if (member.state != v1::MEMBER_STATE_UNSPECIFIED) {
    --state_counts_[member.state];
    metrics_->members_by_state[member.state]->Decrement();
  }
  ++state_counts_[state];
  metrics_->members_by_state[state]->Increment();
  member.state = state;
  member.state_since = now;
  ++member.suspicion_generation;  // Any pending suspicion timer is void.
  member.confirmers.clear();
  if (!was_live && IsLive(state)) {
    // A node that was alone may hold news for its first peer.
    ArmGossipLocked();
    // Probe newcomers (and the revived) soon, at a random place in the round.
    // (Appended, then swapped with a random not-yet-probed entry.)
    probe_order_.push_back(name);
    size_t span = probe_order_.size() - probe_next_;
    std::swap(probe_order_.back(),
              probe_order_[probe_next_ + RandomLocked(span)]);
  }
}

void Membership::StartSuspicionLocked(const std::string& name, Member& member,
                                      const std::string& from) {
  member.suspect_since = scheduler_->Now();
  member.confirmers.clear();
  member.confirmers.insert(from);
  ++member.suspicion_generation;
  const int n = static_cast<int>(LiveCountLocked());
  int k = options_.suspicion_multiplier - 2;
  if (n - 2 < k) k = 0;
  member.suspicion_k = std::max(k, 0);
  member.suspicion_min = options_.probe_interval *
                         options_.suspicion_multiplier *
                         std::max(1.0, std::log10(static_cast<double>(n)));
  member.suspicion_max =
      member.suspicion_min * options_.suspicion_max_multiplier;
  ArmSuspicionTimerLocked(name, member);
}

void Membership::ConfirmSuspicionLocked(const std::string& name, Member& member,
                                        const v1::MemberUpdate& update) {
  if (update.from().empty() ||
      static_cast<int>(member.confirmers.size()) > member.suspicion_k ||
      !member.confirmers.insert(update.from()).second) {
    return;
  }
  ++member.suspicion_generation;
  ArmSuspicionTimerLocked(name, member);
  BroadcastLocked(update);  // Others shorten their timers too.
}

void Membership::ArmSuspicionTimerLocked(const std::string& name,
                                         Member& member) {
  absl::Duration timeout = LifeguardTimeout(
      static_cast<int>(member.confirmers.size()) - 1, member.suspicion_k,
      member.suspicion_min, member.suspicion_max);
  absl::Duration wait = member.suspect_since + timeout - scheduler_->Now();
  scheduler_->RunAfter(std::max(wait, absl::ZeroDuration()),
                       [this, name, generation = member.suspicion_generation] {
                         OnSuspicionTimeout(name, generation);
                       });
}

void Membership::HeardFromLocked(absl::string_view name) {
  auto it = members_.find(name);
  if (it != members_.end()) it->second.last_heard = scheduler_->Now();
}

void Membership::AdjustHealthLocked(int delta) {
  int health = std::clamp(health_ + delta, 0, options_.awareness_max);
  if (health == health_) return;
  health_ = health;
  metrics_->local_health->Set(health_);
}

void Membership::ForgetLocked(const std::string& name) {
  auto it = members_.find(name);
  if (it == members_.end()) return;
  --state_counts_[it->second.state];
  metrics_->members_by_state[it->second.state]->Decrement();
  size_t index = name_index_.at(name);
  name_index_.erase(name);
  if (index + 1 != names_.size()) {
    names_[index] = std::move(names_.back());
    name_index_[names_[index]] = index;
  }
  names_.pop_back();
  members_.erase(it);
}

// ---------------------------------------------------------------------------
// Building messages.

v1::MemberUpdate Membership::UpdateForLocked(const std::string& name,
                                             const Member& member,
                                             const std::string& from) const {
  v1::MemberUpdate update;
  update.set_name(name);
  update.set_state(member.state);
  update.set_incarnation(member.incarnation);
  // Lean on the wire: the update's name stands for the advertisement's, and
  // `from` matters only for suspicion and death.
  *update.mutable_advertisement() = member.advertisement;
  update.mutable_advertisement()->clear_name();
  if (member.state == v1::MEMBER_STATE_SUSPECT ||
      member.state == v1::MEMBER_STATE_DEAD) {
    update.set_from(from);
  }
  return update;
}

v1::MemberUpdate Membership::SelfUpdateLocked() const {
  v1::MemberUpdate update;
  update.set_name(options_.name);
  update.set_state(leaving_ ? v1::MEMBER_STATE_LEFT : v1::MEMBER_STATE_ALIVE);
  update.set_incarnation(self_incarnation_);
  *update.mutable_advertisement() = self_advertisement_;
  update.mutable_advertisement()->clear_name();
  return update;
}

void Membership::BroadcastLocked(v1::MemberUpdate update, bool quiet) {
  (quiet ? quiet_broadcasts_ : broadcasts_).Push(std::move(update));
  // Quiet news never makes a message of its own (see quiet_broadcasts_).
  if (!quiet) ArmGossipLocked();
}

void Membership::ArmGossipLocked() {
  if (gossip_armed_ || broadcasts_.empty() || LiveCountLocked() < 2 ||
      !started_ || stopped_) {
    return;
  }
  // News after a quiet spell goes out at once (each hop waiting for the
  // next tick would add up over the log N hops to everyone); news that
  // follows within gossip_interval waits for the next tick and shares it.
  gossip_armed_ = true;
  scheduler_->RunAfter(absl::ZeroDuration(), [this] { GossipTick(); });
}

void Membership::PiggybackLocked(absl::string_view about, Updates* gossip,
                                 bool take_pending) {
  auto it = members_.find(about);
  bool told = false;
  if (it != members_.end() && (it->second.state == v1::MEMBER_STATE_SUSPECT ||
                               it->second.state == v1::MEMBER_STATE_DEAD)) {
    // Lifeguard's buddy system: tell a suspect first, so it refutes at once.
    *gossip->Add() = UpdateForLocked(it->first, it->second, options_.name);
    told = true;
  }
  if (!take_pending) return;
  broadcasts_.Take(RetransmitLimitLocked(), options_.max_gossip_bytes, gossip,
                   told ? about : absl::string_view());
  if (quiet_broadcasts_.empty()) return;
  size_t used = 0;
  for (const v1::MemberUpdate& update : *gossip) used += update.ByteSizeLong();
  if (used >= options_.max_gossip_bytes) return;
  quiet_broadcasts_.Take(RetransmitLimitLocked(),
                         options_.max_gossip_bytes - used, gossip,
                         told ? about : absl::string_view());
}

void Membership::FullStateLocked(Updates* members) const {
  members->Reserve(static_cast<int>(members_.size() + 1));
  *members->Add() = SelfUpdateLocked();
  for (const std::string& name : names_) {
    *members->Add() = UpdateForLocked(name, members_.at(name), options_.name);
  }
}

v1::MemberStatus Membership::StatusForLocked(const std::string& name,
                                             const Member& member) const {
  (void)name;
  v1::MemberStatus status;
  *status.mutable_advertisement() = member.advertisement;
  status.set_state(member.state);
  status.set_incarnation(member.incarnation);
  status.set_last_heard_ms_ago(
      absl::ToInt64Milliseconds(scheduler_->Now() - member.last_heard));
  status.set_advertisement_received_unix_ms(
      absl::ToUnixMillis(member.advertisement_received));
  return status;
}

v1::MemberStatus Membership::SelfStatusLocked() const {
  v1::MemberStatus status;
  *status.mutable_advertisement() = self_advertisement_;
  status.set_state(leaving_ ? v1::MEMBER_STATE_LEFT : v1::MEMBER_STATE_ALIVE);
  status.set_incarnation(self_incarnation_);
  status.set_last_heard_ms_ago(0);
  status.set_advertisement_received_unix_ms(
      self_advertisement_.published_unix_ms());
  return status;
}

void Membership::NotifyLocked(v1::MemberStatus status) {
  if (!listener_) return;
  notifications_.push_back(std::move(status));
  if (notify_scheduled_) return;
  notify_scheduled_ = true;
  scheduler_->RunAfter(absl::ZeroDuration(),
                       [this] { DeliverNotifications(); });
}

void Membership::DeliverNotifications() {
  std::vector<v1::MemberStatus> batch;
  Listener listener;
  {
    absl::MutexLock lock(&mu_);
    batch.swap(notifications_);
    notify_scheduled_ = false;
    listener = listener_;
  }
  for (const v1::MemberStatus& status : batch) listener(status);
}

// ---------------------------------------------------------------------------
// Choosing members.

size_t Membership::LiveCountLocked() const {
  return state_counts_[v1::MEMBER_STATE_ALIVE] +
         state_counts_[v1::MEMBER_STATE_SUSPECT];
}

int Membership::RetransmitLimitLocked() const {
  // memberlist's mult x ceil(log10(N + 1)), but never under 2 x mult: in
  // grids of under ten nodes a single factor proved too few.
  double n = static_cast<double>(LiveCountLocked());
  return options_.retransmit_multiplier *
         std::max(2, static_cast<int>(std::ceil(std::log10(n + 1.0))));
}

absl::Duration Membership::ScaledLocked(absl::Duration d) const {
  return d * (health_ + 1);
}

std::string Membership::NextProbeTargetLocked() {
  for (int round = 0; round < 2; ++round) {
    while (probe_next_ < probe_order_.size()) {
      auto it = members_.find(probe_order_[probe_next_++]);
      if (it != members_.end() && IsLive(it->second.state)) return it->first;
    }
    // A new round: every live member once, in a fresh random order.
    probe_order_.clear();
    probe_next_ = 0;
    for (const std::string& name : names_) {
      if (IsLive(members_.at(name).state)) probe_order_.push_back(name);
    }
    for (size_t i = probe_order_.size(); i > 1; --i) {
      std::swap(probe_order_[i - 1], probe_order_[RandomLocked(i)]);
    }
  }
  return "";
}

std::vector<std::string> Membership::RandomLiveMembersLocked(
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

uint64_t Membership::RandomLocked(uint64_t bound) {
  // splitmix64: cheap, and deterministic under a fixed seed.
  uint64_t z = (rng_state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return bound == 0 ? 0 : z % bound;
}

void Membership::CountMessage(int type, int direction, size_t bytes) const {
  metrics_->messages[type][direction]->Increment();
  metrics_->bytes[type][direction]->Increment(static_cast<double>(bytes));
}

}  // namespace peergrid
