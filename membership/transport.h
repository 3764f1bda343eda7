// How membership talks to peers: three asynchronous unary calls, and hints
// of connections to peers that broke.
//
// Production uses gRPC (grpc_transport.h); tests use an in-memory network
// that can delay, drop and partition messages (tests/membership/sim.h).
#ifndef PEERGRID_MEMBERSHIP_TRANSPORT_H_
#define PEERGRID_MEMBERSHIP_TRANSPORT_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/membership.pb.h"

namespace peergrid {

class Transport {
 public:
  template <typename Response>
  using Callback = std::function<void(absl::StatusOr<Response>)>;

  virtual ~Transport() = default;

  // Each call sends one request to the peer at `address` (HOST:PORT) and
  // calls `done` exactly once: with the peer's answer, or with an error
  // (DEADLINE_EXCEEDED after `timeout`, UNAVAILABLE, ...). `done` runs on a
  // transport thread, never inline in the call, except after Shutdown(); it
  // must not block. Thread-safe.
  // Requests are taken by value: callers move them in.
  virtual void SendPing(const std::string& address, v1::Ping request,
                        absl::Duration timeout, Callback<v1::Ack> done) = 0;
  virtual void SendIndirectPing(const std::string& address,
                                v1::IndirectPingRequest request,
                                absl::Duration timeout,
                                Callback<v1::IndirectPingResponse> done) = 0;
  virtual void PushPull(const std::string& address, v1::PushPullRequest request,
                        absl::Duration timeout,
                        Callback<v1::PushPullResponse> done) = 0;

  // Addresses of the peers whose established connection broke since the
  // last call: their process exited (the kernel closes a killed process's
  // sockets) or they closed the connection. A hint, not proof, that a peer
  // is gone: membership probes it at once instead of at its turn. A
  // partitioned or frozen peer gives no hint. Thread-safe.
  virtual std::vector<std::string> TakeLostConnections() = 0;

  // Cancels calls in flight and waits until their `done` has returned.
  // Later calls fail at once with UNAVAILABLE. Idempotent.
  virtual void Shutdown() = 0;
};

}  // namespace peergrid

#endif  // PEERGRID_MEMBERSHIP_TRANSPORT_H_
