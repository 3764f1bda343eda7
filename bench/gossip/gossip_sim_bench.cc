// Protocol-level figures of the membership defaults, from the deterministic
// simulation (no real processes): for N nodes, the time until all see all
// alive after a simultaneous start, until a changed advertisement reaches
// all, and until a crashed node is known dead by all (medians over seeds),
// plus false death declarations. The real-process comparison with Serf
// needs the node binary and is left to a script.
//
//   gossip_sim_bench [runs=5]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "node/common/log.h"
#include "tests/membership/sim.h"

namespace peergrid {
namespace {

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

void Run(int n, int runs) {
  std::vector<double> join, advertise, death;
  int false_deaths = 0;
  for (int run = 0; run < runs; ++run) {
    SimCluster cluster(n, MembershipOptions{}, {},
                       static_cast<uint64_t>(run) + 1);
    SimWorld& world = cluster.world();
    absl::Time start = world.Now();
    cluster.StartAll();
    if (!world.RunUntilTrue([&] { return cluster.AllSeeAlive(n); },
                            absl::Seconds(60), absl::Milliseconds(5))) {
      std::printf("N=%d run %d did not converge\n", n, run);
      continue;
    }
    join.push_back(Seconds(world.Now() - start));
    world.RunFor(absl::Seconds(2));

    v1::Advertisement ad;
    ad.set_cores_free(0.25);
    const int subject = n / 2;
    start = world.Now();
    cluster.node(subject).SetAdvertisement(ad);
    world.RunUntilTrue(
        [&] {
          for (int i = 0; i < n; ++i) {
            auto member = cluster.node(i).GetMember(cluster.name(subject));
            if (!member || member->advertisement().cores_free() != 0.25) {
              return false;
            }
          }
          return true;
        },
        absl::Seconds(30), absl::Milliseconds(5));
    advertise.push_back(Seconds(world.Now() - start));

    const int victim = n - 1;
    start = world.Now();
    cluster.Crash(victim);
    world.RunUntilTrue(
        [&] { return cluster.AllSee(victim, v1::MEMBER_STATE_DEAD); },
        absl::Seconds(60), absl::Milliseconds(5));
    death.push_back(Seconds(world.Now() - start));
    world.RunFor(absl::Seconds(5));
    for (int i = 0; i < n - 1; ++i) {
      false_deaths += static_cast<int>(
          cluster.node(i).CountMembers(v1::MEMBER_STATE_DEAD) - 1);
    }
  }
  if (join.empty()) return;
  std::printf("| %3d | %6.2f s | %6.3f s | %6.2f s | %d |\n", n, Median(join),
              Median(advertise), Median(death), false_deaths);
}

}  // namespace
}  // namespace peergrid

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::atoi(argv[1]) : 5;
  peergrid::SetLogLevel(peergrid::LogLevel::kWarning);
  std::printf(
      "| N | all see all alive | advertisement to all | death known "
      "by all | false deaths |\n|---|---|---|---|---|\n");
  for (int n : {5, 16, 32, 64}) peergrid::Run(n, runs);
  return 0;
}
