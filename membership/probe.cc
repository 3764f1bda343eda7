// Failure detection: the probe round (a direct ping, then indirect pings
// through k relays), out-of-turn probes of members whose connection the
// transport lost, the answers to incoming pings, and Lifeguard's local
// health, which stretches this node's timeouts when it is the slow one.
// Ticks run on the scheduler's thread, acks on transport threads, incoming
// pings on gRPC's callback threads; all under mu_.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "membership/metrics.h"
#include "membership/swim.h"

namespace peergrid {

struct SwimProtocol::Probe {
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

void SwimProtocol::HandlePing(const v1::Ping& request,
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

void SwimProtocol::HandleIndirectPing(
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
       requester = request.from(),
       target = request.target()](absl::StatusOr<v1::Ack> ack) {
        if (ack.ok() && ack->from() != target) {
          ack = absl::FailedPreconditionError("answered by another member");
        }
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

void SwimProtocol::ProbeTick() {
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

void SwimProtocol::ProbeLostConnectionsLocked(
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

void SwimProtocol::StartProbeLocked(const std::string& target, bool in_turn,
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

void SwimProtocol::OnDirectAck(std::shared_ptr<Probe> probe,
                               absl::StatusOr<v1::Ack> ack) {
  Outbox out;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    if (ack.ok() && ack->from() != probe->target) {
      // Another member answered at the target's address: the target did not.
      ack = absl::FailedPreconditionError(absl::StrCat(
          "probed ", probe->target, ", answered by ", ack->from()));
    }
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

void SwimProtocol::OnIndirectResult(
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

void SwimProtocol::FinishProbeLocked(Probe& probe, bool acked) {
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

void SwimProtocol::AdjustHealthLocked(int delta) {
  int health = std::clamp(health_ + delta, 0, options_.awareness_max);
  if (health == health_) return;
  health_ = health;
  metrics_->local_health->Set(health_);
}

absl::Duration SwimProtocol::ScaledLocked(absl::Duration d) const {
  return d * (health_ + 1);
}

std::string SwimProtocol::NextProbeTargetLocked() {
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

}  // namespace peergrid
