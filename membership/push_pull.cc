// Full-state exchange (push-pull): periodic anti-entropy with a random
// member, joining through the seeds one at a time, the follow-up exchanges
// after a join, and the reconnect round that retries the dead and unseen
// seeds (healing partitions) and forgets the long dead. Ticks run on the
// scheduler's thread, responses on transport threads; all under mu_.
#include <algorithm>
#include <cmath>
#include <utility>

#include "common/log.h"
#include "membership/metrics.h"
#include "membership/swim.h"

namespace peergrid {

void SwimProtocol::HandlePushPull(
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

void SwimProtocol::PushPullTick() {
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

void SwimProtocol::JoinAttempt(size_t index) {
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

void SwimProtocol::FollowUpPushPull(int remaining) {
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

void SwimProtocol::ReconnectTick() {
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

void SwimProtocol::StartPushPull(const std::string& address, bool join,
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

}  // namespace peergrid
