// Gossip from a peer: Ping, IndirectPingRequest and PushPullRequest, each as
// the Membership service's handler receives it, into one long-lived
// member (over the simulated network and clock of tests/membership/sim.h,
// which advances a little after each message so that timers run too).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "membership/membership.h"
#include "prometheus/registry.h"
#include "proto/membership.pb.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/membership/sim.h"

namespace {

struct Member {
  Member() : world(1), network(world, {}) {
    peergrid::MembershipOptions options;
    options.name = "fuzzed";
    options.advertise_address = "10.0.0.1:7420";
    membership = std::make_unique<peergrid::Membership>(
        options, network.NewTransport(options.advertise_address),
        peergrid::NewSimScheduler(world), registry);
    network.Attach(options.advertise_address, membership.get());
    (void)membership->Start();
  }
  peergrid::SimWorld world;
  peergrid::SimNetwork network;
  prometheus::Registry registry;
  std::unique_ptr<peergrid::Membership> membership;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Member* member = new Member;
  peergrid::fuzz::FuzzInput input(data, size);
  while (!input.empty()) {
    const uint8_t kind = input.Byte() % 3;
    const std::string bytes = input.Piece();
    if (kind == 0) {
      peergrid::v1::Ping ping;
      if (ping.ParseFromString(bytes)) {
        member->membership->HandlePing(ping, [](auto) {});
      }
    } else if (kind == 1) {
      peergrid::v1::IndirectPingRequest request;
      if (request.ParseFromString(bytes)) {
        member->membership->HandleIndirectPing(request, [](auto) {});
      }
    } else {
      peergrid::v1::PushPullRequest request;
      if (request.ParseFromString(bytes)) {
        member->membership->HandlePushPull(request, [](auto) {});
      }
    }
    member->world.RunFor(absl::Milliseconds(20));
  }
  (void)member->membership->Snapshot();
  return 0;
}
