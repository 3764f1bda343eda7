// BlobChunkChecker: what a worker accepts of a FetchBlob stream from an
// origin, chunk by chunk, before it writes a byte: chunks in order without
// gaps or overlaps, of the blob asked for, each within the total size the
// first one declared, which never changes. The blob cache then checks the
// SHA-256 of what was written.
//
// Thread safety: none; one per stream, used on that stream's thread.
#ifndef PEERGRID_WORKER_BLOB_CHUNKS_H_
#define PEERGRID_WORKER_BLOB_CHUNKS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "proto/task.pb.h"

namespace peergrid::worker {

class BlobChunkChecker {
 public:
  explicit BlobChunkChecker(std::string sha256) : sha256_(std::move(sha256)) {}

  // OK: write chunk.data() next. DataLoss naming what is wrong otherwise
  // (the stream is then abandoned).
  absl::Status Accept(const v1::BlobChunk& chunk);
  // After the stream ended well: OK if every declared byte came.
  absl::Status Complete() const;

  uint64_t received() const { return received_; }

 private:
  const std::string sha256_;
  bool started_ = false;
  uint64_t total_ = 0;
  uint64_t received_ = 0;
};

}  // namespace peergrid::worker

#endif  // PEERGRID_WORKER_BLOB_CHUNKS_H_
