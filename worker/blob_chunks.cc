#include "worker/blob_chunks.h"

#include "absl/strings/str_cat.h"

namespace peergrid::worker {

absl::Status BlobChunkChecker::Accept(const v1::BlobChunk& chunk) {
  // An empty sha256 is the origin's own shorthand for "the one asked for".
  if (!chunk.sha256().empty() && chunk.sha256() != sha256_) {
    return absl::DataLossError(absl::StrCat("asked for blob ", sha256_,
                                            ", got a chunk of ",
                                            chunk.sha256().substr(0, 64)));
  }
  if (!started_) {
    started_ = true;
    total_ = chunk.total_size();
  } else if (chunk.total_size() != total_) {
    return absl::DataLossError(
        absl::StrCat("blob ", sha256_, " changed its size from ", total_,
                     " to ", chunk.total_size(), " bytes"));
  }
  if (chunk.offset() != received_) {
    return absl::DataLossError(absl::StrCat("chunk at offset ", chunk.offset(),
                                            ", expected ", received_));
  }
  if (chunk.data().size() > total_ - received_) {
    return absl::DataLossError(absl::StrCat(
        "blob ", sha256_, " sends more than the ", total_, " bytes it said"));
  }
  received_ += chunk.data().size();
  return absl::OkStatus();
}

absl::Status BlobChunkChecker::Complete() const {
  if (received_ == total_) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat("blob ", sha256_, " ended after ",
                                          received_, " of ", total_, " bytes"));
}

}  // namespace peergrid::worker
