// The SWIM protocol behind Membership (membership.h): one mutex over the
// member table, the probe round, suspicions, the broadcast queues and this
// node's own advertisement. Private to membership/: callers use Membership.
//
// Its methods live in one file per responsibility, each saying what it
// owns and which threads run it:
//   swim.cc           lifecycle (start, leave, stop), the queries, random
//                     choice of members, message counters
//   member_table.cc   the member table and incarnations: applying news,
//                     SWIM's precedence, building updates and statuses,
//                     listener notifications
//   probe.cc          the probe loop (direct, indirect, out of turn after a
//                     lost connection) and Lifeguard's local health
//   suspicion.cc      Lifeguard suspicion: timers, confirmations, death
//   dissemination.cc  this node's advertisement, the broadcast queues,
//                     piggybacking and gossip rounds
//   push_pull.cc      full-state exchange: anti-entropy, join, reconnect
//
// Threading is Membership's: every method that ends in Locked needs mu_;
// the others take it themselves and never call out while holding it
// (calls out are collected in an Outbox and run after unlocking).
#ifndef PEERGRID_MEMBERSHIP_SWIM_H_
#define PEERGRID_MEMBERSHIP_SWIM_H_

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
#include "membership/membership.h"
#include "membership/scheduler.h"
#include "membership/transport.h"
#include "proto/advertisement.pb.h"
#include "proto/membership.pb.h"

namespace peergrid {

struct MembershipMetrics;

using MemberUpdates = google::protobuf::RepeatedPtrField<v1::MemberUpdate>;

inline bool IsLive(v1::MemberState state) {
  return state == v1::MEMBER_STATE_ALIVE || state == v1::MEMBER_STATE_SUSPECT;
}

// Compares advertisements by their deterministic serialization
// (dissemination.cc says why not by reflection).
bool SameAdvertisement(const v1::Advertisement& a, const v1::Advertisement& b);
// True when two advertisements of a member differ at most in what drifts
// all the time (load average, free memory) and in their sequence: news that
// placement does not wait for.
bool OnlyDriftDiffers(const v1::Advertisement& a, const v1::Advertisement& b);

// The methods of Membership's public header, with the same contracts.
class SwimProtocol {
 public:
  using Listener = Membership::Listener;

  SwimProtocol(MembershipOptions options, std::unique_ptr<Transport> transport,
               std::unique_ptr<Scheduler> scheduler,
               prometheus::Registry& registry);
  ~SwimProtocol();  // Calls Stop().
  SwimProtocol(const SwimProtocol&) = delete;
  SwimProtocol& operator=(const SwimProtocol&) = delete;

  void SetListener(Listener listener);
  absl::Status Start();
  void LeaveAsync(absl::Duration timeout,
                  std::function<void(absl::Status)> done);
  absl::Status Leave(absl::Duration timeout);
  void Stop();
  void SetAdvertisement(v1::Advertisement advertisement);

  std::vector<v1::MemberStatus> Snapshot() const;
  absl::optional<v1::MemberStatus> GetMember(absl::string_view name) const;
  size_t CountMembers(v1::MemberState state) const;
  int LocalHealth() const;
  const std::string& name() const { return options_.name; }

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
  void ApplyGossipLocked(const MemberUpdates& updates,
                         absl::string_view first_hand_name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A push-pull's full state from `peer`.
  void MergeStateLocked(const MemberUpdates& members, absl::string_view peer)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
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
  void PiggybackLocked(absl::string_view about, MemberUpdates* gossip,
                       bool take_pending = true)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FullStateLocked(MemberUpdates* members) const
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

#endif  // PEERGRID_MEMBERSHIP_SWIM_H_
