// Deterministic simulations of the membership protocol: many nodes, one
// simulated clock, an in-memory network. No sleeps; each test takes
// milliseconds to a few seconds of real time.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "membership/membership.h"
#include "tests/membership/sim.h"

namespace peergrid {
namespace {

const uint64_t kSeed = [] {
  const char* seed = std::getenv("SIM_SEED");
  return seed != nullptr ? std::strtoull(seed, nullptr, 10) : 42;
}();

MembershipOptions Defaults() { return MembershipOptions{}; }

double Metric(prometheus::Registry& registry, const std::string& name,
              const std::string& label_value) {
  double total = 0;
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& metric : family.metric) {
      bool match = label_value.empty();
      for (const auto& label : metric.label) {
        if (label.value == label_value) match = true;
      }
      if (match) total += metric.counter.value + metric.gauge.value;
    }
  }
  return total;
}

double Periods(absl::Duration d) {
  return absl::FDivDuration(d, Defaults().probe_interval);
}

// Starts `cluster` and runs it until every node sees every node alive.
// Returns the protocol periods that took, or -1.
double Converge(SimCluster& cluster, absl::Duration limit) {
  absl::Time start = cluster.world().Now();
  cluster.StartAll();
  if (std::getenv("SIM_VERBOSE") != nullptr) {
    cluster.world().RunFor(absl::Seconds(2));
    for (int i = 0; i < cluster.size(); ++i) {
      std::printf("%d:%zu/%zu ", i,
                  cluster.node(i).CountMembers(v1::MEMBER_STATE_ALIVE),
                  cluster.node(i).CountMembers(v1::MEMBER_STATE_SUSPECT));
    }
  }
  if (!cluster.world().RunUntilTrue(
          [&] { return cluster.AllSeeAlive(cluster.size()); }, limit)) {
    return -1;
  }
  return Periods(cluster.world().Now() - start);
}

// O(log N) periods, as SWIM's dissemination promises.
double LogBound(int n, double factor) {
  return factor * std::ceil(std::log2(static_cast<double>(n)));
}

TEST(MembershipSimTest, JoinOfFiveConverges) {
  SimCluster cluster(5, Defaults(), {}, kSeed);
  std::set<std::string> heard;  // Through the listener of node-0.
  cluster.node(0).SetListener([&](const v1::MemberStatus& member) {
    if (member.state() == v1::MEMBER_STATE_ALIVE) {
      heard.insert(member.advertisement().name());
    }
  });
  double periods = Converge(cluster, absl::Seconds(10));
  ASSERT_GE(periods, 0) << "5 nodes did not converge";
  EXPECT_EQ(heard.size(), 4u);
  std::printf("5 nodes converged in %.1f periods\n", periods);
  EXPECT_LE(periods, LogBound(5, 2));
  // Each node's snapshot lists all five, itself first.
  std::vector<v1::MemberStatus> snapshot = cluster.node(3).Snapshot();
  ASSERT_EQ(snapshot.size(), 5u);
  EXPECT_EQ(snapshot[0].advertisement().name(), "node-3");
  EXPECT_EQ(snapshot[0].last_heard_ms_ago(), 0);
  for (const v1::MemberStatus& member : snapshot) {
    EXPECT_EQ(member.state(), v1::MEMBER_STATE_ALIVE);
    EXPECT_EQ(member.advertisement().cores_donated(), 8);
    EXPECT_FALSE(member.advertisement().grpc_address().empty());
    EXPECT_FALSE(member.advertisement().version().empty());
    EXPECT_GT(member.advertisement().start_time_unix_ms(), 0);
  }
}

TEST(MembershipSimTest, JoinOfFiveHundredConvergesInLogPeriods) {
  SimCluster cluster(500, Defaults(), {}, kSeed);
  double periods = Converge(cluster, absl::Seconds(60));
  ASSERT_GE(periods, 0) << "500 nodes did not converge";
  double bytes = 0;
  for (int i = 0; i < cluster.size(); ++i) {
    bytes += Metric(cluster.registry(i), "peergrid_gossip_bytes_total", "sent");
  }
  std::printf("500 nodes converged in %.1f periods (%llu events, %.0f MB)\n",
              periods,
              static_cast<unsigned long long>(cluster.world().events_run()),
              bytes / 1e6);
  EXPECT_LE(periods, LogBound(500, 2));
}

