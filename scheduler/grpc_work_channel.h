// A WorkChannel to a remote worker over the gRPC `Work.Open` stream.
#ifndef PEERGRID_SCHEDULER_GRPC_WORK_CHANNEL_H_
#define PEERGRID_SCHEDULER_GRPC_WORK_CHANNEL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "scheduler/work_channel.h"

namespace grpc {
class ChannelCredentials;
}

namespace peergrid::scheduler {

// The credentials to dial the member named by the argument with: with TLS,
// ones that accept only that member's certificate. Null, or null returned:
// insecure.
using CredentialsFor = std::function<std::shared_ptr<grpc::ChannelCredentials>(
    const std::string& member)>;

// Returns a factory that dials each worker's address (one gRPC channel per
// worker, reused) with `credentials` and opens a stream.
// Messages up to `max_message_bytes` are accepted. When `trust_generation`
// (TLS: changes with the CA or CRL) changes, the channels are dropped and
// later streams dial afresh, meeting the handshake's checks again.
WorkChannelFactory GrpcWorkChannelFactory(
    CredentialsFor credentials, int max_message_bytes,
    std::function<uint64_t()> trust_generation = nullptr);

}  // namespace peergrid::scheduler

#endif  // PEERGRID_SCHEDULER_GRPC_WORK_CHANNEL_H_
