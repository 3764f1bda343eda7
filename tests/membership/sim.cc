#include "tests/membership/sim.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"

namespace peergrid {

void SimWorld::Schedule(absl::Duration delay, std::function<void()> fn) {
  events_.push_back({now_ + std::max(delay, absl::ZeroDuration()),
                     next_sequence_++, std::move(fn)});
  std::push_heap(events_.begin(), events_.end(), Later);
}

void SimWorld::RunUntil(absl::Time until) {
  while (!events_.empty() && events_.front().due <= until) {
    std::pop_heap(events_.begin(), events_.end(), Later);
    Event event = std::move(events_.back());
    events_.pop_back();
    now_ = event.due;
    ++events_run_;
    event.fn();
  }
  now_ = std::max(now_, until);
}

bool SimWorld::RunUntilTrue(const std::function<bool()>& done,
                            absl::Duration limit, absl::Duration step) {
  absl::Time deadline = now_ + limit;
  while (now_ < deadline) {
    if (done()) return true;
    RunUntil(std::min(now_ + step, deadline));
  }
  return done();
}

namespace {

class SimScheduler final : public Scheduler {
 public:
  explicit SimScheduler(SimWorld& world) : world_(world) {}
  absl::Time Now() override { return world_.Now(); }
  void RunAfter(absl::Duration delay, std::function<void()> fn) override {
    if (!*alive_) return;
    world_.Schedule(delay, [alive = alive_, fn = std::move(fn)] {
      if (*alive) fn();
    });
  }
  void Shutdown() override { *alive_ = false; }

 private:
  SimWorld& world_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace

std::unique_ptr<Scheduler> NewSimScheduler(SimWorld& world) {
  return std::make_unique<SimScheduler>(world);
}

// Requests and responses are delivered as world events; a call that gets no
// response by its deadline fails with DEADLINE_EXCEEDED, as over gRPC.
class SimTransport final : public Transport {
 public:
  SimTransport(SimNetwork& network, std::string address)
      : network_(network), address_(std::move(address)) {
    network_.transports_.push_back(this);
  }
  ~SimTransport() override {
    auto& all = network_.transports_;
    all.erase(std::remove(all.begin(), all.end(), this), all.end());
  }

  void SendPing(const std::string& to, v1::Ping request, absl::Duration timeout,
                Callback<v1::Ack> done) override {
    Call<v1::Ping, v1::Ack>(to, std::move(request), timeout, std::move(done),
                            &Membership::HandlePing);
  }
  void SendIndirectPing(const std::string& to, v1::IndirectPingRequest request,
                        absl::Duration timeout,
                        Callback<v1::IndirectPingResponse> done) override {
    Call<v1::IndirectPingRequest, v1::IndirectPingResponse>(
        to, std::move(request), timeout, std::move(done),
        &Membership::HandleIndirectPing);
  }
  void PushPull(const std::string& to, v1::PushPullRequest request,
                absl::Duration timeout,
                Callback<v1::PushPullResponse> done) override {
    Call<v1::PushPullRequest, v1::PushPullResponse>(
        to, std::move(request), timeout, std::move(done),
        &Membership::HandlePushPull);
  }
  std::vector<std::string> TakeLostConnections() override {
    return std::exchange(lost_, {});
  }
  void Shutdown() override { *open_ = false; }

  // The peer at `address` closed its connections (its process was killed).
  void ConnectionClosedBy(const std::string& address) {
    if (connected_.erase(address) > 0) lost_.push_back(address);
  }

 private:
  template <typename Request, typename Response>
  using Handler = void (Membership::*)(const Request&, Callback<Response>);

