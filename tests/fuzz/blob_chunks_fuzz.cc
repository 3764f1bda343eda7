// An origin's FetchBlob stream as a worker checks it (BlobChunkChecker):
// any sequence of chunks is taken in order or refused with a status.
#include <cstddef>
#include <cstdint>
#include <string>

#include "proto/task.pb.h"
#include "tests/fuzz/fuzz_input.h"
#include "worker/blob_chunks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  peergrid::fuzz::FuzzInput input(data, size);
  peergrid::worker::BlobChunkChecker checker(input.Piece());
  uint64_t accepted = 0;
  while (!input.empty()) {
    peergrid::v1::BlobChunk chunk;
    if (!chunk.ParseFromString(input.Piece())) continue;
    if (!checker.Accept(chunk).ok()) break;
    accepted += chunk.data().size();
    // What it lets through never runs past what the stream declared.
    if (accepted != checker.received() || accepted > chunk.total_size()) {
      __builtin_trap();
    }
  }
  (void)checker.Complete();
  return 0;
}
