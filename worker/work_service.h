// WorkService: the gRPC face of the worker, `peergrid.v1.Work`.
//
//  * Open: a thin bidi reactor over a WorkSession. The first message must
//    be OpenWork, from the origin it names: with TLS the caller's
//    certificate name, and a current member (see member_address); then Bundle, CancelWork and Demand in any order. The
//    worker answers CreditGrant and WorkResult messages. When the origin
//    half-closes, the stream ends (OK) once every accepted task's result
//    has been written. When the call breaks (cancelled, deadline, peer
//    gone), the session closes at once: its tasks are cancelled (exec
//    process groups killed) within a second. A protocol error ends the
//    stream with INVALID_ARGUMENT or FAILED_PRECONDITION. CancelStreamsFrom
//    ends an origin's streams from outside, as a broken call.
//  * FetchBlob: served only when a BlobProvider is given (the origin side
//    of this node, the scheduler, supplies it); UNIMPLEMENTED otherwise.
//
// Nothing here blocks a gRPC callback thread: task work goes to the
// worker's arena and process reactor, results are written from a queue.
// Register it on the node's one grpc::ServerBuilder (RegisterService) and
// keep it, and the Worker, alive until the server has shut down.
#ifndef PEERGRID_WORKER_WORK_SERVICE_H_
#define PEERGRID_WORKER_WORK_SERVICE_H_

#include <grpcpp/security/credentials.h>

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proto/work.grpc.pb.h"
#include "worker/worker.h"

namespace peergrid::worker {

// The origin side's blobs, for FetchBlob. Called on gRPC threads; should
// be quick (an in-memory or local-file lookup).
class BlobProvider {
 public:
  virtual ~BlobProvider() = default;
  // The content of the blob, or NotFound. `requester` is the calling
  // worker's certificate name (TLS): the blob is then served only if that
  // worker holds a task of a job carrying it, else PermissionDenied. Empty
  // on a plain connection: no name is proven, and any caller is served.
  virtual absl::StatusOr<std::string> ReadBlob(const std::string& sha256,
                                               const std::string& requester) = 0;
};

struct WorkServiceOptions {
  // Credentials for calling FetchBlob on the origin named by its argument
  // (TLS: that member's certificate only); null, or null returned, means
  // insecure.
  std::function<std::shared_ptr<grpc::ChannelCredentials>(
      const std::string& origin)>
      origin_credentials;
  // The address gossip lists for a current member, or an error if the
  // named origin is none. Set (by the node), a work stream is accepted
  // only from a current member, and its blobs are fetched from the listed
  // address, never from one the stream names. Null (tests of the service
  // alone): the stream's origin_address is used.
  std::function<absl::StatusOr<std::string>(const std::string& origin)>
      member_address;
  absl::Duration blob_fetch_timeout = absl::Minutes(10);
  size_t blob_chunk_bytes = 1 << 20;
  // Not owned; may be null. Must outlive the service.
  BlobProvider* blob_provider = nullptr;
};

class WorkService final : public v1::Work::CallbackService {
 public:
  WorkService(Worker& worker, WorkServiceOptions options = {});
  ~WorkService() override;

  grpc::ServerBidiReactor<v1::WorkFromOrigin, v1::WorkFromWorker>* Open(
      grpc::CallbackServerContext* context) override;
  grpc::ServerWriteReactor<v1::BlobChunk>* FetchBlob(
      grpc::CallbackServerContext* context,
      const v1::FetchBlobRequest* request) override;

  // Ends every open stream from the origin named `origin` as if its call
  // broke: its tasks are cancelled within a second. The node calls this
  // when gossip declares the origin dead, which, when the origin vanishes
  // silently (power loss, partition), comes within seconds, long before
  // the connection's keepalive would notice. Returns the number of streams
  // ended. Thread-safe; does not block.
  int CancelStreamsFrom(absl::string_view origin);

  // The open streams by origin; defined and used in work_service.cc only.
  class OpenStreams;

 private:
  Worker& worker_;
  WorkServiceOptions options_;
  std::unique_ptr<OpenStreams> streams_;
};

}  // namespace peergrid::worker

#endif  // PEERGRID_WORKER_WORK_SERVICE_H_
