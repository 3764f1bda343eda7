// Gossip membership: who is in the grid, in which state, advertising what.
//
// SWIM failure detection with Lifeguard's refinements (local health,
// suspicion timeouts that shrink with independent confirmations, buddy
// probes), piggybacked dissemination, and periodic push-pull anti-entropy,
// which is also how a node joins. docs/membership.md describes the protocol
// and the tunables.
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

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "membership/broadcast_queue.h"
#include "membership/scheduler.h"
#include "membership/transport.h"
#include "proto/jobs.pb.h"
#include "proto/membership.pb.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace peergrid {

struct MembershipMetrics;

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
  const std::string& name() const { return options_.name; }

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
  struct Member {
    v1::Advertisement advertisement;
    v1::MemberState state = v1::MEMBER_STATE_ALIVE;
    uint64_t incarnation = 0;
    absl::Time state_since;
    absl::Time last_heard;
    // When this node took in `advertisement` (its current sequence).
    absl::Time advertisement_received;
    // Lifeguard suspicion; meaningful while state is SUSPECT.
    absl::Time suspect_since;
    uint64_t suspicion_generation = 0;
    int suspicion_k = 0;
    absl::Duration suspicion_min;
    absl::Duration suspicion_max;
    absl::flat_hash_set<std::string> confirmers;
    // When a lost connection last made us probe it out of turn.
    absl::Time hinted_probe_at = absl::InfinitePast();
  };
  struct Probe;
  // Calls to make once the lock is released.
  class Outbox {
   public:
    void Add(std::function<void()> fn) { calls_.push_back(std::move(fn)); }
    void Run();

   private:
    std::vector<std::function<void()>> calls_;
  };

  // Timers.
  void ProbeTick();
  void GossipTick();
  void PushPullTick();
  void ReconnectTick();
  void JoinAttempt(size_t index);
  void FollowUpPushPull(int remaining);
  void PublishAdvertisement();
  void OnSuspicionTimeout(std::string name, uint64_t generation);
  void PushSelf();
  void SchedulePushSelfLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Completions.
  void OnDirectAck(std::shared_ptr<Probe> probe, absl::StatusOr<v1::Ack> ack);
  void OnIndirectResult(std::shared_ptr<Probe> probe,
                        absl::StatusOr<v1::IndirectPingResponse> response);
  void OnGossipAck(const v1::Ack& ack);
  // Probes, out of turn, the live members at `addresses` (the transport's
  // lost connections).
  void ProbeLostConnectionsLocked(const std::vector<std::string>& addresses,
                                  Outbox& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `in_turn`: a probe of the round-robin, whose end schedules the next
  // one; otherwise an extra probe, prompted by a lost connection.
  void StartProbeLocked(const std::string& target, bool in_turn, Outbox& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishProbeLocked(Probe& probe, bool acked)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartPushPull(const std::string& address, bool join, Outbox& out,
                     std::function<void(bool ok)> done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PublishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends pending updates (and this node's own entry first if `with_self`)
  // to `fanout` random members.
  void SendGossipLocked(int fanout, bool with_self, Outbox& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // State changes. None of them calls out.
  void ApplyGossipLocked(
      const google::protobuf::RepeatedPtrField<v1::MemberUpdate>& updates,
      absl::string_view first_hand_name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A push-pull's full state from `peer`.
  void MergeStateLocked(
      const google::protobuf::RepeatedPtrField<v1::MemberUpdate>& members,
      absl::string_view peer) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `first_hand`: the update is the sender's own entry in a direct exchange.
  // `rebroadcast`: news it brings is queued for gossip.
  void ApplyUpdateLocked(const v1::MemberUpdate& update, bool first_hand,
                         bool rebroadcast = true)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyNewsAboutSelfLocked(const v1::MemberUpdate& update)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetStateLocked(const std::string& name, Member& member,
                      v1::MemberState state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartSuspicionLocked(const std::string& name, Member& member,
                            const std::string& from)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ConfirmSuspicionLocked(const std::string& name, Member& member,
                              const v1::MemberUpdate& update)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ArmSuspicionTimerLocked(const std::string& name, Member& member)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HeardFromLocked(absl::string_view name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AdjustHealthLocked(int delta) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ForgetLocked(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Building messages.
  v1::MemberUpdate UpdateForLocked(const std::string& name,
                                   const Member& member,
                                   const std::string& from) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::MemberUpdate SelfUpdateLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `quiet`: into quiet_broadcasts_ rather than broadcasts_.
  void BroadcastLocked(v1::MemberUpdate update, bool quiet = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Schedules a GossipTick now unless one is due, or there is no news or
  // no live peer to send it to.
  void ArmGossipLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Fills `gossip` with pending updates, the one about `about` first when it
  // is suspect or dead in our view, so that it can refute at once.
  void PiggybackLocked(
      absl::string_view about,
      google::protobuf::RepeatedPtrField<v1::MemberUpdate>* gossip,
      bool take_pending = true) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FullStateLocked(
      google::protobuf::RepeatedPtrField<v1::MemberUpdate>* members) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::MemberStatus StatusForLocked(const std::string& name,
                                   const Member& member) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::MemberStatus SelfStatusLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NotifyLocked(v1::MemberStatus status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DeliverNotifications();

  // Choosing members.
  size_t LiveCountLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int RetransmitLimitLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Duration ScaledLocked(absl::Duration d) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Empty when there is no live member.
  std::string NextProbeTargetLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<std::string> RandomLiveMembersLocked(size_t count,
                                                   absl::string_view exclude)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t RandomLocked(uint64_t bound) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void CountMessage(int type, int direction, size_t bytes) const;

  const MembershipOptions options_;
  const std::unique_ptr<Transport> transport_;
  const std::unique_ptr<Scheduler> scheduler_;
  const std::unique_ptr<MembershipMetrics> metrics_;

  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool leaving_ ABSL_GUARDED_BY(mu_) = false;
  bool joined_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::string> join_order_ ABSL_GUARDED_BY(mu_);  // Seeds.
  Listener listener_ ABSL_GUARDED_BY(mu_);

  v1::Advertisement self_advertisement_ ABSL_GUARDED_BY(mu_);
  uint64_t self_incarnation_ ABSL_GUARDED_BY(mu_) = 0;
  absl::optional<v1::Advertisement> pending_advertisement_ ABSL_GUARDED_BY(mu_);
  bool publish_scheduled_ ABSL_GUARDED_BY(mu_) = false;
  bool push_self_scheduled_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_publish_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();

  absl::flat_hash_map<std::string, Member> members_ ABSL_GUARDED_BY(mu_);
  size_t state_counts_[5] ABSL_GUARDED_BY(mu_) = {};
  // Names of all members but self, for random choice, and the probe order.
  std::vector<std::string> names_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, size_t> name_index_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> probe_order_ ABSL_GUARDED_BY(mu_);
  size_t probe_next_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t probe_sequence_ ABSL_GUARDED_BY(mu_) = 0;

  BroadcastQueue broadcasts_ ABSL_GUARDED_BY(mu_);
  // A GossipTick is due; it stays armed only while broadcasts_ has news
  // and a live peer exists.
  bool gossip_armed_ ABSL_GUARDED_BY(mu_) = false;
  // Advertisement news that changes only what drifts all the time (load
  // average, free memory): it rides on messages sent anyway (probes, acks,
  // gossip about other news) but is never the reason to send one, so that a
  // node refreshing those figures every few seconds keeps an idle grid quiet.
  BroadcastQueue quiet_broadcasts_ ABSL_GUARDED_BY(mu_);
  int health_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t rng_state_ ABSL_GUARDED_BY(mu_) = 0;

  std::vector<v1::MemberStatus> notifications_ ABSL_GUARDED_BY(mu_);
  bool notify_scheduled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace peergrid

#endif  // PEERGRID_MEMBERSHIP_MEMBERSHIP_H_