double SumOverNodes(SimCluster& cluster, const std::string& metric) {
  double total = 0;
  for (int i = 0; i < cluster.size(); ++i) {
    total += Metric(cluster.registry(i), metric, "");
  }
  return total;
}

// Runs `cluster` until all but `victim` see it dead; the time that took.
absl::Duration TimeUntilAllSeeDead(SimCluster& cluster, int victim) {
  absl::Time failed = cluster.world().Now();
  if (!cluster.world().RunUntilTrue(
          [&] { return cluster.AllSee(victim, v1::MEMBER_STATE_DEAD); },
          absl::Seconds(30))) {
    return absl::InfiniteDuration();
  }
  return cluster.world().Now() - failed;
}

void ExpectOnlyDead(SimCluster& cluster, int victim) {
  for (int i = 0; i < cluster.size(); ++i) {
    if (i == victim) continue;
    EXPECT_EQ(cluster.node(i).CountMembers(v1::MEMBER_STATE_ALIVE),
              static_cast<size_t>(cluster.size() - 1));
    EXPECT_EQ(cluster.node(i).CountMembers(v1::MEMBER_STATE_DEAD), 1u);
  }
}

TEST(MembershipSimTest, KilledNodeIsDeclaredDeadByAllOthersWithin5s) {
  SimCluster cluster(64, Defaults(), {}, kSeed);
  ASSERT_GE(Converge(cluster, absl::Seconds(20)), 0);
  // A grid that has run a while: members have probed, so connected to,
  // one another.
  cluster.world().RunFor(absl::Seconds(30));
  cluster.Crash(17);
  absl::Duration took = TimeUntilAllSeeDead(cluster, 17);
  std::printf("64 nodes: kill known by all in %s\n",
              absl::FormatDuration(took).c_str());
  EXPECT_LT(took, absl::Seconds(5));  // PRODUCT.md section 8.
  ExpectOnlyDead(cluster, 17);
}

TEST(MembershipSimTest, LostConnectionPromptsAProbeOutOfTurn) {
  // Slow probing, so that the round-robin alone would take a while.
  MembershipOptions options = Defaults();
  options.probe_interval = absl::Seconds(5);
  options.probe_timeout = absl::Seconds(2);
  SimCluster cluster(8, options, {}, kSeed);
  ASSERT_GE(Converge(cluster, absl::Seconds(60)), 0);
  // Long enough for everyone to have probed, so connected to, everyone.
  cluster.world().RunFor(8 * options.probe_interval);
  const std::string hinted = "peergrid_gossip_hinted_probes_total";
  ASSERT_EQ(SumOverNodes(cluster, hinted), 0);
  cluster.Crash(7);
  // The first probe tick after the kill, on any node, reads the lost
  // connection and probes the victim before its turn in the round.
  absl::Time killed = cluster.world().Now();
  ASSERT_TRUE(cluster.world().RunUntilTrue(
      [&] {
        for (int i = 0; i < 7; ++i) {
          if (cluster.StateOf(i, 7) != v1::MEMBER_STATE_ALIVE) return true;
        }
        return false;
      },
      options.probe_interval));
  std::printf("8 nodes probing every 5 s: kill suspected in %s\n",
              absl::FormatDuration(cluster.world().Now() - killed).c_str());
  EXPECT_GE(SumOverNodes(cluster, hinted), 1);
  // No probe of a live member was prompted: only the victim's connections
  // closed.
  EXPECT_LE(SumOverNodes(cluster, hinted), 7);
  EXPECT_NE(TimeUntilAllSeeDead(cluster, 7), absl::InfiniteDuration());
  ExpectOnlyDead(cluster, 7);
}

