#include "tests/testing/in_process_cluster.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/address.h"
#include "proto/jobs.grpc.pb.h"
#include "tests/testing/eventually.h"

namespace peergrid::testing {
namespace {

::testing::AssertionResult Serves(const std::string& address) {
  auto stub = v1::Jobs::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(1));
  v1::ClusterStatusResponse response;
  const grpc::Status status =
      stub->ClusterStatus(&context, v1::ClusterStatusRequest(), &response);
  if (!status.ok()) {
    return ::testing::AssertionFailure()
           << address << ": " << status.error_message();
  }
  return ::testing::AssertionSuccess();
}

}  // namespace

NodeOptions InProcessCluster::WithoutMetrics() {
  NodeOptions options;
  options.listen = "127.0.0.1:0";
  options.metrics = "";
  return options;
}

absl::StatusOr<std::unique_ptr<InProcessCluster>> InProcessCluster::Start(
    int size, NodeOptions base, absl::Duration timeout) {
  std::unique_ptr<InProcessCluster> cluster(new InProcessCluster());
  const absl::Time deadline = absl::Now() + timeout;
  for (int i = 0; i < size; ++i) {
    NodeOptions options = base;
    options.name = absl::StrCat("node-", i);
    options.listen = "127.0.0.1:0";
    if (!options.metrics.empty()) options.metrics = "127.0.0.1:0";
    absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(options);
    if (!node.ok()) return node.status();
    cluster->nodes_.push_back(std::move(*node));
  }
  for (const auto& node : cluster->nodes_) {
    const std::string address = node->grpc_address();
    ::testing::AssertionResult serving =
        Eventually([&] { return Serves(address); }, deadline - absl::Now());
    if (!serving) return absl::DeadlineExceededError(serving.message());
  }
  return cluster;
}

InProcessCluster::~InProcessCluster() {
  for (auto& node : nodes_) node->Shutdown(absl::Milliseconds(200));
}

}  // namespace peergrid::testing
