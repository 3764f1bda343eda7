// The client-facing Jobs service: thin handlers that call the node's parts.
//
// Each handler validates its request, calls the job manager, dispatcher or
// membership view, maps absl::Status to a gRPC status and responds. Handlers
// run on gRPC's callback threads and never block them: Watch streams results
// as the job manager wakes it.
#ifndef PEERGRID_NODE_JOBS_SERVICE_H_
#define PEERGRID_NODE_JOBS_SERVICE_H_

#include <functional>

#include "proto/jobs.grpc.pb.h"

namespace peergrid {

namespace scheduler {
class Dispatcher;
class JobManager;
}  // namespace scheduler

class JobsService final : public v1::Jobs::CallbackService {
 public:
  // Returns this node's view of the grid; called on gRPC threads, so it must
  // be thread-safe and quick (a snapshot, not a network call).
  using ClusterStatusFn = std::function<v1::ClusterStatusResponse()>;

  // All three must outlive the service.
  JobsService(scheduler::JobManager& jobs, scheduler::Dispatcher& dispatcher,
              ClusterStatusFn cluster_status);

  grpc::ServerUnaryReactor* Submit(grpc::CallbackServerContext* context,
                                   const v1::SubmitRequest* request,
                                   v1::SubmitResponse* response) override;
  grpc::ServerWriteReactor<v1::WatchEvent>* Watch(
      grpc::CallbackServerContext* context,
      const v1::WatchRequest* request) override;
  grpc::ServerUnaryReactor* Cancel(grpc::CallbackServerContext* context,
                                   const v1::CancelRequest* request,
                                   v1::CancelResponse* response) override;
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* context,
                                     const v1::ListJobsRequest* request,
                                     v1::ListJobsResponse* response) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* context,
                                   const v1::GetJobRequest* request,
                                   v1::JobStatus* response) override;
  grpc::ServerUnaryReactor* ClusterStatus(
      grpc::CallbackServerContext* context,
      const v1::ClusterStatusRequest* request,
      v1::ClusterStatusResponse* response) override;

 private:
  scheduler::JobManager& jobs_;
  scheduler::Dispatcher& dispatcher_;
  const ClusterStatusFn cluster_status_;
};

}  // namespace peergrid

#endif  // PEERGRID_NODE_JOBS_SERVICE_H_