TEST(MembershipSimTest, PoweredOffNodeIsDeclaredDeadByProbesAlone) {
  SimCluster cluster(64, Defaults(), {}, kSeed);
  ASSERT_GE(Converge(cluster, absl::Seconds(20)), 0);
  cluster.world().RunFor(absl::Seconds(30));
  cluster.PowerOff(17);
  absl::Duration took = TimeUntilAllSeeDead(cluster, 17);
  std::printf("64 nodes: power-off known by all in %s\n",
              absl::FormatDuration(took).c_str());
  EXPECT_EQ(SumOverNodes(cluster, "peergrid_gossip_hinted_probes_total"), 0);
  // Someone probes it within a couple of periods (each period, one of the
  // others does on average); direct and indirect probes take one more;
  // then the suspicion timeout and the news of the death.
  const MembershipOptions o = Defaults();
  absl::Duration bound =
      3 * o.probe_interval +
      o.probe_interval * o.suspicion_multiplier * std::log10(64.0) +
      absl::Seconds(1);
  EXPECT_LT(took, bound);
  ExpectOnlyDead(cluster, 17);
}

TEST(MembershipSimTest, RestartedNodeRejoinsWithItsNewAdvertisement) {
  SimCluster cluster(16, Defaults(), {}, kSeed);
  ASSERT_GE(Converge(cluster, absl::Seconds(10)), 0);
  cluster.Crash(6);
  ASSERT_TRUE(cluster.world().RunUntilTrue(
      [&] { return cluster.AllSee(6, v1::MEMBER_STATE_DEAD); },
      absl::Seconds(10)));
  cluster.world().RunFor(absl::Seconds(1));
  cluster.Restart(6);
  v1::Advertisement ad;
  ad.set_cores_donated(8);
  ad.set_cores_free(2);
  cluster.node(6).SetAdvertisement(ad);
  ASSERT_TRUE(cluster.world().RunUntilTrue(
      [&] {
        for (int i = 0; i < cluster.size(); ++i) {
          auto member = cluster.node(i).GetMember("node-6");
          if (!member || member->state() != v1::MEMBER_STATE_ALIVE ||
              member->advertisement().cores_free() != 2) {
            return false;
          }
        }
        return cluster.AllSeeAlive(16);
      },
      absl::Seconds(5)));
}

TEST(MembershipSimTest, LeaveIsSeenAtOnce) {
  SimCluster cluster(32, Defaults(), {}, kSeed);
  ASSERT_GE(Converge(cluster, absl::Seconds(20)), 0);
  absl::Time start = cluster.world().Now();
  absl::optional<absl::Status> left;
  cluster.node(5).LeaveAsync(absl::Seconds(1),
                             [&](absl::Status status) { left = status; });
  ASSERT_TRUE(cluster.world().RunUntilTrue(
      [&] { return cluster.AllSee(5, v1::MEMBER_STATE_LEFT); },
      absl::Seconds(5), absl::Milliseconds(1)));
  absl::Duration took = cluster.world().Now() - start;
  std::printf("32 nodes: leave known by all in %s\n",
              absl::FormatDuration(took).c_str());
  // Well under the shortest suspicion timeout (4 x 1.5 x 200 ms).
  EXPECT_LT(took, absl::Milliseconds(500));
  ASSERT_TRUE(left.has_value());
  EXPECT_TRUE(left->ok()) << *left;
  EXPECT_EQ(cluster.node(5).GetMember("node-5")->state(),
            v1::MEMBER_STATE_LEFT);
}

