// A BlobSource that calls Work.FetchBlob on the origin over gRPC.
#ifndef PEERGRID_WORKER_BLOB_FETCHER_H_
#define PEERGRID_WORKER_BLOB_FETCHER_H_

#include <memory>

#include "absl/time/time.h"
#include "worker/worker.h"

namespace grpc {
class Channel;
}

namespace peergrid::worker {

// Each Fetch is one FetchBlob call with `timeout`, writing chunks to the
// file as they arrive (checking order and total size; the blob cache
// verifies the hash). The source waits for its calls on destruction.
std::unique_ptr<BlobSource> MakeGrpcBlobSource(
    std::shared_ptr<grpc::Channel> channel,
    absl::Duration timeout = absl::Minutes(10));

}  // namespace peergrid::worker

#endif  // PEERGRID_WORKER_BLOB_FETCHER_H_
