// The in-process cluster fixture: N real nodes talking gRPC over loopback.
#include "tests/testing/in_process_cluster.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <set>

#include "proto/jobs.grpc.pb.h"

namespace peergrid::testing {
namespace {

TEST(InProcessClusterTest, EveryNodeServesOnItsOwnPort) {
  absl::StatusOr<std::unique_ptr<InProcessCluster>> cluster =
      InProcessCluster::Start(3);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  std::set<std::string> addresses;
  for (int i = 0; i < (*cluster)->size(); ++i) {
    Node& node = (*cluster)->node(i);
    addresses.insert(node.grpc_address());
    auto stub = v1::Jobs::NewStub(grpc::CreateChannel(
        node.grpc_address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    v1::ClusterStatusResponse response;
    ASSERT_TRUE(
        stub->ClusterStatus(&context, v1::ClusterStatusRequest(), &response)
            .ok());
    EXPECT_EQ(response.self(), node.name());
    ASSERT_GE(response.members_size(), 1);
    EXPECT_EQ(response.members(0).advertisement().grpc_address(),
              node.grpc_address());
  }
  EXPECT_EQ(addresses.size(), 3u);
}

TEST(InProcessClusterTest, MetricsGetTheirOwnPortsWhenAsked) {
  NodeOptions options = InProcessCluster::WithoutMetrics();
  options.metrics = "127.0.0.1:0";
  absl::StatusOr<std::unique_ptr<InProcessCluster>> cluster =
      InProcessCluster::Start(2, options);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  EXPECT_NE((*cluster)->node(0).metrics_address(),
            (*cluster)->node(1).metrics_address());
  EXPECT_NE((*cluster)->node(0).metrics_address(), "127.0.0.1:0");
}

}  // namespace
}  // namespace peergrid::testing
