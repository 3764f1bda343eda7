#include "node/rpc_metrics.h"

#include <grpcpp/support/status.h>

#include <chrono>
#include <string>

namespace peergrid {
namespace {

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::OK:
      return "OK";
    case grpc::CANCELLED:
      return "CANCELLED";
    case grpc::UNKNOWN:
      return "UNKNOWN";
    case grpc::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::ABORTED:
      return "ABORTED";
    case grpc::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::INTERNAL:
      return "INTERNAL";
    case grpc::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

class RpcMetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  RpcMetricsInterceptor(std::string method,
                        prometheus::Family<prometheus::Counter>& requests,
                        prometheus::Family<prometheus::Histogram>& seconds)
      : method_(std::move(method)),
        requests_(requests),
        seconds_(seconds),
        start_(std::chrono::steady_clock::now()) {}

  // gRPC deletes the interceptor when the call is done.
  ~RpcMetricsInterceptor() override {
    requests_.Add({{"method", method_}, {"code", CodeName(code_)}}).Increment();
    const std::chrono::duration<double> elapsed =
        std::chrono::steady_clock::now() - start_;
    seconds_.Add({{"method", method_}}, Buckets()).Observe(elapsed.count());
  }

  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      code_ = methods->GetSendStatus().error_code();
    }
    methods->Proceed();
  }

 private:
  static const prometheus::Histogram::BucketBoundaries& Buckets() {
    static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
        0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30};
    return *buckets;
  }

  const std::string method_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& seconds_;
  const std::chrono::steady_clock::time_point start_;
  grpc::StatusCode code_ = grpc::CANCELLED;
};

}  // namespace

RpcMetricsInterceptorFactory::RpcMetricsInterceptorFactory(
    prometheus::Registry& registry)
    : requests_(prometheus::BuildCounter()
                    .Name("peergrid_grpc_server_requests_total")
                    .Help("gRPC requests served by this node, by method and "
                          "status code.")
                    .Register(registry)),
      seconds_(prometheus::BuildHistogram()
                   .Name("peergrid_grpc_server_handling_seconds")
                   .Help("Time from the start of a gRPC request to its end, "
                         "by method. Streams count their whole life.")
                   .Register(registry)) {}

grpc::experimental::Interceptor*
RpcMetricsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new RpcMetricsInterceptor(info->method(), requests_, seconds_);
}

}  // namespace peergrid
