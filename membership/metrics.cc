#include "membership/metrics.h"

#include <string>

namespace peergrid {
namespace {

prometheus::Counter* NewCounter(prometheus::Registry& registry,
                                const std::string& name,
                                const std::string& help,
                                const prometheus::Labels& labels = {}) {
  return &prometheus::BuildCounter()
              .Name(name)
              .Help(help)
              .Register(registry)
              .Add(labels);
}

}  // namespace

MembershipMetrics::MembershipMetrics(prometheus::Registry& registry) {
  auto& members = prometheus::BuildGauge()
                      .Name("peergrid_members")
                      .Help(
                          "Members of the grid (this node included) by "
                          "state, as this node sees them.")
                      .Register(registry);
  const char* state_names[5] = {"unspecified", "alive", "suspect", "dead",
                                "left"};
  for (int state = 1; state < 5; ++state) {
    members_by_state[state] = &members.Add({{"state", state_names[state]}});
  }
  local_health = &prometheus::BuildGauge()
                      .Name("peergrid_gossip_local_health")
                      .Help(
                          "Lifeguard local health score: 0 is healthy; "
                          "probes are slowed by (score + 1).")
                      .Register(registry)
                      .Add({});
  probes = NewCounter(registry, "peergrid_gossip_probes_total",
                      "Failure-detector probes started.");
  probe_failures = NewCounter(registry, "peergrid_gossip_probe_failures_total",
                              "Probes answered neither directly nor through "
                              "any indirect ping.");
  indirect_probes =
      NewCounter(registry, "peergrid_gossip_indirect_probes_total",
                 "Indirect pings sent after a missed direct "
                 "ack.");
  hinted_probes =
      NewCounter(registry, "peergrid_gossip_hinted_probes_total",
                 "Probes sent out of turn because the connection to the "
                 "member broke (of peergrid_gossip_probes_total).");
  const std::string suspicions = "peergrid_gossip_suspicions_total";
  const std::string suspicions_help =
      "Suspicions raised by this node's probes, and suspicions of this node "
      "that it refuted.";
  suspicions_raised =
      NewCounter(registry, suspicions, suspicions_help, {{"event", "raised"}});
  suspicions_refuted =
      NewCounter(registry, suspicions, suspicions_help, {{"event", "refuted"}});
  members_declared_dead =
      NewCounter(registry, "peergrid_gossip_members_declared_dead_total",
                 "Suspicions that timed out here and declared a member dead.");
  updates_ignored = NewCounter(
      registry, "peergrid_gossip_updates_ignored_total",
      "News ignored: second-hand word of a higher incarnation than known "
      "(only the member itself raises it), or a name or address over 255 "
      "bytes.");
  const std::string push_pull = "peergrid_gossip_push_pulls_total";
  const std::string push_pull_help =
      "Full-state exchanges started by this node, by result.";
  push_pulls =
      NewCounter(registry, push_pull, push_pull_help, {{"result", "ok"}});
  push_pull_failures =
      NewCounter(registry, push_pull, push_pull_help, {{"result", "failed"}});
  const char* types[kNumMessageTypes] = {"ping",
                                         "ack",
                                         "indirect_ping",
                                         "indirect_ack",
                                         "push_pull_request",
                                         "push_pull_response"};
  const char* directions[kNumDirections] = {"sent", "received"};
  for (int t = 0; t < kNumMessageTypes; ++t) {
    for (int d = 0; d < kNumDirections; ++d) {
      prometheus::Labels labels = {{"type", types[t]},
                                   {"direction", directions[d]}};
      messages[t][d] =
          NewCounter(registry, "peergrid_gossip_messages_total",
                     "Gossip messages by type and direction.", labels);
      bytes[t][d] = NewCounter(registry, "peergrid_gossip_bytes_total",
                               "Serialized gossip bytes by type and "
                               "direction.",
                               labels);
    }
  }
}

}  // namespace peergrid
