#include "worker/input_stager.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "worker/metrics.h"
#include "worker/worker.h"

namespace peergrid::worker {

InputStager::InputStager(BlobCache& cache, WorkerMetrics& metrics)
    : cache_(cache), metrics_(metrics) {}

void InputStager::Stage(std::vector<std::string> sha256s,
                        std::shared_ptr<BlobSource> source, std::string origin,
                        Done done) {
  std::vector<BlobRef> pins;
  std::vector<std::string> missing;
  for (std::string& sha : sha256s) {
    auto ref = cache_.Get(sha);
    if (ref.ok()) {
      metrics_.blob_cache_hits->Increment();
      pins.push_back(std::move(*ref));
    } else {
      metrics_.blob_cache_misses->Increment();
      missing.push_back(std::move(sha));
    }
  }
  if (missing.empty()) {
    done(std::move(pins));
    return;
  }
  // Shared by the fetches; the last one to complete calls `done`.
  struct Pending {
    absl::Mutex mu;
    int left;
    std::vector<BlobRef> pins;
    std::string error;
    Done done;
  };
  auto pending = std::make_shared<Pending>();
  pending->left = static_cast<int>(missing.size());
  pending->pins = std::move(pins);
  pending->done = std::move(done);
  for (const std::string& sha : missing) {
    Fetch(sha, source, origin, [pending, sha](absl::StatusOr<BlobRef> ref) {
      {
        absl::MutexLock lock(&pending->mu);
        if (ref.ok()) {
          pending->pins.push_back(std::move(*ref));
        } else if (pending->error.empty()) {
          pending->error = absl::StrCat("cannot get input blob ", sha, ": ",
                                        ref.status().message());
        }
        if (--pending->left > 0) return;
      }
      // The last fetch: no other thread touches `pending` now.
      if (!pending->error.empty()) {
        pending->done(absl::UnavailableError(pending->error));
      } else {
        pending->done(std::move(pending->pins));
      }
    });
  }
}

void InputStager::Fetch(const std::string& sha256,
                        const std::shared_ptr<BlobSource>& source,
                        const std::string& origin, FetchDone done) {
  {
    absl::MutexLock lock(&mu_);
    auto [it, first] = fetching_.try_emplace(sha256);
    it->second.push_back(std::move(done));
    if (!first) return;
  }
  if (source == nullptr) {
    CompleteFetch(sha256, absl::FailedPreconditionError(
                              "the origin offers no blob source"));
    return;
  }
  const std::string temp = cache_.TempPath();
  source->Fetch(
      sha256, temp,
      [this, sha256, temp, source, origin](absl::StatusOr<uint64_t> bytes) {
        absl::StatusOr<BlobRef> ref = absl::UnknownError("");
        if (bytes.ok()) {
          metrics_.blob_fetched_bytes->Increment(static_cast<double>(*bytes));
          ref = cache_.Commit(sha256, temp);
          if (ref.status().code() == absl::StatusCode::kDataLoss) {
            metrics_.blob_corrupt->Increment();
            LogWarning("blob %s from %s refused: %s", sha256, origin,
                       ref.status().message());
          }
        } else {
          unlink(temp.c_str());
          ref = bytes.status();
        }
        metrics_.blob_cache_bytes->Set(
            static_cast<double>(cache_.stats().bytes));
        CompleteFetch(sha256, std::move(ref));
      });
}

void InputStager::CompleteFetch(const std::string& sha256,
                                absl::StatusOr<BlobRef> ref) {
  std::vector<FetchDone> waiters;
  {
    absl::MutexLock lock(&mu_);
    auto it = fetching_.find(sha256);
    if (it == fetching_.end()) return;
    waiters = std::move(it->second);
    fetching_.erase(it);
  }
  for (FetchDone& waiter : waiters) {
    if (!ref.ok()) {
      waiter(ref.status());
    } else {
      // Each waiter holds a pin of its own.
      waiter(cache_.Get(sha256));
    }
  }
}

}  // namespace peergrid::worker
