// N nodes in the test's own process, on 127.0.0.1 with port 0.
#ifndef PEERGRID_TESTS_TESTING_IN_PROCESS_CLUSTER_H_
#define PEERGRID_TESTS_TESTING_IN_PROCESS_CLUSTER_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "node/node.h"

namespace peergrid::testing {

class InProcessCluster {
 public:
  // Starts `size` nodes named node-0, node-1, ... from `base` (listen and
  // metrics get port 0; metrics stay off when `base.metrics` is empty), and
  // returns once every node answers ClusterStatus, or fails after `timeout`.
  static absl::StatusOr<std::unique_ptr<InProcessCluster>> Start(
      int size, NodeOptions base = WithoutMetrics(),
      absl::Duration timeout = absl::Seconds(10));

  // Default options for a test node: loopback, port 0, metrics off.
  static NodeOptions WithoutMetrics();

  InProcessCluster(const InProcessCluster&) = delete;
  InProcessCluster& operator=(const InProcessCluster&) = delete;
  // Shuts every node down.
  ~InProcessCluster();

  int size() const { return static_cast<int>(nodes_.size()); }
  Node& node(int index) { return *nodes_.at(static_cast<size_t>(index)); }

 private:
  InProcessCluster() = default;
  std::vector<std::unique_ptr<Node>> nodes_;
};

}  // namespace peergrid::testing

#endif  // PEERGRID_TESTS_TESTING_IN_PROCESS_CLUSTER_H_