  template <typename Request, typename Response>
  void Call(const std::string& to, Request request, absl::Duration timeout,
            Callback<Response> done, Handler<Request, Response> handler) {
    if (!*open_) {
      done(absl::UnavailableError("transport shut down"));
      return;
    }
    struct Pending {
      bool finished = false;
      Callback<Response> done;
    };
    auto pending = std::make_shared<Pending>();
    pending->done = std::move(done);
    auto open = open_;
    auto finish = [this, to, pending, open](absl::StatusOr<Response> result) {
      if (pending->finished || !*open) return;
      pending->finished = true;
      // An answer means a connection, as with gRPC's cached channels.
      if (result.ok()) connected_.insert(to);
      pending->done(std::move(result));
    };
    SimWorld& world = network_.world_;
    world.Schedule(timeout, [finish] {
      finish(absl::DeadlineExceededError("simulated deadline"));
    });
    absl::Duration delay;
    switch (network_.Route(address_, to, &delay)) {
      case SimNetwork::kLost:
        return;
      case SimNetwork::kRefused:
        world.Schedule(2 * delay, [finish] {
          finish(absl::UnavailableError("simulated connection refused"));
        });
        return;
      case SimNetwork::kDelivered:
        break;
    }
    SimNetwork* network = &network_;
    world.Schedule(delay, [network, handler, request = std::move(request),
                           finish, to, from = address_] {
      auto it = network->endpoints_.find(to);
      if (it == network->endpoints_.end() || it->second.down ||
          it->second.membership == nullptr) {
        return;
      }
      ++network->delivered_;
      (it->second.membership->*handler)(
          request, [network, finish, to, from](absl::StatusOr<Response> r) {
            absl::Duration back;
            // A caller that has since died refuses nothing: lost.
            if (network->Route(to, from, &back) != SimNetwork::kDelivered) {
              return;
            }
            network->world_.Schedule(
                back,
                [finish, r = std::move(r)]() mutable { finish(std::move(r)); });
          });
    });
  }

