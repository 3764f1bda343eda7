// Dissemination: this node's advertisement (rate-limited publication),
// the broadcast queues (news that wakes the gossip timer, and quiet drift
// that only rides along), piggybacking news on every message, and the
// gossip rounds that send it when nothing else does. Ticks run on the
// scheduler's thread; piggybacking under mu_ wherever a message is built.
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "common/version.h"
#include "membership/metrics.h"
#include "membership/swim.h"

namespace peergrid {
namespace {

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

}  // namespace

bool SameAdvertisement(const v1::Advertisement& a, const v1::Advertisement& b) {
  return CanonicalBytes(a) == CanonicalBytes(b);
}

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

void SwimProtocol::SetAdvertisement(v1::Advertisement advertisement) {
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

void SwimProtocol::PublishAdvertisement() {
  absl::MutexLock lock(&mu_);
  publish_scheduled_ = false;
  if (!stopped_ && pending_advertisement_.has_value()) PublishLocked();
}

void SwimProtocol::PublishLocked() {
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

void SwimProtocol::SchedulePushSelfLocked() {
  if (push_self_scheduled_ || !started_) return;
  push_self_scheduled_ = true;
  scheduler_->RunAfter(absl::ZeroDuration(), [this] { PushSelf(); });
}

void SwimProtocol::PushSelf() {
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

void SwimProtocol::GossipTick() {
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

void SwimProtocol::SendGossipLocked(int fanout, bool with_self, Outbox& out) {
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

void SwimProtocol::OnGossipAck(const v1::Ack& ack) {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    CountMessage(kAckMessage, kReceived, ack.ByteSizeLong());
    HeardFromLocked(ack.from());
    ApplyGossipLocked(ack.gossip(), ack.from());
  }
}

void SwimProtocol::BroadcastLocked(v1::MemberUpdate update, bool quiet) {
  (quiet ? quiet_broadcasts_ : broadcasts_).Push(std::move(update));
  // Quiet news never makes a message of its own (see quiet_broadcasts_).
  if (!quiet) ArmGossipLocked();
}

void SwimProtocol::ArmGossipLocked() {
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

void SwimProtocol::PiggybackLocked(absl::string_view about,
                                   MemberUpdates* gossip, bool take_pending) {
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

int SwimProtocol::RetransmitLimitLocked() const {
  // memberlist's mult x ceil(log10(N + 1)), but never under 2 x mult: in
  // grids of under ten nodes a single factor proved too few.
  double n = static_cast<double>(LiveCountLocked());
  return options_.retransmit_multiplier *
         std::max(2, static_cast<int>(std::ceil(std::log10(n + 1.0))));
}

}  // namespace peergrid
