// Lifeguard suspicion: a suspect member's timer, from its longest down to
// its shortest as independent members confirm, and its death when the
// timer fires unrefuted. Timers run on the scheduler's thread; the rest
// under mu_ wherever the suspicion arrived.
#include <algorithm>
#include <cmath>
#include <utility>

#include "common/log.h"
#include "membership/metrics.h"
#include "membership/swim.h"

namespace peergrid {
namespace {

// Lifeguard: from `max` with no confirmation down to `min` after k of them,
// logarithmically.
absl::Duration LifeguardTimeout(int confirmations, int k, absl::Duration min,
                                absl::Duration max) {
  if (k < 1) return min;
  double fraction = std::log(confirmations + 1.0) / std::log(k + 1.0);
  absl::Duration timeout = max - (max - min) * fraction;
  return std::max(timeout, min);
}

}  // namespace

void SwimProtocol::StartSuspicionLocked(const std::string& name, Member& member,
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

void SwimProtocol::ConfirmSuspicionLocked(const std::string& name,
                                          Member& member,
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

void SwimProtocol::ArmSuspicionTimerLocked(const std::string& name,
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

void SwimProtocol::OnSuspicionTimeout(std::string name, uint64_t generation) {
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

}  // namespace peergrid
