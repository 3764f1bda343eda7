// Prometheus metrics of one Membership (private to membership).
#ifndef PEERGRID_MEMBERSHIP_METRICS_H_
#define PEERGRID_MEMBERSHIP_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

namespace peergrid {

enum MessageType {
  kPingMessage,
  kAckMessage,
  kIndirectPingMessage,
  kIndirectAckMessage,
  kPushPullRequestMessage,
  kPushPullResponseMessage,
  kNumMessageTypes,
};
enum Direction { kSent, kReceived, kNumDirections };

// Every metric is created up front: labels are bounded and updates are
// lock-free.
struct MembershipMetrics {
  explicit MembershipMetrics(prometheus::Registry& registry);

  prometheus::Gauge* members_by_state[5] = {};  // Indexed by MemberState.
  prometheus::Gauge* local_health = nullptr;
  prometheus::Counter* probes = nullptr;
  prometheus::Counter* probe_failures = nullptr;
  prometheus::Counter* indirect_probes = nullptr;
  prometheus::Counter* hinted_probes = nullptr;
  prometheus::Counter* suspicions_raised = nullptr;
  prometheus::Counter* suspicions_refuted = nullptr;
  prometheus::Counter* members_declared_dead = nullptr;
  // Second-hand word of a higher incarnation, which only a member may set.
  prometheus::Counter* updates_ignored = nullptr;
  prometheus::Counter* push_pulls = nullptr;
  prometheus::Counter* push_pull_failures = nullptr;
  prometheus::Counter* messages[kNumMessageTypes][kNumDirections] = {};
  prometheus::Counter* bytes[kNumMessageTypes][kNumDirections] = {};
};

}  // namespace peergrid

#endif  // PEERGRID_MEMBERSHIP_METRICS_H_