TEST(MembershipSimTest, AdvertisementChangeReachesEveryoneQuickly) {
  SimCluster cluster(64, Defaults(), {}, kSeed);
  ASSERT_GE(Converge(cluster, absl::Seconds(20)), 0);
  std::vector<absl::Duration> times;
  for (int round = 0; round < 5; ++round) {
    int subject = 3 + 11 * round;
    double free = 1.5 + round;
    v1::Advertisement ad;
    ad.set_machine_cores(8);
    ad.set_cores_donated(8);
    ad.set_cores_free(free);
    absl::Time start = cluster.world().Now();
    cluster.node(subject).SetAdvertisement(ad);
    ASSERT_TRUE(cluster.world().RunUntilTrue(
        [&] {
          for (int i = 0; i < cluster.size(); ++i) {
            auto member = cluster.node(i).GetMember(cluster.name(subject));
            if (!member || member->advertisement().cores_free() != free) {
              return false;
            }
          }
          return true;
        },
        absl::Seconds(5), absl::Milliseconds(5)));
    times.push_back(cluster.world().Now() - start);
    cluster.world().RunFor(absl::Seconds(1));
  }
  std::sort(times.begin(), times.end());
  std::printf("64 nodes: advertisement change reached all in median %s\n",
              absl::FormatDuration(times[2]).c_str());
  EXPECT_LT(times[2], absl::Milliseconds(500));  // PRODUCT.md section 8.
}

// Every member's status says when its advertisement was published (by the
// owner's clock) and when this node took it in: how long the news took to
// come, which is what users and the process bench time.
TEST(MembershipSimTest, StatusTellsWhenAnAdvertisementWasPublishedAndHeard) {
  SimCluster cluster(16, Defaults(), {}, kSeed);
  ASSERT_GE(Converge(cluster, absl::Seconds(10)), 0);
  cluster.world().RunFor(absl::Seconds(1));  // Past the rate limit.
  v1::Advertisement ad;
  ad.set_cores_donated(4);
  ad.set_cores_free(2.5);
  const int64_t published = absl::ToUnixMillis(cluster.world().Now());
  cluster.node(5).SetAdvertisement(ad);
  auto self = cluster.node(5).GetMember(cluster.name(5));
  ASSERT_TRUE(self.has_value());
  EXPECT_EQ(self->advertisement().published_unix_ms(), published);
  EXPECT_EQ(self->advertisement_received_unix_ms(), published);

  // Step the clock 1 ms at a time, noting when each node first shows it.
  std::vector<int64_t> seen_at(static_cast<size_t>(cluster.size()), -1);
  ASSERT_TRUE(cluster.world().RunUntilTrue(
      [&] {
        bool all = true;
        for (int i = 0; i < cluster.size(); ++i) {
          auto member = cluster.node(i).GetMember(cluster.name(5));
          if (member && member->advertisement().cores_free() == 2.5) {
            if (seen_at[static_cast<size_t>(i)] < 0) {
              seen_at[static_cast<size_t>(i)] =
                  absl::ToUnixMillis(cluster.world().Now());
            }
          } else {
            all = false;
          }
        }
        return all;
      },
      absl::Seconds(5), absl::Milliseconds(1)));
  int later = 0;
  for (int i = 0; i < cluster.size(); ++i) {
    auto member = cluster.node(i).GetMember(cluster.name(5));
    ASSERT_TRUE(member.has_value());
    EXPECT_EQ(member->advertisement().published_unix_ms(), published) << i;
    // Taken in at most the 1 ms step before it was first seen.
    EXPECT_LE(member->advertisement_received_unix_ms(),
              seen_at[static_cast<size_t>(i)])
        << i;
    EXPECT_GE(member->advertisement_received_unix_ms(),
              seen_at[static_cast<size_t>(i)] - 1)
        << i;
    later += member->advertisement_received_unix_ms() > published;
  }
  EXPECT_GT(later, 0);  // Gossip takes time: the stamps are not all equal.

  // A refresh with nothing changed publishes nothing and keeps the stamps.
  cluster.world().RunFor(absl::Seconds(1));
  cluster.node(5).SetAdvertisement(ad);
  EXPECT_EQ(cluster.node(5)
                .GetMember(cluster.name(5))
                ->advertisement()
                .published_unix_ms(),
            published);
}

