// Counts every gRPC request the node serves, by method and status code, and
// times it, through a server interceptor registered on the node's one server.
//
// Labels stay bounded: `method` takes only the node's registered methods
// (gRPC answers unknown ones before interceptors run), `code` one of the 17
// status codes. A call that ends without a status (the client went away)
// counts as CANCELLED.
#ifndef PEERGRID_NODE_RPC_METRICS_H_
#define PEERGRID_NODE_RPC_METRICS_H_

#include <grpcpp/support/server_interceptor.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>

namespace peergrid {

// Creates one interceptor per call. The families live in the registry,
// which must outlive the server this factory is installed on.
class RpcMetricsInterceptorFactory
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcMetricsInterceptorFactory(prometheus::Registry& registry);

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& seconds_;
};

}  // namespace peergrid

#endif  // PEERGRID_NODE_RPC_METRICS_H_
