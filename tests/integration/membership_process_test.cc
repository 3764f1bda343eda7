// Gossip membership between real `peergrid node` processes on 127.0.0.2-6,
// checked through each node's Jobs.ClusterStatus: five nodes converge, a
// `kill -9` is seen dead by all the others within a bound that follows from
// the default tunables, a SIGTERM is seen `left` at once, and a node whose
// core is contended by busy loops is not declared dead.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "proto/jobs.grpc.pb.h"
#include "tests/testing/eventually.h"
#include "tests/testing/node_process.h"
#include "tests/testing/subprocess.h"

namespace peergrid::testing {
namespace {

constexpr int kNodes = 5;

// Bounds from the defaults (docs/membership.md): probe_interval 1 s,
// suspicion_multiplier 2.
//  - A killed node's sockets close: survivors connected to it probe it at
//    their next probe tick (within 1 s), the others at its turn in their
//    round of N-1 = 4 members (within 4 s). A call to its port is refused
//    at once, so the probe and its indirect phase fail within milliseconds
//    and the suspicion is raised.
//  - A suspicion lasts mult x max(1, log10 5) x 1 s = 2 s (with mult 2 no
//    confirmation is awaited). Every survivor runs its own timer from when
//    it heard the suspicion.
// So every survivor declares it dead within ~4 s + 1 s + 2 s = 7 s; 15 s
// leaves room for a loaded 2-core machine. Typically it is under 3 s.
constexpr absl::Duration kDeathBound = absl::Seconds(15);
// The minimum suspicion timeout at N = 5: a leave must be known well before
// any suspicion could have ended.
constexpr absl::Duration kMinSuspicion = absl::Seconds(2);

std::string NodeName(int i) { return absl::StrCat("m", i); }

class MembershipProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const absl::Time start = absl::Now();
    for (int i = 0; i < kNodes; ++i) {
      std::vector<std::string> flags = {absl::StrCat("--name=", NodeName(i)),
                                        "--cores=1",
                                        "--metrics=", "--log-level=warning"};
      // Every node after the first joins through two seeds (the first is
      // enough; the second exercises the list).
      if (i > 0) {
        std::string join = "--join=" + nodes_[0]->grpc_address();
        if (i > 1) absl::StrAppend(&join, ",", nodes_[1]->grpc_address());
        flags.push_back(join);
      }
      absl::StatusOr<std::unique_ptr<NodeProcess>> node =
          NodeProcess::Start(flags, absl::StrCat("127.0.0.", i + 2));
      ASSERT_TRUE(node.ok()) << node.status();
      nodes_.push_back(std::move(*node));
      stubs_.push_back(v1::Jobs::NewStub(grpc::CreateChannel(
          nodes_.back()->grpc_address(), grpc::InsecureChannelCredentials())));
    }
    ASSERT_TRUE(Eventually(
        [&] {
          for (int i = 0; i < kNodes; ++i) {
            auto result = SeesAllAlive(i);
            if (!result) return result;
          }
          return ::testing::AssertionSuccess();
        },
        absl::Seconds(10)));
    converged_after_ = absl::Now() - start;
  }

  void TearDown() override {
    if (!HasFailure()) return;
    for (auto& node : nodes_) {
      if (node == nullptr) continue;
      std::cerr << "--- " << node->start_line().name << " ---\n" << node->Log();
    }
  }

  // Member name -> state, as node `i` sees it; empty if it did not answer.
  std::map<std::string, v1::MemberState> View(int i) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(2));
    v1::ClusterStatusResponse status;
    std::map<std::string, v1::MemberState> view;
    if (!stubs_[static_cast<size_t>(i)]
             ->ClusterStatus(&context, {}, &status)
             .ok()) {
      return view;
    }
    for (const v1::MemberStatus& member : status.members()) {
      view[member.advertisement().name()] = member.state();
    }
    return view;
  }

  ::testing::AssertionResult SeesAllAlive(int i) {
    const auto view = View(i);
    int alive = 0;
    for (const auto& [name, state] : view) {
      alive += state == v1::MEMBER_STATE_ALIVE ? 1 : 0;
    }
    if (alive == kNodes) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << NodeName(i) << " sees " << alive << " of " << kNodes << " alive";
  }

  // Every node but `target` sees `target` in `state`.
  ::testing::AssertionResult OthersSee(int target, v1::MemberState state) {
    for (int i = 0; i < kNodes; ++i) {
      if (i == target) continue;
      const auto view = View(i);
      auto it = view.find(NodeName(target));
      if (it == view.end() || it->second != state) {
        return ::testing::AssertionFailure()
               << NodeName(i) << " sees " << NodeName(target) << " as "
               << (it == view.end() ? "absent"
                                    : v1::MemberState_Name(it->second));
      }
    }
    return ::testing::AssertionSuccess();
  }

  std::vector<std::unique_ptr<NodeProcess>> nodes_;
  std::vector<std::unique_ptr<v1::Jobs::Stub>> stubs_;
  absl::Duration converged_after_;
};

