#include "node/local_work_channel.h"

#include <fstream>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "scheduler/job_manager.h"
#include "worker/worker.h"

namespace peergrid {
namespace {

// Input blobs of the origin's own jobs, read from its job manager.
class JobBlobSource : public worker::BlobSource {
 public:
  explicit JobBlobSource(scheduler::JobManager& jobs) : jobs_(jobs) {}

  void Fetch(const std::string& sha256, const std::string& path,
             absl::AnyInvocable<void(absl::StatusOr<uint64_t>)> done) override {
    absl::StatusOr<std::string> data = jobs_.ReadBlob(sha256);
    if (!data.ok()) {
      done(data.status());
      return;
    }
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(data->data(), static_cast<std::streamsize>(data->size()));
    out.close();  // The worker reads the file as soon as `done` runs.
    if (!out) {
      done(absl::InternalError(absl::StrCat("cannot write ", path)));
      return;
    }
    done(static_cast<uint64_t>(data->size()));
  }

 private:
  scheduler::JobManager& jobs_;
};

class LocalWorkChannel : public scheduler::WorkChannel,
                         public worker::WorkSink {
 public:
  LocalWorkChannel(worker::Worker& worker, scheduler::JobManager& jobs,
                   const v1::OpenWork& open,
                   std::shared_ptr<scheduler::WorkChannelEvents> events)
      : events_(std::move(events)) {
    session_ =
        worker.OpenSession(open, *this, std::make_unique<JobBlobSource>(jobs));
  }

  ~LocalWorkChannel() override { Close(); }

  void OnCredits(const v1::CreditGrant& grant) override {
    events_->OnCredits(grant.slots());
  }
  void OnResult(v1::WorkResult result) override {
    events_->OnResult(std::move(result));
  }

  void SetDemand(uint32_t slots) override { session_->SetDemand(slots); }
  void Submit(v1::Bundle bundle) override {
    session_->Submit(std::move(bundle));
  }
  void Cancel(v1::CancelWork cancel) override { session_->Cancel(cancel); }
  void Close() override {
    {
      absl::MutexLock lock(&mu_);
      if (closed_) return;
      closed_ = true;
    }
    session_->Close();  // No sink call follows.
    events_->OnClosed(absl::CancelledError("closed by the origin"));
  }

 private:
  const std::shared_ptr<scheduler::WorkChannelEvents> events_;
  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  // Last: destroyed first, while the sink (this) is still whole.
  std::unique_ptr<worker::WorkSession> session_;
};

}  // namespace

std::unique_ptr<scheduler::WorkChannel> OpenLocalWorkChannel(
    worker::Worker& worker, scheduler::JobManager& jobs,
    const v1::OpenWork& open,
    std::shared_ptr<scheduler::WorkChannelEvents> events) {
  return std::make_unique<LocalWorkChannel>(worker, jobs, open,
                                            std::move(events));
}

}  // namespace peergrid
