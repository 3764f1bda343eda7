// The member table and incarnations: how news about a member (gossip,
// push-pull state, first-hand word) is merged under SWIM's precedence,
// how news about this node is refuted, and the updates and statuses built
// from the table. Runs under mu_ on whichever thread brought the news
// (gRPC's callback threads, the scheduler's thread); listeners are called
// on the scheduler's thread with no lock held.
#include <algorithm>
#include <utility>

#include "common/log.h"
#include "membership/metrics.h"
#include "membership/swim.h"

namespace peergrid {
namespace {

// A member raises its incarnation by one per refutation: 2^62 of them is
// beyond any real life, and far enough from the top that +1 never wraps.
constexpr uint64_t kMaxHonestIncarnation = uint64_t{1} << 62;

// Longer member names and addresses are refused (a DNS name is at most 253).
constexpr size_t kMaxNameBytes = 255;

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

}  // namespace

void SwimProtocol::ApplyGossipLocked(const MemberUpdates& updates,
                                     absl::string_view first_hand_name) {
  for (const v1::MemberUpdate& update : updates) {
    ApplyUpdateLocked(
        update, !first_hand_name.empty() && update.name() == first_hand_name);
  }
}

void SwimProtocol::MergeStateLocked(const MemberUpdates& members,
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

void SwimProtocol::ApplyUpdateLocked(const v1::MemberUpdate& update,
                                     bool first_hand, bool rebroadcast) {
  const int rank = Rank(update.state());
  if (rank < 0 || update.name().empty()) return;
  // Names and addresses travel in every message about a member: a name of
  // a megabyte would be copied to every node and every gossip message.
  if (update.name().size() > kMaxNameBytes ||
      update.advertisement().grpc_address().size() > kMaxNameBytes) {
    metrics_->updates_ignored->Increment();
    return;
  }
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
  // Only a member raises its own incarnation, by one, to refute. Second-
  // hand word of a higher one is taken only as that refutation passed on:
  // `alive` at one above what we hold. Anything else above it is ignored:
  // a claim nobody can outbid (dead at the largest incarnation) would
  // otherwise silence the member for good.
  const bool raises_incarnation = update.incarnation() > member.incarnation;
  const bool may_raise =
      first_hand || (update.state() == v1::MEMBER_STATE_ALIVE &&
                     update.incarnation() == member.incarnation + 1);
  if (raises_incarnation && !may_raise) {
    metrics_->updates_ignored->Increment();
  }
  const bool newer =
      (raises_incarnation && may_raise) ||
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

void SwimProtocol::ApplyNewsAboutSelfLocked(const v1::MemberUpdate& update) {
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
    // A claim beyond any this node could have made is a forgery: outbid
    // what the others hold instead (they ignore it; see ApplyUpdateLocked).
    self_incarnation_ = update.incarnation() < kMaxHonestIncarnation
                            ? update.incarnation() + 1
                            : self_incarnation_ + 1;
    changed = true;
    // A refutation is urgent, and piggybacked copies may ride on acks that
    // come too late to count: push it out at once as well.
    SchedulePushSelfLocked();
  }
  if (!changed) return;
  BroadcastLocked(SelfUpdateLocked());
}

void SwimProtocol::SetStateLocked(const std::string& name, Member& member,
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

void SwimProtocol::HeardFromLocked(absl::string_view name) {
  auto it = members_.find(name);
  if (it != members_.end()) it->second.last_heard = scheduler_->Now();
}

void SwimProtocol::ForgetLocked(const std::string& name) {
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

v1::MemberUpdate SwimProtocol::UpdateForLocked(const std::string& name,
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

v1::MemberUpdate SwimProtocol::SelfUpdateLocked() const {
  v1::MemberUpdate update;
  update.set_name(options_.name);
  update.set_state(leaving_ ? v1::MEMBER_STATE_LEFT : v1::MEMBER_STATE_ALIVE);
  update.set_incarnation(self_incarnation_);
  *update.mutable_advertisement() = self_advertisement_;
  update.mutable_advertisement()->clear_name();
  return update;
}

void SwimProtocol::FullStateLocked(MemberUpdates* members) const {
  members->Reserve(static_cast<int>(members_.size() + 1));
  *members->Add() = SelfUpdateLocked();
  for (const std::string& name : names_) {
    *members->Add() = UpdateForLocked(name, members_.at(name), options_.name);
  }
}

v1::MemberStatus SwimProtocol::StatusForLocked(const std::string& name,
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

v1::MemberStatus SwimProtocol::SelfStatusLocked() const {
  v1::MemberStatus status;
  *status.mutable_advertisement() = self_advertisement_;
  status.set_state(leaving_ ? v1::MEMBER_STATE_LEFT : v1::MEMBER_STATE_ALIVE);
  status.set_incarnation(self_incarnation_);
  status.set_last_heard_ms_ago(0);
  status.set_advertisement_received_unix_ms(
      self_advertisement_.published_unix_ms());
  return status;
}

void SwimProtocol::NotifyLocked(v1::MemberStatus status) {
  if (!listener_) return;
  notifications_.push_back(std::move(status));
  if (notify_scheduled_) return;
  notify_scheduled_ = true;
  scheduler_->RunAfter(absl::ZeroDuration(),
                       [this] { DeliverNotifications(); });
}

void SwimProtocol::DeliverNotifications() {
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

}  // namespace peergrid
