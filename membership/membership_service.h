// The peergrid.v1.Membership gRPC service: thin handlers that hand each
// message to a Membership. Register it on the node's grpc::ServerBuilder.
#ifndef PEERGRID_MEMBERSHIP_MEMBERSHIP_SERVICE_H_
#define PEERGRID_MEMBERSHIP_MEMBERSHIP_SERVICE_H_

#include <atomic>

#include "membership/membership.h"
#include "proto/membership.grpc.pb.h"

namespace peergrid {

// Borrows the Membership, which must outlive the server (or be detached
// first). Handlers never block: a ping is answered inline, an indirect ping
// when the relayed ping ends. Until a Membership is attached, calls are
// answered UNAVAILABLE: so the server can bind port 0 first and the
// Membership be built with the address it got.
class MembershipService final : public v1::Membership::CallbackService {
 public:
  MembershipService() = default;
  explicit MembershipService(Membership* membership)
      : membership_(membership) {}

  // Thread-safe. Null detaches.
  void set_membership(Membership* membership) { membership_ = membership; }

  grpc::ServerUnaryReactor* SendPing(grpc::CallbackServerContext* context,
                                     const v1::Ping* request,
                                     v1::Ack* response) override;
  grpc::ServerUnaryReactor* SendIndirectPing(
      grpc::CallbackServerContext* context,
      const v1::IndirectPingRequest* request,
      v1::IndirectPingResponse* response) override;
  grpc::ServerUnaryReactor* PushPull(grpc::CallbackServerContext* context,
                                     const v1::PushPullRequest* request,
                                     v1::PushPullResponse* response) override;

 private:
  std::atomic<Membership*> membership_{nullptr};
};

}  // namespace peergrid

#endif  // PEERGRID_MEMBERSHIP_MEMBERSHIP_SERVICE_H_