TEST_F(MembershipProcessTest, FiveNodesConverge) {
  // SetUp waited for it; check once more that the view is stable and that
  // every node lists exactly the five, itself first.
  for (int i = 0; i < kNodes; ++i) {
    grpc::ClientContext context;
    v1::ClusterStatusResponse status;
    ASSERT_TRUE(stubs_[static_cast<size_t>(i)]
                    ->ClusterStatus(&context, {}, &status)
                    .ok());
    EXPECT_EQ(status.self(), NodeName(i));
    ASSERT_EQ(status.members_size(), kNodes);
    EXPECT_EQ(status.members(0).advertisement().name(), NodeName(i));
    for (const v1::MemberStatus& member : status.members()) {
      EXPECT_EQ(member.state(), v1::MEMBER_STATE_ALIVE)
          << member.advertisement().name();
      EXPECT_FALSE(member.advertisement().grpc_address().empty());
    }
  }
  std::cerr << "5 processes converged in "
            << absl::FormatDuration(converged_after_) << "\n";
}

TEST_F(MembershipProcessTest, AKilledNodeIsSeenDeadByAllOthersWithinBound) {
  const int target = 2;
  const absl::Time killed = absl::Now();
  nodes_[target]->process().Signal(SIGKILL);
  ASSERT_TRUE(nodes_[target]->process().Wait(absl::Seconds(5)).ok());
  ASSERT_TRUE(
      Eventually([&] { return OthersSee(target, v1::MEMBER_STATE_DEAD); },
                 kDeathBound, absl::Milliseconds(20)));
  std::cerr << "kill -9 seen dead by all others after "
            << absl::FormatDuration(absl::Now() - killed) << "\n";
  // Nobody else was declared dead meanwhile.
  for (int i = 0; i < kNodes; ++i) {
    if (i == target) continue;
    for (const auto& [name, state] : View(i)) {
      if (name == NodeName(target)) continue;
      EXPECT_EQ(state, v1::MEMBER_STATE_ALIVE)
          << NodeName(i) << " about " << name;
    }
  }
}

TEST_F(MembershipProcessTest, ASigtermedNodeIsSeenLeftAtOnce) {
  const int target = 3;
  const absl::Time signalled = absl::Now();
  nodes_[target]->process().Signal(SIGTERM);
  // `left`, never `dead`: no suspicion ran. Known by all well under the
  // shortest suspicion timeout, as the leaving node tells peers directly.
  ASSERT_TRUE(
      Eventually([&] { return OthersSee(target, v1::MEMBER_STATE_LEFT); },
                 kMinSuspicion, absl::Milliseconds(5)));
  const absl::Duration took = absl::Now() - signalled;
  std::cerr << "SIGTERM seen as left by all others after "
            << absl::FormatDuration(took) << "\n";
  EXPECT_LT(took, kMinSuspicion / 2);
  absl::StatusOr<ExitStatus> exit =
      nodes_[target]->Stop(SIGTERM, absl::Seconds(5));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(exit->exit_code, 0);
}

TEST_F(MembershipProcessTest, ANodeOnAContendedCoreIsNotDeclaredDead) {
  const int target = 1;
  const std::string pid = absl::StrCat(nodes_[target]->process().pid());
  // Pin every thread of the node to core 0, with three busy loops there.
  absl::StatusOr<CommandResult> pinned =
      RunCommand({"/usr/bin/taskset", "-a", "-c", "-p", "0", pid});
  ASSERT_TRUE(pinned.ok() && pinned->status.exit_code == 0)
      << (pinned.ok() ? pinned->err : pinned.status().ToString());
  std::vector<std::unique_ptr<Subprocess>> hogs;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<std::unique_ptr<Subprocess>> hog =
        Subprocess::Start({"/usr/bin/taskset", "-c", "0", "/bin/sh", "-c",
                           "while :; do :; done"});
    ASSERT_TRUE(hog.ok()) << hog.status();
    hogs.push_back(std::move(*hog));
  }
  // For 10 s every node, the starved one included, keeps seeing every node
  // alive or at worst briefly suspect: never dead.
  int suspect_sightings = 0;
  const absl::Time end = absl::Now() + absl::Seconds(10);
  while (absl::Now() < end) {
    for (int i = 0; i < kNodes; ++i) {
      for (const auto& [name, state] : View(i)) {
        EXPECT_TRUE(state == v1::MEMBER_STATE_ALIVE ||
                    state == v1::MEMBER_STATE_SUSPECT)
            << NodeName(i) << " sees " << name << " as "
            << v1::MemberState_Name(state);
        suspect_sightings += state == v1::MEMBER_STATE_SUSPECT ? 1 : 0;
      }
    }
    absl::SleepFor(absl::Milliseconds(100));  // Sampling, not synchronising.
  }
  for (auto& hog : hogs) {
    hog->Signal(SIGKILL);
    EXPECT_TRUE(hog->Wait(absl::Seconds(5)).ok());
  }
  std::cerr << "suspect sightings under contention: " << suspect_sightings
            << "\n";
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(Eventually([&] { return SeesAllAlive(i); }, absl::Seconds(5)));
  }
}

}  // namespace
}  // namespace peergrid::testing
