// BlobCache: content-addressed files on disk under a directory, each named
// by its SHA-256 (lower-case hex) and verified on arrival, bounded in bytes
// with least-recently-used eviction, kept across restarts (the directory is
// scanned at Open, most recently modified first).
//
// A blob in use by a task is pinned (BlobRef) and never evicted while
// pinned; the cache may then stay above its bound until the pin goes.
//
// Thread safety: all methods are thread-safe.
#ifndef PEERGRID_WORKER_BLOB_CACHE_H_
#define PEERGRID_WORKER_BLOB_CACHE_H_

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace peergrid::worker {

class BlobCache;

// A pin on a cached blob; the file at path() stays while it lives.
class BlobRef {
 public:
  BlobRef() = default;
  BlobRef(BlobRef&& other) noexcept { *this = std::move(other); }
  BlobRef& operator=(BlobRef&& other) noexcept;
  ~BlobRef();
  const std::string& path() const { return path_; }
  const std::string& sha256() const { return sha256_; }
  explicit operator bool() const { return cache_ != nullptr; }

 private:
  friend class BlobCache;
  BlobCache* cache_ = nullptr;
  std::string sha256_;
  std::string path_;
};

class BlobCache {
 public:
  struct Stats {
    uint64_t bytes = 0;
    uint64_t blobs = 0;
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t evictions = 0;
    uint64_t corrupt = 0;
  };

  // Creates `dir` if needed, drops partial files, verifies nothing (files
  // were verified when written), and evicts down to `max_bytes`.
  static absl::StatusOr<std::unique_ptr<BlobCache>> Open(std::string dir,
                                                         uint64_t max_bytes);
  ~BlobCache();

  // A pin if present (a hit), else NotFound (a miss).
  absl::StatusOr<BlobRef> Get(absl::string_view sha256);
  bool Contains(absl::string_view sha256) const;
  // Verifies data against `sha256` (DataLoss if it differs, InvalidArgument
  // if `sha256` is not 64 hex digits), writes it atomically, evicts least
  // recently used unpinned blobs to stay within the bound, returns a pin.
  // A blob larger than the bound is refused (ResourceExhausted).
  absl::StatusOr<BlobRef> Put(absl::string_view sha256, absl::string_view data);
  // For streamed arrivals: a temp file path to write to, then Commit().
  std::string TempPath();
  absl::StatusOr<BlobRef> Commit(absl::string_view sha256,
                                 const std::string& temp_path);

  Stats stats() const;
  uint64_t max_bytes() const { return max_bytes_; }

  static bool IsValidSha256(absl::string_view sha256);

 private:
  struct Entry {
    uint64_t size = 0;
    int pins = 0;
    std::list<std::string>::iterator lru;  // Front: most recent.
  };
  BlobCache(std::string dir, uint64_t max_bytes)
      : dir_(std::move(dir)), max_bytes_(max_bytes) {}
  std::string PathOf(absl::string_view sha256) const;
  BlobRef Pin(const std::string& sha256, Entry& e)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Unpin(const std::string& sha256);
  void EvictLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<BlobRef> Insert(const std::string& sha256,
                                 const std::string& temp, uint64_t size);

  friend class BlobRef;
  const std::string dir_;
  const uint64_t max_bytes_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
  uint64_t next_temp_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace peergrid::worker

#endif  // PEERGRID_WORKER_BLOB_CACHE_H_
