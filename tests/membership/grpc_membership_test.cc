// A few Membership instances in one process, each behind its own gRPC server
// on 127.0.0.1 with an ephemeral port, over the production transport and
// scheduler. Waits poll a condition until a deadline; nothing sleeps a fixed
// time as synchronisation.
#include <grpcpp/grpcpp.h>
#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "membership/grpc_transport.h"
#include "membership/membership.h"
#include "membership/membership_service.h"

namespace peergrid {
namespace {

// Polls `condition` every 10 ms until it holds or `limit` passes.
testing::AssertionResult Eventually(const std::function<bool()>& condition,
                                    absl::Duration limit,
                                    const std::function<std::string()>& state) {
  absl::Time deadline = absl::Now() + limit;
  while (absl::Now() < deadline) {
    if (condition()) return testing::AssertionSuccess();
    absl::SleepFor(absl::Milliseconds(10));
  }
  if (condition()) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "after " << limit << ": " << state();
}

struct RealNode {
  std::string name;
  std::string address;
  prometheus::Registry registry;
  MembershipService service;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<Membership> membership;

  void Shutdown() {
    if (server) server->Shutdown(std::chrono::system_clock::now());
    server.reset();
    if (membership) membership->Stop();
  }
};

class GrpcMembershipTest : public testing::Test {
 protected:
  void TearDown() override {
    for (auto& node : nodes_) node->Shutdown();
  }

  RealNode& StartNode(const std::vector<std::string>& seeds) {
    auto node = std::make_unique<RealNode>();
    node->name = absl::StrCat("real-", nodes_.size());
    int port = 0;
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(&node->service);
    node->server = builder.BuildAndStart();
    EXPECT_NE(node->server, nullptr);
    EXPECT_GT(port, 0);
    node->address = absl::StrCat("127.0.0.1:", port);
    MembershipOptions options;
    options.name = node->name;
    options.advertise_address = node->address;
    options.seeds = seeds;
    node->membership = std::make_unique<Membership>(
        options, NewGrpcTransport({}), NewThreadScheduler(node->name),
        node->registry);
    node->service.set_membership(node->membership.get());
    v1::Advertisement ad;
    ad.set_cores_donated(2);
    node->membership->SetAdvertisement(ad);
    EXPECT_TRUE(node->membership->Start().ok());
    nodes_.push_back(std::move(node));
    return *nodes_.back();
  }

  std::string Describe() {
    std::string out;
    for (auto& node : nodes_) {
      if (!node->server) continue;
      absl::StrAppend(&out, node->name, ": ");
      for (const auto& member : node->membership->Snapshot()) {
        absl::StrAppend(&out, member.advertisement().name(), "=",
                        v1::MemberState_Name(member.state()), " ");
      }
      absl::StrAppend(&out, "; ");
    }
    return out;
  }

  // Every running node sees `subject` in `state`.
  bool AllSee(const std::string& subject, v1::MemberState state) {
    for (auto& node : nodes_) {
      if (!node->server || node->name == subject) continue;
      auto member = node->membership->GetMember(subject);
      if (!member || member->state() != state) return false;
    }
    return true;
  }

  bool AllSeeAlive(size_t count) {
    for (auto& node : nodes_) {
      if (!node->server) continue;
      if (node->membership->CountMembers(v1::MEMBER_STATE_ALIVE) != count) {
        return false;
      }
    }
    return true;
  }

  std::vector<std::unique_ptr<RealNode>> nodes_;
};

TEST_F(GrpcMembershipTest, FourNodesConvergeAndDetectAStoppedOne) {
  RealNode& first = StartNode({});
  for (int i = 1; i < 4; ++i) StartNode({first.address});
  ASSERT_TRUE(Eventually([&] { return AllSeeAlive(4); }, absl::Seconds(10),
                         [&] { return Describe(); }));
  auto seen = nodes_[3]->membership->GetMember("real-1");
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->advertisement().cores_donated(), 2);
  EXPECT_EQ(seen->advertisement().grpc_address(), nodes_[1]->address);

  nodes_[2]->Shutdown();  // Its port now refuses every call.
  EXPECT_TRUE(
      Eventually([&] { return AllSee("real-2", v1::MEMBER_STATE_DEAD); },
                 absl::Seconds(15), [&] { return Describe(); }));
  EXPECT_TRUE(AllSeeAlive(3)) << Describe();
}

TEST_F(GrpcMembershipTest, TransportReportsAConnectionThatBroke) {
  RealNode& peer = StartNode({});
  std::unique_ptr<Transport> transport = NewGrpcTransport({});
  v1::Ping ping;
  ping.set_from("a-prober");
  ping.set_target(peer.name);
  absl::Notification answered;
  absl::Status status;
  transport->SendPing(peer.address, ping, absl::Seconds(5),
                      [&](absl::StatusOr<v1::Ack> ack) {
                        status = ack.status();
                        answered.Notify();
                      });
  ASSERT_TRUE(answered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(status.ok()) << status;
  // A working connection is no news.
  EXPECT_TRUE(transport->TakeLostConnections().empty());

  peer.Shutdown();  // Its server closes the connection, as a killed one's.
  std::vector<std::string> lost;
  EXPECT_TRUE(Eventually(
      [&] {
        for (std::string& address : transport->TakeLostConnections()) {
          lost.push_back(std::move(address));
        }
        return !lost.empty();
      },
      absl::Seconds(5), [] { return std::string("no connection lost"); }));
  EXPECT_EQ(lost, std::vector<std::string>{peer.address});
  // Reported once.
  EXPECT_TRUE(transport->TakeLostConnections().empty());
  transport->Shutdown();
}

TEST_F(GrpcMembershipTest, LeaveIsSeenAtOnceAndChangesSpread) {
  RealNode& first = StartNode({});
  for (int i = 1; i < 3; ++i) StartNode({"127.0.0.1:1", first.address});
  ASSERT_TRUE(Eventually([&] { return AllSeeAlive(3); }, absl::Seconds(10),
                         [&] { return Describe(); }));
  v1::Advertisement ad;
  ad.set_cores_donated(2);
  ad.set_cores_free(0.5);
  nodes_[1]->membership->SetAdvertisement(ad);
  EXPECT_TRUE(Eventually(
      [&] {
        auto member = nodes_[2]->membership->GetMember("real-1");
        return member && member->advertisement().cores_free() == 0.5;
      },
      absl::Seconds(2), [&] { return Describe(); }));

  EXPECT_TRUE(nodes_[0]->membership->Leave(absl::Seconds(1)).ok());
  EXPECT_TRUE(
      Eventually([&] { return AllSee("real-0", v1::MEMBER_STATE_LEFT); },
                 absl::Milliseconds(700), [&] { return Describe(); }));
}

}  // namespace
}  // namespace peergrid
