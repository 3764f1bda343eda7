// What a worker accepts of an origin's FetchBlob stream (blob_chunks.h).
#include "worker/blob_chunks.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

namespace peergrid::worker {
namespace {

using ::testing::HasSubstr;

v1::BlobChunk Chunk(const std::string& sha, uint64_t offset, uint64_t total,
                    const std::string& data) {
  v1::BlobChunk chunk;
  chunk.set_sha256(sha);
  chunk.set_offset(offset);
  chunk.set_total_size(total);
  chunk.set_data(data);
  return chunk;
}

TEST(BlobChunkCheckerTest, TakesChunksInOrderUpToTheirTotal) {
  BlobChunkChecker checker("abc");
  EXPECT_TRUE(checker.Accept(Chunk("abc", 0, 6, "xyz")).ok());
  EXPECT_FALSE(checker.Complete().ok());
  EXPECT_TRUE(checker.Accept(Chunk("", 3, 6, "uvw")).ok());
  EXPECT_TRUE(checker.Complete().ok());
  EXPECT_EQ(checker.received(), 6u);
}

TEST(BlobChunkCheckerTest, RefusesWhatAHostileOriginMightSend) {
  struct Case {
    const char* what;
    std::vector<v1::BlobChunk> chunks;  // The last one is refused.
    const char* message;
  };
  const std::vector<Case> cases = {
      {"another blob", {Chunk("zzz", 0, 3, "xyz")}, "got a chunk of zzz"},
      {"a gap",
       {Chunk("abc", 0, 6, "xy"), Chunk("abc", 3, 6, "z")},
       "chunk at offset 3, expected 2"},
      {"an overlap",
       {Chunk("abc", 0, 6, "xyz"), Chunk("abc", 1, 6, "z")},
       "expected 3"},
      {"more than declared", {Chunk("abc", 0, 2, "xyz")}, "more than the 2"},
      {"a size that changes",
       {Chunk("abc", 0, 6, "xyz"), Chunk("abc", 3, 1 << 30, "z")},
       "changed its size"},
      {"a huge offset",
       {Chunk("abc", ~uint64_t{0}, ~uint64_t{0}, "x")},
       "expected 0"},
  };
  for (const Case& c : cases) {
    BlobChunkChecker checker("abc");
    for (size_t i = 0; i + 1 < c.chunks.size(); ++i) {
      ASSERT_TRUE(checker.Accept(c.chunks[i]).ok()) << c.what;
    }
    const absl::Status refused = checker.Accept(c.chunks.back());
    EXPECT_EQ(refused.code(), absl::StatusCode::kDataLoss) << c.what;
    EXPECT_THAT(refused.message(), HasSubstr(c.message)) << c.what;
  }
}

}  // namespace
}  // namespace peergrid::worker
