// Protocol-level figures of the membership defaults, from the deterministic
// simulation (no real processes): for N nodes, the time until all see all
// alive after a simultaneous start, until a changed advertisement reaches
// all, and until a node is known dead by all (medians over seeds) when its
// process is killed (its connections close) and when its machine loses
// power (nothing closes), plus false death declarations. gossip_process_bench
// does the same with real processes, side by side with Serf. The timing flags
// default to MembershipOptions' defaults, so that other tunings can be
// compared:
//
//   gossip_sim_bench --runs=7 --probe_interval_ms=200 --probe_timeout_ms=100
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/log.h"
#include "tests/membership/sim.h"

ABSL_FLAG(int, runs, 5, "Seeded runs per size; medians are reported.");
ABSL_FLAG(int, settle_seconds, 30,
          "Simulated seconds between the advertisement change and the first "
          "failure, in which members probe (and so connect to) each other.");
ABSL_FLAG(std::string, sizes, "5,16,32,64", "Numbers of nodes.");
ABSL_FLAG(
    int, probe_interval_ms,
    absl::ToInt64Milliseconds(peergrid::MembershipOptions{}.probe_interval),
    "MembershipOptions::probe_interval.");
ABSL_FLAG(
    int, probe_timeout_ms,
    absl::ToInt64Milliseconds(peergrid::MembershipOptions{}.probe_timeout),
    "MembershipOptions::probe_timeout.");
ABSL_FLAG(int, suspicion_multiplier,
          peergrid::MembershipOptions{}.suspicion_multiplier,
          "MembershipOptions::suspicion_multiplier.");

namespace peergrid {
namespace {

MembershipOptions OptionsFromFlags() {
  MembershipOptions options;
  options.probe_interval =
      absl::Milliseconds(absl::GetFlag(FLAGS_probe_interval_ms));
  options.probe_timeout =
      absl::Milliseconds(absl::GetFlag(FLAGS_probe_timeout_ms));
  options.suspicion_multiplier = absl::GetFlag(FLAGS_suspicion_multiplier);
  return options;
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

void Run(int n, int runs) {
  std::vector<double> join, advertise, killed, powered_off;
  int false_deaths = 0;
  for (int run = 0; run < runs; ++run) {
    SimCluster cluster(n, OptionsFromFlags(), {},
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

    world.RunFor(absl::Seconds(absl::GetFlag(FLAGS_settle_seconds)));
    auto time_to_death = [&](int victim) {
      absl::Time failed = world.Now();
      world.RunUntilTrue(
          [&] { return cluster.AllSee(victim, v1::MEMBER_STATE_DEAD); },
          absl::Seconds(60), absl::Milliseconds(5));
      return Seconds(world.Now() - failed);
    };
    cluster.Crash(n - 1);
    killed.push_back(time_to_death(n - 1));
    world.RunFor(absl::Seconds(5));
    cluster.PowerOff(n - 2);
    powered_off.push_back(time_to_death(n - 2));
    world.RunFor(absl::Seconds(5));
    for (int i = 0; i < n - 2; ++i) {
      false_deaths += static_cast<int>(
          cluster.node(i).CountMembers(v1::MEMBER_STATE_DEAD) - 2);
    }
  }
  if (join.empty()) return;
  std::printf("| %3d | %6.2f s | %6.3f s | %6.2f s | %6.2f s | %d |\n", n,
              Median(join), Median(advertise), Median(killed),
              Median(powered_off), false_deaths);
}

}  // namespace
}  // namespace peergrid

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  peergrid::SetLogLevel(peergrid::LogLevel::kWarning);
  std::printf(
      "| N | all see all alive | advertisement to all | killed: dead to "
      "all | powered off: dead to all | false deaths |\n"
      "|---|---|---|---|---|---|\n");
  for (absl::string_view size :
       absl::StrSplit(absl::GetFlag(FLAGS_sizes), ',')) {
    int n = 0;
    if (!absl::SimpleAtoi(size, &n) || n < 2) {
      std::fprintf(stderr, "bad --sizes entry '%s'\n",
                   std::string(size).c_str());
      return 2;
    }
    peergrid::Run(n, absl::GetFlag(FLAGS_runs));
  }
  return 0;
}
