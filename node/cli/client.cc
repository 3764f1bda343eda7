#include "node/cli/client.h"

#include <grpcpp/grpcpp.h>

#include <cstdlib>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"

ABSL_FLAG(std::string, node, "",
          "Node to talk to, HOST:PORT; empty means $PEERGRID_NODE, else "
          "127.0.0.1:7420.");

namespace peergrid::cli {

std::string NodeAddress() {
  std::string address = absl::GetFlag(FLAGS_node);
  if (!address.empty()) return address;
  if (const char* env = std::getenv("PEERGRID_NODE"); env && *env) return env;
  return "127.0.0.1:7420";
}

std::unique_ptr<v1::Jobs::Stub> JobsStub(const std::string& address) {
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(-1);
  return v1::Jobs::NewStub(grpc::CreateCustomChannel(
      address, grpc::InsecureChannelCredentials(), arguments));
}

absl::StatusOr<std::string> SubmitJob(v1::Jobs::Stub& stub,
                                      const std::string& address,
                                      const v1::SubmitRequest& request) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(60));
  v1::SubmitResponse response;
  const grpc::Status status = stub.Submit(&context, request, &response);
  if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
    return absl::InvalidArgumentError(
        absl::StrCat("the job was refused: ", status.error_message()));
  }
  if (!status.ok()) {
    return absl::UnavailableError(DescribeCallError(address, status));
  }
  return response.job_id();
}

std::string DescribeCallError(const std::string& address,
                              const grpc::Status& status) {
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
      status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::StrCat("cannot reach the node at ", address, ": ",
                        status.error_message(),
                        " (is 'peergrid node' running there? set --node or "
                        "$PEERGRID_NODE)");
  }
  return absl::StrCat("the node at ", address, " answered ",
                      status.error_message());
}

}  // namespace peergrid::cli
