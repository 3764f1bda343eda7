// The production Transport: the peergrid.v1.Membership gRPC service of each
// peer, called with gRPC's callback API on one cached channel per address.
#ifndef PEERGRID_MEMBERSHIP_GRPC_TRANSPORT_H_
#define PEERGRID_MEMBERSHIP_GRPC_TRANSPORT_H_

#include <cstdint>
#include <functional>
#include <memory>

#include "membership/transport.h"

namespace grpc {
class ChannelCredentials;
}  // namespace grpc

namespace peergrid {

struct GrpcTransportOptions {
  // Null: insecure channels (loopback or --insecure). Otherwise the node's
  // mutual-TLS credentials.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // With TLS: a number that changes when the CA or the CRL does. Every
  // channel is then dialled afresh, so that a revoked peer's certificate
  // meets the handshake again (a connection that stays open is never
  // re-verified by gRPC). Null: channels are kept.
  std::function<uint64_t()> trust_generation;
  // Largest message received (a push-pull of a large grid).
  int max_receive_message_bytes = 16 << 20;
};

// Completions run on gRPC's callback threads. Channels reconnect with a short
// backoff (at most 1 s), so that a restarted or healed peer is reached again
// quickly. TakeLostConnections() reads the channels' connectivity states,
// which gRPC's pollers keep current: a peer's closed sockets show there as
// soon as they close, at no cost to an idle node.
std::unique_ptr<Transport> NewGrpcTransport(GrpcTransportOptions options);

}  // namespace peergrid

#endif  // PEERGRID_MEMBERSHIP_GRPC_TRANSPORT_H_
