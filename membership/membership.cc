// Membership's public face: option checks, and each call handed to the
// SwimProtocol behind it (swim.h), on the caller's thread.
#include "membership/membership.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/address.h"
#include "membership/swim.h"

namespace peergrid {
namespace {

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

Membership::Membership(MembershipOptions options,
                       std::unique_ptr<Transport> transport,
                       std::unique_ptr<Scheduler> scheduler,
                       prometheus::Registry& registry)
    : swim_(std::make_unique<SwimProtocol>(std::move(options),
                                           std::move(transport),
                                           std::move(scheduler), registry)) {}

Membership::~Membership() = default;  // ~SwimProtocol stops it.

void Membership::SetListener(Listener listener) {
  swim_->SetListener(std::move(listener));
}

absl::Status Membership::Start() { return swim_->Start(); }

void Membership::LeaveAsync(absl::Duration timeout,
                            std::function<void(absl::Status)> done) {
  swim_->LeaveAsync(timeout, std::move(done));
}

absl::Status Membership::Leave(absl::Duration timeout) {
  return swim_->Leave(timeout);
}

void Membership::Stop() { swim_->Stop(); }

void Membership::SetAdvertisement(v1::Advertisement advertisement) {
  swim_->SetAdvertisement(std::move(advertisement));
}

std::vector<v1::MemberStatus> Membership::Snapshot() const {
  return swim_->Snapshot();
}

absl::optional<v1::MemberStatus> Membership::GetMember(
    absl::string_view name) const {
  return swim_->GetMember(name);
}

size_t Membership::CountMembers(v1::MemberState state) const {
  return swim_->CountMembers(state);
}

int Membership::LocalHealth() const { return swim_->LocalHealth(); }

const std::string& Membership::name() const { return swim_->name(); }

void Membership::HandlePing(const v1::Ping& request,
                            Transport::Callback<v1::Ack> respond) {
  swim_->HandlePing(request, std::move(respond));
}

void Membership::HandleIndirectPing(
    const v1::IndirectPingRequest& request,
    Transport::Callback<v1::IndirectPingResponse> respond) {
  swim_->HandleIndirectPing(request, std::move(respond));
}

void Membership::HandlePushPull(
    const v1::PushPullRequest& request,
    Transport::Callback<v1::PushPullResponse> respond) {
  swim_->HandlePushPull(request, std::move(respond));
}

}  // namespace peergrid