// The listener hears of state changes only: advertisements change every
// few seconds on every member, and waking the listener's thread for each
// would wake an idle node of a large grid several times a second.
TEST(MembershipSimTest, ListenerHearsStateChangesNotAdvertisements) {
  SimCluster cluster(6, Defaults(), {}, kSeed);
  ASSERT_GE(Converge(cluster, absl::Seconds(10)), 0);
  std::vector<v1::MemberStatus> heard;
  cluster.node(0).SetListener(
      [&](const v1::MemberStatus& member) { heard.push_back(member); });
  v1::Advertisement ad;
  ad.set_cores_donated(4);
  ad.set_cores_free(1);
  cluster.node(2).SetAdvertisement(ad);
  ASSERT_TRUE(cluster.world().RunUntilTrue(
      [&] {
        return cluster.node(0)
                   .GetMember("node-2")
                   ->advertisement()
                   .cores_free() == 1;
      },
      absl::Seconds(5)));
  cluster.world().RunFor(absl::Seconds(1));
  EXPECT_TRUE(heard.empty());

  cluster.Crash(4);
  ASSERT_TRUE(cluster.world().RunUntilTrue(
      [&] {
        return std::any_of(heard.begin(), heard.end(), [](const auto& m) {
          return m.advertisement().name() == "node-4" &&
                 m.state() == v1::MEMBER_STATE_DEAD;
        });
      },
      absl::Seconds(30)));
  for (const v1::MemberStatus& member : heard) {
    EXPECT_EQ(member.advertisement().name(), "node-4");
  }
}

// Load and free memory drift on every node all the time, and each node
// refreshes them every few seconds: that news rides on the probes sent
// anyway, never makes messages of its own, and still reaches everyone.
TEST(MembershipSimTest, DriftRidesOnProbesAndReachesEveryone) {
  SimCluster cluster(64, Defaults(), {}, kSeed);
  ASSERT_GE(Converge(cluster, absl::Seconds(20)), 0);
  cluster.world().RunFor(absl::Seconds(20));  // Join news spent.
  auto sent = [&](const char* metric) {
    double total = 0;
    for (int i = 0; i < cluster.size(); ++i) {
      total += Metric(cluster.registry(i), metric, "sent");
    }
    return total;
  };
  auto messages_sent = [&] { return sent("peergrid_gossip_messages_total"); };
  auto bytes_sent = [&] { return sent("peergrid_gossip_bytes_total"); };
  const absl::Duration window = absl::Seconds(10);
  double before = messages_sent();
  cluster.world().RunFor(window);
  const double idle_messages = messages_sent() - before;

  before = messages_sent();
  const double bytes_before = bytes_sent();
  const absl::Time start = cluster.world().Now();
  for (int i = 0; i < cluster.size(); ++i) {
    v1::Advertisement ad =
        cluster.node(i).GetMember(cluster.name(i))->advertisement();
    ad.set_load_average(0.25 + i);
    ad.set_memory_free_bytes(1000000 + static_cast<uint64_t>(i));
    cluster.node(i).SetAdvertisement(ad);
  }
  ASSERT_TRUE(cluster.world().RunUntilTrue(
      [&] {
        for (int i = 0; i < cluster.size(); ++i) {
          for (const v1::MemberStatus& member : cluster.node(i).Snapshot()) {
            const std::string& name = member.advertisement().name();
            const int subject = std::atoi(name.c_str() + name.find('-') + 1);
            if (member.advertisement().load_average() != 0.25 + subject) {
              return false;
            }
          }
        }
        return true;
      },
      window));
  std::printf(
      "64 nodes: everyone's drift reached everyone in %s, %.0f KB sent\n",
      absl::FormatDuration(cluster.world().Now() - start).c_str(),
      (bytes_sent() - bytes_before) / 1000);
  cluster.world().RunFor(window - (cluster.world().Now() - start));
  const double drift_messages = messages_sent() - before;
  // Probes, acks and the odd push-pull, as when idle: no gossip of its own.
  EXPECT_LE(drift_messages, idle_messages * 1.1 + 10);
}

