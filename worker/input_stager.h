// InputStager: gets the input blobs a task names onto this worker's disk and
// pins them in the blob cache for as long as the task runs.
//
// Blobs already cached are pinned at once. The others are fetched from the
// task's origin through the session's BlobSource, each blob once however
// many tasks (of any session) wait for it: the first asker's source fetches
// it, later askers wait on that fetch.
//
// Thread safety: thread-safe. `done` runs once, on the calling thread when
// every blob was cached, else on the thread completing the last fetch; it
// may call back into the stager.
#ifndef PEERGRID_WORKER_INPUT_STAGER_H_
#define PEERGRID_WORKER_INPUT_STAGER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "worker/blob_cache.h"

namespace peergrid::worker {

class BlobSource;
class WorkerMetrics;

class InputStager {
 public:
  // `cache` and `metrics` must outlive the stager.
  InputStager(BlobCache& cache, WorkerMetrics& metrics);

  using Done = absl::AnyInvocable<void(absl::StatusOr<std::vector<BlobRef>>)>;

  // Pins every blob of `sha256s` (distinct), fetching missing ones from
  // `source`, which is kept alive until its fetches end (null: missing
  // blobs fail). `origin` names the source in log lines. `done` gets one
  // pin per blob, or the first error (FailedPrecondition without a source,
  // else the fetch's error, naming the blob).
  void Stage(std::vector<std::string> sha256s,
             std::shared_ptr<BlobSource> source, std::string origin, Done done);

 private:
  using FetchDone = absl::AnyInvocable<void(absl::StatusOr<BlobRef>)>;
  void Fetch(const std::string& sha256,
             const std::shared_ptr<BlobSource>& source,
             const std::string& origin, FetchDone done);
  void CompleteFetch(const std::string& sha256, absl::StatusOr<BlobRef> ref);

  BlobCache& cache_;
  WorkerMetrics& metrics_;
  absl::Mutex mu_;
  // Fetches in flight, by blob, with everyone waiting for each.
  absl::flat_hash_map<std::string, std::vector<FetchDone>> fetching_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace peergrid::worker

#endif  // PEERGRID_WORKER_INPUT_STAGER_H_
