// Deterministic simulation of many Membership nodes: one simulated clock and
// event queue (SimWorld), an in-memory network that can delay, drop and
// partition messages (SimNetwork), and a cluster of nodes on top.
// Everything runs on the test's thread; nothing sleeps.
#ifndef PEERGRID_TESTS_MEMBERSHIP_SIM_H_
#define PEERGRID_TESTS_MEMBERSHIP_SIM_H_

#include <prometheus/registry.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "membership/membership.h"
#include "membership/scheduler.h"
#include "membership/transport.h"

namespace peergrid {

class SimWorld {
 public:
  explicit SimWorld(uint64_t seed) : rng_(seed) {}

  absl::Time Now() const { return now_; }
  void Schedule(absl::Duration delay, std::function<void()> fn);
  // Runs events until simulated time reaches `until` (or none is left).
  void RunUntil(absl::Time until);
  void RunFor(absl::Duration d) { RunUntil(now_ + d); }
  // Runs until `done()` holds, checking every `step`; false after `limit`.
  bool RunUntilTrue(const std::function<bool()>& done, absl::Duration limit,
                    absl::Duration step = absl::Milliseconds(10));
  std::mt19937_64& rng() { return rng_; }
  uint64_t events_run() const { return events_run_; }

 private:
  struct Event {
    absl::Time due;
    uint64_t sequence;
    std::function<void()> fn;
  };
  static bool Later(const Event& a, const Event& b) {
    return a.due != b.due ? a.due > b.due : a.sequence > b.sequence;
  }

  absl::Time now_ = absl::UnixEpoch() + absl::Hours(24 * 365 * 50);
  std::vector<Event> events_;
  uint64_t next_sequence_ = 0;
  uint64_t events_run_ = 0;
  std::mt19937_64 rng_;
};

// A Scheduler on the world's clock. Shutdown() drops its pending callbacks.
std::unique_ptr<Scheduler> NewSimScheduler(SimWorld& world);

struct SimNetworkOptions {
  absl::Duration latency = absl::Microseconds(500);
  absl::Duration jitter = absl::Microseconds(500);
  double loss = 0.0;  // Probability that any one message is lost.
};

class SimTransport;

class SimNetwork {
 public:
  SimNetwork(SimWorld& world, SimNetworkOptions options)
      : world_(world), options_(options) {}

  // The transport `address` sends with. Messages to an address reach the
  // Membership attached to it.
  std::unique_ptr<Transport> NewTransport(const std::string& address);
  void Attach(const std::string& address, Membership* membership);

  // A down address receives nothing (a crashed machine).
  void SetDown(const std::string& address, bool down);
  // A refusing address answers every call at once with UNAVAILABLE (a
  // machine that is up, with no process on the port).
  void SetRefusing(const std::string& address, bool refusing);
  // Every transport with a connection to `address` hears that it broke (a
  // killed process's sockets close).
  void CloseConnections(const std::string& address);
  // Addresses in different groups cannot talk (group 0 by default).
  void SetGroup(const std::string& address, int group);
  void SetLoss(double loss) { options_.loss = loss; }
  // Extra delay before `address` handles anything it receives (a starved
  // process): requests to it and responses to its own calls.
  void SetProcessingDelay(const std::string& address, absl::Duration delay);

  uint64_t messages_delivered() const { return delivered_; }

 private:
  friend class SimTransport;
  struct Endpoint {
    Membership* membership = nullptr;
    bool down = false;
    bool refusing = false;
    int group = 0;
    absl::Duration delay;
  };
  enum Delivery { kLost, kRefused, kDelivered };
  // What becomes of a message from `from` to `to`, and after how long
  // (`delay`, one way) it arrives or its refusal comes back.
  Delivery Route(const std::string& from, const std::string& to,
                 absl::Duration* delay);

  SimWorld& world_;
  SimNetworkOptions options_;
  absl::flat_hash_map<std::string, Endpoint> endpoints_;
  std::vector<SimTransport*> transports_;  // Each registers itself.
  uint64_t delivered_ = 0;
};

// N nodes "node-I" at "10.0.0.I:7420", joining through the first three.
class SimCluster {
 public:
  SimCluster(int nodes, MembershipOptions base, SimNetworkOptions network,
             uint64_t seed);
  ~SimCluster();

  SimWorld& world() { return world_; }
  SimNetwork& network() { return network_; }
  int size() const { return static_cast<int>(nodes_.size()); }
  Membership& node(int i) { return *nodes_[static_cast<size_t>(i)].membership; }
  const std::string& name(int i) const {
    return nodes_[static_cast<size_t>(i)].name;
  }
  const std::string& address(int i) const {
    return nodes_[static_cast<size_t>(i)].address;
  }
  prometheus::Registry& registry(int i) {
    return *nodes_[static_cast<size_t>(i)].registry;
  }
  bool running(int i) const { return nodes_[static_cast<size_t>(i)].running; }

  // Starts every node (each `stagger` after the previous one).
  void StartAll(absl::Duration stagger = absl::ZeroDuration());
  // kill -9: the node stops, the peers connected to it see their
  // connections close, and its address refuses calls.
  void Crash(int i);
  // The machine loses power: no connection closes and its address swallows
  // every message; peers learn only from probes that go unanswered.
  void PowerOff(int i);
  // A crashed node starts again: same name and address, fresh state.
  void Restart(int i);

  // The state node `observer` has for node `subject` (UNSPECIFIED if none).
  v1::MemberState StateOf(int observer, int subject);
  // True when every running node counts exactly `alive` alive members and
  // no suspect or dead one.
  bool AllSeeAlive(int alive);
  // True when every running node counts exactly `live` alive or suspect
  // members and no dead one (suspicion comes and goes on a lossy network).
  bool AllSeeLive(int live);
  // True when every running node but `subject` has it in `state`.
  bool AllSee(int subject, v1::MemberState state);

 private:
  struct Node {
    std::string name;
    std::string address;
    std::unique_ptr<prometheus::Registry> registry;
    std::unique_ptr<Membership> membership;
    bool running = false;
  };
  void Build(int i);

  SimWorld world_;
  SimNetwork network_;
  MembershipOptions base_;
  uint64_t seed_;
  std::vector<Node> nodes_;
  std::vector<std::unique_ptr<Membership>> crashed_;
};

}  // namespace peergrid

#endif  // PEERGRID_TESTS_MEMBERSHIP_SIM_H_