TEST(MembershipSimTest, AdvertisementChangesAreRateLimited) {
  SimCluster cluster(8, Defaults(), {}, kSeed);
  ASSERT_GE(Converge(cluster, absl::Seconds(10)), 0);
  uint64_t before =
      cluster.node(2).GetMember("node-2")->advertisement().sequence();
  v1::Advertisement ad;
  ad.set_cores_donated(8);
  for (int i = 0; i < 100; ++i) {
    ad.set_cores_free(i);
    cluster.node(2).SetAdvertisement(ad);
    cluster.world().RunFor(absl::Milliseconds(1));
  }
  cluster.world().RunFor(absl::Seconds(1));
  auto seen = cluster.node(6).GetMember("node-2");
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->advertisement().cores_free(), 99);  // The last one wins.
  // 100 changes over 100 ms: at most one publication per 100 ms.
  EXPECT_LE(seen->advertisement().sequence() - before, 3u);
}

// A node refreshes its advertisement every few seconds; when nothing in it
// changed, nothing is gossiped. Equality must not depend on the order in
// which the labels map was filled.
TEST(MembershipSimTest, AnUnchangedAdvertisementIsNotPublishedAgain) {
  SimCluster cluster(4, Defaults(), {}, kSeed);
  ASSERT_GE(Converge(cluster, absl::Seconds(10)), 0);
  auto sequence = [&] {
    return cluster.node(1).GetMember("node-1")->advertisement().sequence();
  };
  constexpr int kLabels = 40;
  v1::Advertisement ad;
  ad.set_cores_donated(4);
  for (int i = 0; i < kLabels; ++i) {
    (*ad.mutable_labels())[absl::StrCat("key-", i)] = absl::StrCat(i);
  }
  cluster.node(1).SetAdvertisement(ad);
  cluster.world().RunFor(absl::Seconds(1));
  const uint64_t published = sequence();

  v1::Advertisement same;
  same.set_cores_donated(4);
  for (int i = kLabels - 1; i >= 0; --i) {
    (*same.mutable_labels())[absl::StrCat("key-", i)] = absl::StrCat(i);
  }
  cluster.node(1).SetAdvertisement(same);
  cluster.world().RunFor(absl::Seconds(1));
  EXPECT_EQ(sequence(), published);

  (*same.mutable_labels())["key-7"] = "changed";
  cluster.node(1).SetAdvertisement(same);
  cluster.world().RunFor(absl::Seconds(1));
  EXPECT_GT(sequence(), published);
}

TEST(MembershipSimTest, PartitionSplitsAndHealsByItself) {
  SimCluster cluster(10, Defaults(), {}, kSeed);
  ASSERT_GE(Converge(cluster, absl::Seconds(10)), 0);
  for (int i = 0; i < 10; ++i) {
    cluster.network().SetGroup(cluster.address(i), i < 5 ? 1 : 2);
  }
  ASSERT_TRUE(cluster.world().RunUntilTrue(
      [&] {
        for (int i = 0; i < 10; ++i) {
          if (cluster.node(i).CountMembers(v1::MEMBER_STATE_ALIVE) != 5 ||
              cluster.node(i).CountMembers(v1::MEMBER_STATE_DEAD) != 5) {
            return false;
          }
        }
        return true;
      },
      absl::Seconds(30)));
  absl::Time heal = cluster.world().Now();
  for (int i = 0; i < 10; ++i)
    cluster.network().SetGroup(cluster.address(i), 0);
  ASSERT_TRUE(cluster.world().RunUntilTrue(
      [&] { return cluster.AllSeeAlive(10); }, absl::Seconds(60)));
  absl::Duration took = cluster.world().Now() - heal;
  std::printf("partition healed in %s\n", absl::FormatDuration(took).c_str());
  // A reconnect attempt every reconnect_interval on each node.
  EXPECT_LT(took, 3 * Defaults().reconnect_interval);
}

