#include "worker/blob_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "tests/worker/test_util.h"
#include "worker/kernel.h"

namespace peergrid::worker {
namespace {

using testing::TempDir;

std::string Data(char c, size_t n) { return std::string(n, c); }

TEST(BlobCacheTest, PutGetAndVerify) {
  TempDir dir;
  auto cache = *BlobCache::Open(dir.path() + "/blobs", 1 << 20);
  const std::string data = "hello blob";
  const std::string sha = Sha256Hex(data);
  EXPECT_EQ(cache->Get(sha).status().code(), absl::StatusCode::kNotFound);
  auto ref = cache->Put(sha, data);
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_EQ(dir.Read("blobs/" + sha), data);
  EXPECT_EQ(ref->path(), dir.path() + "/blobs/" + sha);
  EXPECT_TRUE(cache->Get(sha).ok());
  auto st = cache->stats();
  EXPECT_EQ(st.bytes, data.size());
  EXPECT_EQ(st.hits, 1u);
  EXPECT_EQ(st.misses, 1u);
}

TEST(BlobCacheTest, CorruptBlobIsRefused) {
  TempDir dir;
  auto cache = *BlobCache::Open(dir.path() + "/blobs", 1 << 20);
  const std::string sha = Sha256Hex("the real content");
  auto bad = cache->Put(sha, "something else");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE(cache->Contains(sha));
  EXPECT_EQ(cache->stats().corrupt, 1u);
  // Streamed arrival: a temp file whose content does not match.
  const std::string temp = cache->TempPath();
  dir.Write("blobs/" + temp.substr(temp.rfind('/') + 1), "tampered");
  EXPECT_EQ(cache->Commit(sha, temp).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_FALSE(std::filesystem::exists(temp));
  EXPECT_EQ(cache->Put("not-hex", "x").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(BlobCacheTest, EvictsLeastRecentlyUsedButNotPinned) {
  TempDir dir;
  auto cache = *BlobCache::Open(dir.path() + "/blobs", 300);
  const std::string a = Data('a', 100), b = Data('b', 100), c = Data('c', 100),
                    d = Data('d', 100);
  ASSERT_TRUE(cache->Put(Sha256Hex(a), a).ok());  // Unpinned at once.
  ASSERT_TRUE(cache->Put(Sha256Hex(b), b).ok());
  ASSERT_TRUE(cache->Put(Sha256Hex(c), c).ok());
  ASSERT_TRUE(cache->Get(Sha256Hex(a)).ok());  // a is now most recent.
  ASSERT_TRUE(cache->Put(Sha256Hex(d), d).ok());
  EXPECT_TRUE(cache->Contains(Sha256Hex(a)));
  EXPECT_FALSE(cache->Contains(Sha256Hex(b)));  // Least recently used.
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/blobs/" + Sha256Hex(b)));
  EXPECT_EQ(cache->stats().bytes, 300u);
  EXPECT_EQ(cache->stats().evictions, 1u);

  // A pinned blob survives pressure; the bound is restored when unpinned.
  {
    auto pin = *cache->Get(Sha256Hex(c));
    const std::string e = Data('e', 250);
    ASSERT_TRUE(cache->Put(Sha256Hex(e), e).ok());
    EXPECT_TRUE(cache->Contains(Sha256Hex(c)));
    EXPECT_TRUE(std::filesystem::exists(pin.path()));
  }
  EXPECT_LE(cache->stats().bytes, 300u);
  EXPECT_EQ(
      cache->Put(Sha256Hex(Data('f', 301)), Data('f', 301)).status().code(),
      absl::StatusCode::kResourceExhausted);
}

TEST(BlobCacheTest, KeptAcrossRestarts) {
  TempDir dir;
  const std::string a = Data('a', 100), b = Data('b', 100);
  {
    auto cache = *BlobCache::Open(dir.path() + "/blobs", 1000);
    ASSERT_TRUE(cache->Put(Sha256Hex(a), a).ok());
    ASSERT_TRUE(cache->Put(Sha256Hex(b), b).ok());
  }
  dir.Write("blobs/tmp.1.2", "partial write");
  auto cache = *BlobCache::Open(dir.path() + "/blobs", 1000);
  EXPECT_TRUE(cache->Contains(Sha256Hex(a)));
  EXPECT_TRUE(cache->Contains(Sha256Hex(b)));
  EXPECT_EQ(cache->stats().bytes, 200u);
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/blobs/tmp.1.2"));
  // Reopening with a smaller bound evicts down to it.
  cache.reset();
  cache = *BlobCache::Open(dir.path() + "/blobs", 150);
  EXPECT_EQ(cache->stats().blobs, 1u);
}

TEST(BlobCacheTest, SafeUnderConcurrency) {
  TempDir dir;
  auto cache = *BlobCache::Open(dir.path() + "/blobs", 2000);
  std::vector<std::string> blobs;
  for (int i = 0; i < 40; ++i)
    blobs.push_back(Data(static_cast<char>('A' + i), 100));
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 50; ++round) {
        const std::string& b = blobs[(round * 7 + t) % blobs.size()];
        const std::string sha = Sha256Hex(b);
        auto ref = cache->Get(sha);
        if (!ref.ok()) ref = cache->Put(sha, b);
        if (!ref.ok()) {
          ++errors;
          continue;
        }
        std::ifstream in(ref->path());
        std::string got((std::istreambuf_iterator<char>(in)), {});
        if (got != b) ++errors;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_LE(cache->stats().bytes, 2000u);
}

}  // namespace
}  // namespace peergrid::worker
