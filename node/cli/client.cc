#include "node/cli/client.h"

#include <grpcpp/grpcpp.h>

#include <cstdlib>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "node/cli/tls_flags.h"

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

absl::StatusOr<std::unique_ptr<v1::Jobs::Stub>> JobsStub(
    const std::string& address) {
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      grpc::InsecureChannelCredentials();
  const tls::TlsFiles files = ClientTlsFiles();
  if (files.configured()) {
    absl::StatusOr<std::shared_ptr<const tls::TlsCredentials>> tls =
        tls::TlsCredentials::Create(files);
    if (!tls.ok()) return tls.status();
    credentials = (*tls)->ChannelCredentials();
  }
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(-1);
  return v1::Jobs::NewStub(
      grpc::CreateCustomChannel(address, credentials, arguments));
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

namespace {

// What to do about a call that never reached the node. gRPC tells a TLS
// mismatch apart only by its message: a TLS client meets a plain node as
// a failed handshake; a plain client meets a TLS node as a connection closed
// at once (the node took its first bytes for a broken handshake).
std::string ConnectHint(const grpc::Status& status) {
  const std::string& message = status.error_message();
  const bool tls = ClientTlsFiles().configured();
  if (tls && (absl::StrContains(message, "handshake") ||
              absl::StrContains(message, "SSL"))) {
    return "the TLS handshake failed: is the node started with --tls-cert, "
           "--tls-key and --tls-ca of the same cluster CA as your "
           "--tls-ca, and is your certificate unrevoked and unexpired?";
  }
  if (!tls && (absl::StrContains(message, "Socket closed") ||
               absl::StrContains(message, "Connection reset"))) {
    return "the node closed the connection: if it runs with TLS, pass "
           "--tls-cert, --tls-key and --tls-ca (or set $PEERGRID_TLS_CERT, "
           "$PEERGRID_TLS_KEY and $PEERGRID_TLS_CA)";
  }
  return "is 'peergrid node' running there? set --node or $PEERGRID_NODE";
}

}  // namespace

std::string DescribeCallError(const std::string& address,
                              const grpc::Status& status) {
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
      status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::StrCat("cannot reach the node at ", address, ": ",
                        status.error_message(), " (", ConnectHint(status), ")");
  }
  return absl::StrCat("the node at ", address, " answered ",
                      status.error_message());
}

}  // namespace peergrid::cli