TEST(MembershipSimTest, SlowNodeIsNotDeclaredDeadWhilePeersAreHealthy) {
  SimCluster cluster(8, Defaults(), {}, kSeed);
  ASSERT_GE(Converge(cluster, absl::Seconds(10)), 0);
  const int slow = 3;
  // Every message node-3 receives waits three probe timeouts.
  cluster.network().SetProcessingDelay(cluster.address(slow),
                                       3 * Defaults().probe_timeout);
  int max_health = 0;
  bool someone_dead = cluster.world().RunUntilTrue(
      [&] {
        max_health = std::max(max_health, cluster.node(slow).LocalHealth());
        for (int i = 0; i < cluster.size(); ++i) {
          if (cluster.node(i).CountMembers(v1::MEMBER_STATE_DEAD) != 0) {
            return true;
          }
        }
        return false;
      },
      absl::Seconds(60));
  EXPECT_FALSE(someone_dead) << "a false positive";
  // Lifeguard: the slow node blamed itself, the healthy ones did not.
  EXPECT_GT(max_health, 0);
  for (int i = 0; i < cluster.size(); ++i) {
    if (i != slow) EXPECT_LE(cluster.node(i).LocalHealth(), 1) << i;
  }
  cluster.network().SetProcessingDelay(cluster.address(slow),
                                       absl::ZeroDuration());
  EXPECT_TRUE(cluster.world().RunUntilTrue(
      [&] { return cluster.AllSeeAlive(8); }, absl::Seconds(10)));
}

TEST(MembershipSimTest, ConvergesDespiteTenPercentLoss) {
  SimNetworkOptions network;
  network.loss = 0.10;
  SimCluster cluster(32, Defaults(), network, kSeed);
  absl::Time start = cluster.world().Now();
  cluster.StartAll();
  // Everyone knows everyone; a lost ack may leave a member suspect for a
  // moment, but nobody is taken for dead.
  ASSERT_TRUE(cluster.world().RunUntilTrue(
      [&] { return cluster.AllSeeLive(32); }, absl::Seconds(30)));
  double periods = Periods(cluster.world().Now() - start);
  std::printf("32 nodes with 10%% loss converged in %.1f periods\n", periods);
  // Lost join requests cost a push-pull timeout each.
  EXPECT_LE(periods,
            LogBound(32, 2) + 8 * Periods(Defaults().push_pull_timeout));
  absl::Time end = cluster.world().Now() + absl::Seconds(30);
  bool dead = cluster.world().RunUntilTrue(
      [&] {
        for (int i = 0; i < cluster.size(); ++i) {
          if (cluster.node(i).CountMembers(v1::MEMBER_STATE_DEAD) != 0) {
            return true;
          }
        }
        return cluster.world().Now() >= end;
      },
      absl::Seconds(31));
  EXPECT_GE(cluster.world().Now(), end) << "a member was declared dead";
  (void)dead;
}

TEST(MembershipSimTest, StartRejectsBadOptions) {
  SimWorld world(1);
  SimNetwork network(world, {});
  prometheus::Registry registry;
  MembershipOptions options;
  options.name = "x";
  options.advertise_address = "0.0.0.0:7420";
  Membership membership(options, network.NewTransport("a:1"),
                        NewSimScheduler(world), registry);
  EXPECT_EQ(membership.Start().code(), absl::StatusCode::kInvalidArgument);
  options.advertise_address = "10.0.0.1:7420";
  options.probe_timeout = options.probe_interval;
  EXPECT_FALSE(ValidateMembershipOptions(options).ok());
  options.probe_timeout = absl::Milliseconds(10);
  EXPECT_TRUE(ValidateMembershipOptions(options).ok());
}

}  // namespace
}  // namespace peergrid

