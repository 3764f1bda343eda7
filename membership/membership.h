// Gossip membership: who is in the grid, in which state, advertising what.
// This is the part's public header; everything else under membership/ is
// its implementation, except the seams a caller provides (transport.h,
// scheduler.h) and the gRPC service that feeds it (membership_service.h).
//
// SWIM failure detection with Lifeguard's refinements (local health,
// suspicion timeouts that shrink with independent confirmations, buddy
// probes), piggybacked dissemination, and periodic push-pull anti-entropy,
// which is also how a node joins. docs/membership.md describes the protocol
// and the tunables. Membership knows nothing of jobs: others read its table
// through Snapshot() or a Listener and feed it this node's advertisement.
//
// Ownership: a Membership owns its Transport and Scheduler and borrows the
// prometheus Registry, which must outlive it.
//
// Threading: every public method is thread-safe. Timers run on the
// Scheduler's thread; transport completions and the Handle* methods run on
// whatever thread calls them (gRPC's callback threads in production) and
// never block: all state sits behind one mutex that is never held while
// calling out. Stop() and Leave() must not be called from a listener or
// from a transport or scheduler thread.
#ifndef PEERGRID_MEMBERSHIP_MEMBERSHIP_H_
#define PEERGRID_MEMBERSHIP_MEMBERSHIP_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "membership/scheduler.h"
#include "membership/transport.h"
#include "proto/advertisement.pb.h"
#include "proto/membership.pb.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace peergrid {

class SwimProtocol;

// Defaults are for a LAN of up to a few hundred nodes: at 64 nodes a death
// is known by all in about 3 to 4 s and an advertisement change in about
// 0.3 s, for two probes a second per node (docs/membership.md explains each
// value).
struct MembershipOptions {
  std::string name;                // Unique in the grid.
  std::string advertise_address;   // HOST:PORT peers dial; not a wildcard.
  std::vector<std::string> seeds;  // HOST:PORT of nodes to join through.

  // One probe per (probe_interval x local health). A direct ping waits
  // probe_timeout; the k indirect pings get the rest of the interval.
  absl::Duration probe_interval = absl::Seconds(1);
  absl::Duration probe_timeout = absl::Milliseconds(500);
  int indirect_checks = 3;
  // Suspicion lasts between mult x max(1, log10 N) x probe_interval and
  // max_mult times that, shorter as more members confirm it (mult - 2 of
  // them bring it to the minimum: with mult 2 it is the minimum at once).
  int suspicion_multiplier = 2;
  int suspicion_max_multiplier = 6;
  // Each update is sent about retransmit_multiplier x log10(N + 1) times.
  int retransmit_multiplier = 6;
  // Pending updates go to gossip_nodes random members every gossip_interval.
  absl::Duration gossip_interval = absl::Milliseconds(50);
  int gossip_nodes = 3;
  // Full-state exchange with a random member (scaled up above 32 members).
  absl::Duration push_pull_interval = absl::Seconds(15);
  // Dead and left members are forgotten after this long.
  absl::Duration dead_retention = absl::Seconds(60);
  // A random dead member or an unseen seed is tried this often (heals
  // partitions); seeds are retried this often until the first join.
  absl::Duration reconnect_interval = absl::Seconds(5);
  absl::Duration join_retry_interval = absl::Seconds(1);
  // SetAdvertisement() publishes at most once per this interval.
  absl::Duration advertisement_min_interval = absl::Milliseconds(100);
  // Lifeguard local health score ranges over [0, awareness_max]; 0 turns
  // the local health multiplier off.
  int awareness_max = 8;
  // Piggybacked updates per message, in serialized bytes.
  size_t max_gossip_bytes = 8 * 1024;
  absl::Duration push_pull_timeout = absl::Seconds(1);
  uint64_t random_seed = 0;  // 0: seeded from the OS.
};

// Checks names, addresses and that every tunable is in range.
absl::Status ValidateMembershipOptions(const MembershipOptions& options);

class Membership {
 public:
  // Called once per change of a member's state (a new member included;
  // this node only when it leaves), not for advertisement changes, on the
  // scheduler's thread, with no lock held. It may call Snapshot() and other
  // const methods; it must not block.
  using Listener = std::function<void(const v1::MemberStatus& member)>;

  Membership(MembershipOptions options, std::unique_ptr<Transport> transport,
             std::unique_ptr<Scheduler> scheduler,
             prometheus::Registry& registry);
  ~Membership();  // Calls Stop().
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  // Set before Start(); replaces any previous listener.
  void SetListener(Listener listener);

  // Validates the options and starts probing and joining (in the
  // background, retrying the seeds until one answers). InvalidArgument for
  // bad options, FailedPrecondition when called twice.
  absl::Status Start();

  // Announces that this node leaves: peers mark it `left` at once. Calls
  // `done` once, on a transport thread (or inline): OK when a peer
  // acknowledged or there is no peer to tell, DEADLINE_EXCEEDED when none
  // answered within `timeout`, FailedPrecondition when not running. The
  // node stops probing but keeps answering and gossiping until Stop().
  void LeaveAsync(absl::Duration timeout,
                  std::function<void(absl::Status)> done);
  // Blocking form of LeaveAsync.
  absl::Status Leave(absl::Duration timeout);

  // Stops timers and cancels calls in flight; incoming messages are then
  // answered UNAVAILABLE. Idempotent. Stop the gRPC server that serves
  // MembershipService before destroying this object.
  void Stop();

  // Replaces this node's advertisement. `name` and `grpc_address` are
  // forced to the options', `sequence` and `published_unix_ms` are
  // assigned here (at publication); an empty `version` or zero
  // `start_time_unix_ms` is filled in (this build, the time this object
  // was made). Changes are published at most once per
  // advertisement_min_interval (the last one wins) and spread by gossip.
  void SetAdvertisement(v1::Advertisement advertisement);

  // Every known member, this node first (last_heard_ms_ago 0), then by name.
  std::vector<v1::MemberStatus> Snapshot() const;
  absl::optional<v1::MemberStatus> GetMember(absl::string_view name) const;
  // Members (self included) in `state`, without copying the table.
  size_t CountMembers(v1::MemberState state) const;
  // Lifeguard's local health score: 0 is healthy.
  int LocalHealth() const;
  const std::string& name() const;

  // Incoming messages, called by MembershipService (or a test transport).
  // Each calls `respond` exactly once, possibly inline, possibly later on a
  // transport thread; never with a lock held.
  void HandlePing(const v1::Ping& request,
                  Transport::Callback<v1::Ack> respond);
  void HandleIndirectPing(
      const v1::IndirectPingRequest& request,
      Transport::Callback<v1::IndirectPingResponse> respond);
  void HandlePushPull(const v1::PushPullRequest& request,
                      Transport::Callback<v1::PushPullResponse> respond);

 private:
  const std::unique_ptr<SwimProtocol> swim_;
};

}  // namespace peergrid

#endif  // PEERGRID_MEMBERSHIP_MEMBERSHIP_H_
