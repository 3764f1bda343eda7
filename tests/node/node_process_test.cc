// `peergrid node` as a real process: its start line, `peergrid status`
// against it, and how it stops.
#include "tests/testing/node_process.h"

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/version.h"
#include "proto/jobs.grpc.pb.h"

namespace peergrid::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::unique_ptr<NodeProcess> StartNode(std::vector<std::string> flags,
                                       const std::string& host = "127.0.0.1") {
  absl::StatusOr<std::unique_ptr<NodeProcess>> node =
      NodeProcess::Start(std::move(flags), host);
  EXPECT_TRUE(node.ok()) << node.status();
  return node.ok() ? std::move(*node) : nullptr;
}

// Asks `node` for the grid as it sees it; false when the call fails.
bool GetClusterStatus(const NodeProcess& node,
                      v1::ClusterStatusResponse* response) {
  auto stub = v1::Jobs::NewStub(grpc::CreateChannel(
      node.grpc_address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  return stub->ClusterStatus(&context, v1::ClusterStatusRequest(), response)
      .ok();
}

TEST(NodeProcessTest, StartLineGivesTheBoundAddresses) {
  auto node = StartNode({"--name=alpha"}, "127.0.0.2");
  ASSERT_NE(node, nullptr);
  EXPECT_EQ(node->start_line().name, "alpha");
  EXPECT_EQ(node->start_line().version, Version());
  EXPECT_THAT(node->grpc_address(), StartsWith("127.0.0.2:"));
  EXPECT_THAT(node->metrics_address(), StartsWith("127.0.0.2:"));
  EXPECT_NE(node->grpc_address(), "127.0.0.2:0") << "port 0 must be resolved";
  EXPECT_NE(node->metrics_address(), "127.0.0.2:0");
}

TEST(NodeProcessTest, WildcardMetricsAreAdvertisedAtTheNodesHost) {
  auto node = StartNode({"--metrics=0.0.0.0:0"}, "127.0.0.4");
  ASSERT_NE(node, nullptr);
  EXPECT_THAT(node->metrics_address(), StartsWith("127.0.0.4:"))
      << "peers and Prometheus cannot dial 0.0.0.0";
}

TEST(NodeProcessTest, MetricsCanBeTurnedOff) {
  auto node = StartNode({"--metrics="});
  ASSERT_NE(node, nullptr);
  EXPECT_EQ(node->metrics_address(), "off");
}

TEST(NodeProcessTest, DefaultNameIsTheHostNameAndPort) {
  auto node = StartNode({});
  ASSERT_NE(node, nullptr);
  const std::string port =
      std::vector<std::string>(absl::StrSplit(node->grpc_address(), ':'))[1];
  EXPECT_THAT(node->start_line().name, ::testing::EndsWith(":" + port));
}

TEST(NodeProcessTest, StatusListsTheNode) {
  auto node = StartNode({"--name=beta", "--cores=1"}, "127.0.0.3");
  ASSERT_NE(node, nullptr);
  absl::StatusOr<CommandResult> status =
      RunCommand({PeergridBinary(), "status",
                  absl::StrCat("--node=", node->grpc_address())});
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->status.exit_code, 0) << status->err;
  const std::vector<std::string> lines =
      absl::StrSplit(status->out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << status->out;
  EXPECT_THAT(lines[0], StartsWith("NAME"));
  const std::vector<std::string> fields =
      absl::StrSplit(lines[1], ' ', absl::SkipEmpty());
  ASSERT_GE(fields.size(), 9u) << lines[1];
  EXPECT_EQ(fields[0], "beta");
  EXPECT_EQ(fields[1], node->grpc_address());
  EXPECT_EQ(fields[2], "alive");
  EXPECT_EQ(fields[3], "1") << "cores donated";
  EXPECT_EQ(fields[7], Version());
}

TEST(NodeProcessTest, SecondNodeOnATakenPortFailsClearly) {
  auto first = StartNode({});
  ASSERT_NE(first, nullptr);
  absl::StatusOr<CommandResult> second = RunCommand(
      {PeergridBinary(), "node",
       absl::StrCat("--listen=", first->grpc_address()), "--metrics="},
      absl::Seconds(10));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->status.exit_code, 1);
  EXPECT_THAT(second->err, HasSubstr(absl::StrCat("cannot listen on ",
                                                  first->grpc_address())));
}

TEST(NodeProcessTest, TakenMetricsPortFailsClearly) {
  auto first = StartNode({});
  ASSERT_NE(first, nullptr);
  absl::StatusOr<CommandResult> second =
      RunCommand({PeergridBinary(), "node", "--listen=127.0.0.1:0",
                  absl::StrCat("--metrics=", first->metrics_address())},
                 absl::Seconds(10));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->status.exit_code, 1);
  EXPECT_THAT(second->err, HasSubstr(absl::StrCat("cannot serve metrics on ",
                                                  first->metrics_address())));
}

class StopSignalTest : public ::testing::TestWithParam<int> {};

TEST_P(StopSignalTest, NodeExitsZeroWithinTwoSeconds) {
  auto node = StartNode({});
  ASSERT_NE(node, nullptr);
  const absl::Time start = absl::Now();
  absl::StatusOr<ExitStatus> exit = node->Stop(GetParam(), absl::Seconds(5));
  const absl::Duration took = absl::Now() - start;
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(exit->exited()) << "killed by signal " << exit->signal;
  EXPECT_EQ(exit->exit_code, 0) << node->Log();
  EXPECT_LT(took, absl::Seconds(2));
}

INSTANTIATE_TEST_SUITE_P(TermAndInt, StopSignalTest,
                         ::testing::Values(SIGTERM, SIGINT));

// Load and free memory are gossiped to every member whenever they change,
// so the node rounds them to what anyone reads them at; and its own entry
// says when its advertisement was published.
TEST(NodeProcessTest, AdvertisesLoadAndMemoryRounded) {
  auto node = StartNode({"--cores=1"});
  ASSERT_NE(node, nullptr);
  v1::ClusterStatusResponse response;
  ASSERT_TRUE(GetClusterStatus(*node, &response));
  ASSERT_GE(response.members_size(), 1);
  const v1::MemberStatus& self = response.members(0);
  const v1::Advertisement& ad = self.advertisement();
  EXPECT_GT(ad.memory_free_bytes(), 0u);
  EXPECT_EQ(ad.memory_free_bytes() % (uint64_t{64} << 20), 0u);
  const double twentieths = ad.load_average() * 20;
  EXPECT_NEAR(twentieths, std::round(twentieths), 1e-6) << ad.load_average();
  EXPECT_GT(ad.published_unix_ms(), 0);
  EXPECT_LE(ad.published_unix_ms(), absl::ToUnixMillis(absl::Now()));
  EXPECT_EQ(self.advertisement_received_unix_ms(), ad.published_unix_ms());
}

TEST(NodeProcessTest, StopsWithinTwoSecondsWhileAClientStaysConnected) {
  auto node = StartNode({});
  ASSERT_NE(node, nullptr);
  // The channel stays open across the stop, as a watching client's would.
  auto stub = v1::Jobs::NewStub(grpc::CreateChannel(
      node->grpc_address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  v1::ClusterStatusResponse response;
  ASSERT_TRUE(
      stub->ClusterStatus(&context, v1::ClusterStatusRequest(), &response)
          .ok());
  const absl::Time start = absl::Now();
  absl::StatusOr<ExitStatus> exit = node->Stop(SIGTERM, absl::Seconds(5));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(exit->exit_code, 0);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

}  // namespace
}  // namespace peergrid::testing
