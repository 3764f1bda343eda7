// The client-facing Jobs service: thin handlers that call the node's parts.
//
// Each handler validates its request, calls a plain function or class, maps
// absl::Status to a gRPC status and responds. Handlers run on gRPC's callback
// threads and never block them. Methods whose parts have not been built yet
// answer UNIMPLEMENTED (the generated default).
#ifndef PEERGRID_NODE_JOBS_SERVICE_H_
#define PEERGRID_NODE_JOBS_SERVICE_H_

#include <functional>

#include "proto/jobs.grpc.pb.h"

namespace peergrid {

class JobsService final : public v1::Jobs::CallbackService {
 public:
  // Returns this node's view of the grid; called on gRPC threads, so it must
  // be thread-safe and quick (a snapshot, not a network call).
  using ClusterStatusFn = std::function<v1::ClusterStatusResponse()>;

  explicit JobsService(ClusterStatusFn cluster_status);

  grpc::ServerUnaryReactor* ClusterStatus(
      grpc::CallbackServerContext* context,
      const v1::ClusterStatusRequest* request,
      v1::ClusterStatusResponse* response) override;

 private:
  const ClusterStatusFn cluster_status_;
};

}  // namespace peergrid

#endif  // PEERGRID_NODE_JOBS_SERVICE_H_
