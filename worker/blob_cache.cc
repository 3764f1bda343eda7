#include "worker/blob_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "worker/kernel.h"

namespace peergrid::worker {
namespace fs = std::filesystem;

BlobRef& BlobRef::operator=(BlobRef&& other) noexcept {
  if (this != &other) {
    if (cache_ != nullptr) cache_->Unpin(sha256_);
    cache_ = other.cache_;
    sha256_ = std::move(other.sha256_);
    path_ = std::move(other.path_);
    other.cache_ = nullptr;
  }
  return *this;
}

BlobRef::~BlobRef() {
  if (cache_ != nullptr) cache_->Unpin(sha256_);
}

bool BlobCache::IsValidSha256(absl::string_view sha256) {
  return sha256.size() == 64 &&
         std::all_of(sha256.begin(), sha256.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

absl::StatusOr<std::unique_ptr<BlobCache>> BlobCache::Open(std::string dir,
                                                           uint64_t max_bytes) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create blob cache ", dir, ": ", ec.message()));
  }
  std::unique_ptr<BlobCache> cache(new BlobCache(dir, max_bytes));
  struct Found {
    std::string sha;
    uint64_t size;
    fs::file_time_type mtime;
  };
  std::vector<Found> found;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    std::error_code e2;
    if (!IsValidSha256(name) || !entry.is_regular_file(e2)) {
      fs::remove_all(entry.path(), e2);  // Partial writes, strays.
      continue;
    }
    found.push_back({name, entry.file_size(e2), entry.last_write_time(e2)});
  }
  std::sort(found.begin(), found.end(),
            [](const Found& a, const Found& b) { return a.mtime > b.mtime; });
  absl::MutexLock lock(&cache->mu_);
  for (const Found& f : found) {
    cache->lru_.push_back(f.sha);
    Entry& e = cache->entries_[f.sha];
    e.size = f.size;
    e.lru = std::prev(cache->lru_.end());
    cache->stats_.bytes += f.size;
    ++cache->stats_.blobs;
  }
  cache->EvictLocked();
  return cache;
}

BlobCache::~BlobCache() = default;

std::string BlobCache::PathOf(absl::string_view sha256) const {
  return absl::StrCat(dir_, "/", sha256);
}

BlobRef BlobCache::Pin(const std::string& sha256, Entry& e) {
  ++e.pins;
  lru_.splice(lru_.begin(), lru_, e.lru);
  BlobRef ref;
  ref.cache_ = this;
  ref.sha256_ = sha256;
  ref.path_ = PathOf(sha256);
  return ref;
}

void BlobCache::Unpin(const std::string& sha256) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(sha256);
  if (it != entries_.end() && --it->second.pins == 0) EvictLocked();
}

absl::StatusOr<BlobRef> BlobCache::Get(absl::string_view sha256) {
  BlobRef ref;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(sha256);
    if (it == entries_.end()) {
      ++stats_.misses;
      return absl::NotFoundError(absl::StrCat("blob ", sha256, " not cached"));
    }
    ++stats_.hits;
    ref = Pin(it->first, it->second);
  }
  // Recency survives restarts through the modification time.
  utimensat(AT_FDCWD, ref.path().c_str(), nullptr, 0);
  return ref;
}

bool BlobCache::Contains(absl::string_view sha256) const {
  absl::MutexLock lock(&mu_);
  return entries_.contains(sha256);
}

std::string BlobCache::TempPath() {
  absl::MutexLock lock(&mu_);
  return absl::StrCat(dir_, "/tmp.", getpid(), ".", next_temp_++);
}

absl::StatusOr<BlobRef> BlobCache::Put(absl::string_view sha256,
                                       absl::string_view data) {
  if (!IsValidSha256(sha256)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not a lower-case hex SHA-256: '", sha256.substr(0, 80), "'"));
  }
  if (data.size() > max_bytes_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("blob of ", data.size(), " bytes exceeds the cache of ",
                     max_bytes_, " bytes"));
  }
  if (Sha256Hex(data) != sha256) {
    absl::MutexLock lock(&mu_);
    ++stats_.corrupt;
    return absl::DataLossError(
        absl::StrCat("blob content does not match its SHA-256 ", sha256));
  }
  const std::string temp = TempPath();
  const int fd =
      open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("cannot write ", temp, ": ", strerror(errno)));
  }
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  close(fd);
  if (done != data.size()) {
    unlink(temp.c_str());
    return absl::InternalError(absl::StrCat("cannot write ", temp));
  }
  return Insert(std::string(sha256), temp, data.size());
}

absl::StatusOr<BlobRef> BlobCache::Commit(absl::string_view sha256,
                                          const std::string& temp_path) {
  auto fail = [&](absl::Status s) {
    unlink(temp_path.c_str());
    return s;
  };
  if (!IsValidSha256(sha256)) {
    return fail(absl::InvalidArgumentError("not a lower-case hex SHA-256"));
  }
  struct stat st;
  if (stat(temp_path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("no file ", temp_path));
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes_) {
    return fail(absl::ResourceExhaustedError(
        absl::StrCat("blob of ", size, " bytes exceeds the cache of ",
                     max_bytes_, " bytes")));
  }
  auto actual = Sha256HexOfFile(temp_path);
  if (!actual.ok()) return fail(actual.status());
  if (*actual != sha256) {
    {
      absl::MutexLock lock(&mu_);
      ++stats_.corrupt;
    }
    return fail(absl::DataLossError(
        absl::StrCat("blob content hashes to ", *actual, ", not ", sha256)));
  }
  return Insert(std::string(sha256), temp_path, size);
}

absl::StatusOr<BlobRef> BlobCache::Insert(const std::string& sha256,
                                          const std::string& temp,
                                          uint64_t size) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(sha256);
  if (it != entries_.end()) {  // Raced with another arrival: keep one.
    unlink(temp.c_str());
    return Pin(sha256, it->second);
  }
  if (rename(temp.c_str(), PathOf(sha256).c_str()) != 0) {
    const int err = errno;
    unlink(temp.c_str());
    return absl::InternalError(
        absl::StrCat("cannot store blob ", sha256, ": ", strerror(err)));
  }
  lru_.push_front(sha256);
  Entry& e = entries_[sha256];
  e.size = size;
  e.lru = lru_.begin();
  stats_.bytes += size;
  ++stats_.blobs;
  BlobRef ref = Pin(sha256, e);
  EvictLocked();
  return ref;
}

void BlobCache::EvictLocked() {
  auto it = lru_.end();
  while (stats_.bytes > max_bytes_ && it != lru_.begin()) {
    --it;
    auto e = entries_.find(*it);
    if (e->second.pins > 0) continue;
    unlink(PathOf(*it).c_str());
    stats_.bytes -= e->second.size;
    --stats_.blobs;
    ++stats_.evictions;
    entries_.erase(e);
    it = lru_.erase(it);
  }
}

BlobCache::Stats BlobCache::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

}  // namespace peergrid::worker
