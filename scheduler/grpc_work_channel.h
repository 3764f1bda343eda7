// A WorkChannel to a remote worker over the gRPC `Work.Open` stream.
#ifndef PEERGRID_SCHEDULER_GRPC_WORK_CHANNEL_H_
#define PEERGRID_SCHEDULER_GRPC_WORK_CHANNEL_H_

#include <cstdint>
#include <functional>
#include <memory>

#include "scheduler/work_channel.h"

namespace grpc {
class ChannelCredentials;
}

namespace peergrid::scheduler {

// Returns a factory that dials each worker's address (one gRPC channel per
// address, reused) with `credentials` (null: insecure) and opens a stream.
// Messages up to `max_message_bytes` are accepted. When `trust_generation`
// (TLS: changes with the CA or CRL) changes, the channels are dropped and
// later streams dial afresh, meeting the handshake's checks again.
WorkChannelFactory GrpcWorkChannelFactory(
    std::shared_ptr<grpc::ChannelCredentials> credentials,
    int max_message_bytes,
    std::function<uint64_t()> trust_generation = nullptr);

}  // namespace peergrid::scheduler

#endif  // PEERGRID_SCHEDULER_GRPC_WORK_CHANNEL_H_