  SimNetwork& network_;
  const std::string address_;
  std::shared_ptr<bool> open_ = std::make_shared<bool>(true);
  absl::flat_hash_set<std::string> connected_;  // Peers that answered.
  std::vector<std::string> lost_;  // Since the last TakeLostConnections().
};

std::unique_ptr<Transport> SimNetwork::NewTransport(
    const std::string& address) {
  endpoints_.try_emplace(address);
  return std::make_unique<SimTransport>(*this, address);
}

void SimNetwork::Attach(const std::string& address, Membership* membership) {
  endpoints_[address].membership = membership;
}

void SimNetwork::SetDown(const std::string& address, bool down) {
  endpoints_[address].down = down;
}

void SimNetwork::SetRefusing(const std::string& address, bool refusing) {
  endpoints_[address].refusing = refusing;
}

void SimNetwork::CloseConnections(const std::string& address) {
  for (SimTransport* transport : transports_) {
    transport->ConnectionClosedBy(address);
  }
}

void SimNetwork::SetGroup(const std::string& address, int group) {
  endpoints_[address].group = group;
}

void SimNetwork::SetProcessingDelay(const std::string& address,
                                    absl::Duration delay) {
  endpoints_[address].delay = delay;
}

SimNetwork::Delivery SimNetwork::Route(const std::string& from,
                                       const std::string& to,
                                       absl::Duration* delay) {
  auto source = endpoints_.find(from);
  auto target = endpoints_.find(to);
  if (source == endpoints_.end() || target == endpoints_.end() ||
      target->second.down || source->second.group != target->second.group) {
    return kLost;
  }
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  if (target->second.refusing) {
    *delay = options_.latency + options_.jitter * unit(world_.rng());
    return kRefused;
  }
  if (options_.loss > 0 && unit(world_.rng()) < options_.loss) return kLost;
  *delay = options_.latency + options_.jitter * unit(world_.rng()) +
           target->second.delay;
  return kDelivered;
}

SimCluster::SimCluster(int nodes, MembershipOptions base,
                       SimNetworkOptions network, uint64_t seed)
    : world_(seed),
      network_(world_, network),
      base_(std::move(base)),
      seed_(seed) {
  nodes_.resize(static_cast<size_t>(nodes));
  for (int i = 0; i < nodes; ++i) {
    nodes_[static_cast<size_t>(i)].name = absl::StrFormat("node-%d", i);
    nodes_[static_cast<size_t>(i)].address =
        absl::StrFormat("10.0.%d.%d:7420", i / 250, i % 250 + 1);
  }
  for (int i = 0; i < nodes; ++i) Build(i);
}

void SimCluster::Build(int i) {
  Node& node = nodes_[static_cast<size_t>(i)];
  MembershipOptions options = base_;
  options.name = node.name;
  options.advertise_address = node.address;
  options.seeds.clear();
  for (int s = 0; s < std::min(3, size()); ++s) {
    if (s != i) options.seeds.push_back(nodes_[static_cast<size_t>(s)].address);
  }
  options.random_seed =
      seed_ * 100003 + static_cast<uint64_t>(i) + 1 + crashed_.size() * 7919;
  node.registry = std::make_unique<prometheus::Registry>();
  node.membership = std::make_unique<Membership>(
      std::move(options), network_.NewTransport(node.address),
      NewSimScheduler(world_), *node.registry);
  network_.Attach(node.address, node.membership.get());
  v1::Advertisement ad;
  ad.set_machine_cores(8);
  ad.set_cores_donated(8);
  ad.set_cores_free(8);
  node.membership->SetAdvertisement(ad);
}

void SimCluster::Restart(int i) {
  Node& node = nodes_[static_cast<size_t>(i)];
  crashed_.push_back(std::move(node.membership));
  Build(i);
  network_.SetDown(node.address, false);
  network_.SetRefusing(node.address, false);
  node.running = node.membership->Start().ok();
}

SimCluster::~SimCluster() {
  for (Node& node : nodes_) node.membership->Stop();
}

void SimCluster::StartAll(absl::Duration stagger) {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    Node& node = nodes_[i];
    world_.Schedule(stagger * static_cast<double>(i), [&node] {
      absl::Status status = node.membership->Start();
      node.running = status.ok();
    });
  }
  world_.RunFor(absl::ZeroDuration());
}

void SimCluster::Crash(int i) {
  Node& node = nodes_[static_cast<size_t>(i)];
  network_.SetRefusing(node.address, true);
  network_.CloseConnections(node.address);
  node.membership->Stop();
  node.running = false;
}

void SimCluster::PowerOff(int i) {
  Node& node = nodes_[static_cast<size_t>(i)];
  network_.SetDown(node.address, true);
  node.membership->Stop();
  node.running = false;
}

v1::MemberState SimCluster::StateOf(int observer, int subject) {
  absl::optional<v1::MemberStatus> status =
      node(observer).GetMember(name(subject));
  return status.has_value() ? status->state() : v1::MEMBER_STATE_UNSPECIFIED;
}

bool SimCluster::AllSeeAlive(int alive) {
  for (int i = 0; i < size(); ++i) {
    if (!running(i)) continue;
    if (node(i).CountMembers(v1::MEMBER_STATE_ALIVE) !=
            static_cast<size_t>(alive) ||
        node(i).CountMembers(v1::MEMBER_STATE_SUSPECT) != 0) {
      return false;
    }
  }
  return true;
}

bool SimCluster::AllSeeLive(int live) {
  for (int i = 0; i < size(); ++i) {
    if (!running(i)) continue;
    if (node(i).CountMembers(v1::MEMBER_STATE_ALIVE) +
                node(i).CountMembers(v1::MEMBER_STATE_SUSPECT) !=
            static_cast<size_t>(live) ||
        node(i).CountMembers(v1::MEMBER_STATE_DEAD) != 0) {
      return false;
    }
  }
  return true;
}

bool SimCluster::AllSee(int subject, v1::MemberState state) {
  for (int i = 0; i < size(); ++i) {
    if (i != subject && running(i) && StateOf(i, subject) != state) {
      return false;
    }
  }
  return true;
}

}  // namespace peergrid
