#include "node/jobs_service.h"

#include <utility>

namespace peergrid {

JobsService::JobsService(ClusterStatusFn cluster_status)
    : cluster_status_(std::move(cluster_status)) {}

grpc::ServerUnaryReactor* JobsService::ClusterStatus(
    grpc::CallbackServerContext* context,
    const v1::ClusterStatusRequest* /*request*/,
    v1::ClusterStatusResponse* response) {
  *response = cluster_status_();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace peergrid