namespace peergrid {
namespace {

// `observer` hears, from `sender` in a gossip-only ping, that `subject` is
// in `state` at `incarnation`: what a forger (or a confused member) says.
void Tell(SimCluster& cluster, int observer, int sender, int subject,
          v1::MemberState state, uint64_t incarnation) {
  v1::Ping ping;
  ping.set_from(cluster.name(sender));
  v1::MemberUpdate* claim = ping.add_gossip();
  claim->set_name(cluster.name(subject));
  claim->set_state(state);
  claim->set_incarnation(incarnation);
  claim->set_from(cluster.name(sender));
  cluster.node(observer).HandlePing(ping, [](absl::StatusOr<v1::Ack>) {});
}

uint64_t IncarnationSeenBy(SimCluster& cluster, int observer, int subject) {
  return cluster.node(observer)
      .GetMember(cluster.name(subject))
      .value_or(v1::MemberStatus())
      .incarnation();
}

// Whether `subject` stays alive to every node for `period`.
bool StaysAliveToAll(SimCluster& cluster, int subject, absl::Duration period) {
  const absl::Time end = cluster.world().Now() + period;
  bool ever_not_alive = false;
  cluster.world().RunUntilTrue(
      [&] {
        for (int i = 0; i < cluster.size(); ++i) {
          if (i != subject && cluster.StateOf(i, subject) !=
                                  v1::MEMBER_STATE_ALIVE) {
            ever_not_alive = true;
          }
        }
        return ever_not_alive || cluster.world().Now() >= end;
      },
      period + absl::Seconds(1));
  return !ever_not_alive;
}

TEST(MembershipForgeryTest, DeathAtTheLargestIncarnationIsIgnored) {
  SimCluster cluster(5, Defaults(), {}, kSeed);
  cluster.StartAll();
  ASSERT_TRUE(cluster.world().RunUntilTrue(
      [&] { return cluster.AllSeeAlive(5); }, absl::Seconds(30)));
  // Node 4 tells each of the others that node 2 died at an incarnation
  // node 2 could never outbid.
  for (int observer : {0, 1, 3}) {
    Tell(cluster, observer, 4, 2, v1::MEMBER_STATE_DEAD,
         std::numeric_limits<uint64_t>::max());
  }
  EXPECT_TRUE(StaysAliveToAll(cluster, 2, absl::Seconds(30)));
  EXPECT_GE(Metric(cluster.registry(0), "peergrid_gossip_updates_ignored_total",
                   ""),
            1);
  EXPECT_LT(IncarnationSeenBy(cluster, 0, 2), 10u);
}

TEST(MembershipForgeryTest, DeathAtTheKnownIncarnationIsRefuted) {
  SimCluster cluster(5, Defaults(), {}, kSeed);
  cluster.StartAll();
  ASSERT_TRUE(cluster.world().RunUntilTrue(
      [&] { return cluster.AllSeeAlive(5); }, absl::Seconds(30)));
  const uint64_t known = IncarnationSeenBy(cluster, 0, 2);
  // A claim at the incarnation held is news SWIM must take (a real death
  // looks the same); node 2 answers it first-hand (alive at the same
  // incarnation, or outbidding it) and is alive to all again.
  Tell(cluster, 0, 4, 2, v1::MEMBER_STATE_DEAD, known);
  EXPECT_EQ(cluster.StateOf(0, 2), v1::MEMBER_STATE_DEAD);
  ASSERT_TRUE(cluster.world().RunUntilTrue(
      [&] { return cluster.AllSee(2, v1::MEMBER_STATE_ALIVE); },
      absl::Seconds(30)));
  EXPECT_LE(IncarnationSeenBy(cluster, 0, 2), known + 1);
  EXPECT_TRUE(StaysAliveToAll(cluster, 2, absl::Seconds(10)));
}

TEST(MembershipForgeryTest, MemberOutbidsAForgedClaimAboutItselfByOne) {
  SimCluster cluster(5, Defaults(), {}, kSeed);
  cluster.StartAll();
  ASSERT_TRUE(cluster.world().RunUntilTrue(
      [&] { return cluster.AllSeeAlive(5); }, absl::Seconds(30)));
  const uint64_t known = IncarnationSeenBy(cluster, 0, 2);
  // Told itself that it is dead at the largest incarnation, node 2 refutes
  // at one above its own (not by wrapping around to 0), and stays alive.
  Tell(cluster, 2, 4, 2, v1::MEMBER_STATE_DEAD,
       std::numeric_limits<uint64_t>::max());
  ASSERT_TRUE(cluster.world().RunUntilTrue(
      [&] {
        for (int i = 0; i < 5; ++i) {
          if (i != 2 && IncarnationSeenBy(cluster, i, 2) != known + 1) {
            return false;
          }
        }
        return true;
      },
      absl::Seconds(30)));
  EXPECT_TRUE(StaysAliveToAll(cluster, 2, absl::Seconds(10)));
}

}  // namespace
}  // namespace peergrid
