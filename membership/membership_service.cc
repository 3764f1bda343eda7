#include "membership/membership_service.h"

#include <grpcpp/support/server_callback.h>

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/peer_name.h"

namespace peergrid {
namespace {

// Returns a callback that fills `response` and finishes the call.
template <typename Response>
Transport::Callback<Response> Finisher(grpc::ServerUnaryReactor* reactor,
                                       Response* response) {
  return [reactor, response](absl::StatusOr<Response> result) {
    if (!result.ok()) {
      reactor->Finish(
          grpc::Status(static_cast<grpc::StatusCode>(result.status().code()),
                       std::string(result.status().message())));
      return;
    }
    *response = std::move(*result);
    reactor->Finish(grpc::Status::OK);
  };
}

// Checks that the sender speaks for itself, delegates, and maps the
// absl::Status to a gRPC one when the answer comes. With TLS the member
// name a message claims (`from`) must be its sender's certificate name:
// what a member says of itself is taken as first-hand news (it may raise
// its own incarnation), so no one may say it in another's name.
template <typename Request, typename Response>
grpc::ServerUnaryReactor* Serve(
    grpc::CallbackServerContext* context, Membership* membership,
    const Request* request, Response* response,
    void (Membership::*handle)(const Request&, Transport::Callback<Response>)) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const std::string sender = CertificateName(context->auth_context().get());
  if (membership == nullptr) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 "membership not started yet"));
  } else if (!sender.empty() && request->from() != sender) {
    reactor->Finish(grpc::Status(
        grpc::StatusCode::PERMISSION_DENIED,
        absl::StrCat("certificate '", sender, "' may not speak for member '",
                     request->from(), "'")));
  } else {
    (membership->*handle)(*request, Finisher(reactor, response));
  }
  return reactor;
}

}  // namespace

grpc::ServerUnaryReactor* MembershipService::SendPing(
    grpc::CallbackServerContext* context, const v1::Ping* request,
    v1::Ack* response) {
  return Serve(context, membership_.load(), request, response,
               &Membership::HandlePing);
}

grpc::ServerUnaryReactor* MembershipService::SendIndirectPing(
    grpc::CallbackServerContext* context,
    const v1::IndirectPingRequest* request,
    v1::IndirectPingResponse* response) {
  return Serve(context, membership_.load(), request, response,
               &Membership::HandleIndirectPing);
}

grpc::ServerUnaryReactor* MembershipService::PushPull(
    grpc::CallbackServerContext* context, const v1::PushPullRequest* request,
    v1::PushPullResponse* response) {
  return Serve(context, membership_.load(), request, response,
               &Membership::HandlePushPull);
}

}  // namespace peergrid
