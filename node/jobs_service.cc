#include "node/jobs_service.h"

#include <atomic>
#include <deque>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/peer_name.h"
#include "node/tls/roles.h"
#include "scheduler/dispatcher.h"
#include "scheduler/job_manager.h"

namespace peergrid {
namespace {

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

grpc::ServerUnaryReactor* Respond(grpc::CallbackServerContext* context,
                                  const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpc(status));
  return reactor;
}

// Streams a job's results from a given number on, then its final status.
//
// Lifetime: gRPC holds one reference until OnDone; each pending wake-up
// from the job manager holds another; the last one deletes the reactor.
// Exactly one write is outstanding at a time; Finish is called once.
class WatchReactor : public grpc::ServerWriteReactor<v1::WatchEvent> {
 public:
  WatchReactor(scheduler::JobManager& jobs, std::string job_id, uint64_t from)
      : jobs_(jobs), job_id_(std::move(job_id)), next_(from) {}

  void Begin() { Pump(); }

  void OnWriteDone(bool ok) override {
    bool cancel = false;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      cancel = (!ok || done_) && !final_sent_;
    }
    if (cancel) {
      FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "watch ended"));
    } else {
      Pump();
    }
  }

  void OnCancel() override {
    bool now = false;
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
      now = !writing_ && !final_sent_;
    }
    // With a write in flight, OnWriteDone finishes instead.
    if (now) FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
  }

  void OnDone() override { Unref(); }

 private:
  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  void FinishOnce(const grpc::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      if (finish_called_) return;
      finish_called_ = done_ = true;
    }
    Finish(status);
  }

  // Writes the next event if none is in flight, or waits for one.
  void Pump() {
    enum { kNothing, kWrite, kWriteLast, kWait, kFail } action = kNothing;
    absl::Status failure;
    {
      absl::MutexLock lock(&mu_);
      if (done_ || writing_) return;
      if (buffer_.empty()) {
        absl::StatusOr<scheduler::JobManager::Results> results =
            jobs_.Read(job_id_, next_, kReadBatch);
        if (!results.ok()) {
          failure = results.status();
          action = kFail;
        } else {
          for (v1::WatchEvent& event : results->events) {
            *event.mutable_status() = results->status;
            buffer_.push_back(std::move(event));
          }
          next_ += results->events.size();
          if (results->finished) {
            v1::WatchEvent last;
            *last.mutable_status() = results->status;
            buffer_.push_back(std::move(last));
            last_buffered_ = true;
          }
        }
      }
      if (action != kFail) {
        if (buffer_.empty()) {
          action = kWait;
        } else {
          writing_ = true;
          current_ = std::move(buffer_.front());
          buffer_.pop_front();
          action = last_buffered_ && buffer_.empty() ? kWriteLast : kWrite;
          if (action == kWriteLast) final_sent_ = finish_called_ = done_ = true;
        }
      }
    }
    switch (action) {
      case kWrite:
        StartWrite(&current_);
        break;
      case kWriteLast:
        StartWriteAndFinish(&current_, grpc::WriteOptions(), grpc::Status::OK);
        break;
      case kWait: {
        Ref();
        absl::StatusOr<uint64_t> handle =
            jobs_.WakeWhenReady(job_id_, next_, [this] {
              Pump();
              Unref();
            });
        if (!handle.ok()) {
          Unref();
          FinishOnce(ToGrpc(handle.status()));
        }
        break;
      }
      case kFail:
        FinishOnce(ToGrpc(failure));
        break;
      case kNothing:
        break;
    }
  }

  static constexpr size_t kReadBatch = 256;

  scheduler::JobManager& jobs_;
  const std::string job_id_;
  std::atomic<int> refs_{1};

  absl::Mutex mu_;
  uint64_t next_ ABSL_GUARDED_BY(mu_);  // Next result number to read.
  std::deque<v1::WatchEvent> buffer_ ABSL_GUARDED_BY(mu_);
  bool last_buffered_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool final_sent_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;  // No more writes may start.
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
  v1::WatchEvent current_;  // The event being written.
};

}  // namespace

JobsService::JobsService(scheduler::JobManager& jobs,
                         scheduler::Dispatcher& dispatcher,
                         ClusterStatusFn cluster_status)
    : jobs_(jobs),
      dispatcher_(dispatcher),
      cluster_status_(std::move(cluster_status)) {}

grpc::ServerUnaryReactor* JobsService::Submit(
    grpc::CallbackServerContext* context, const v1::SubmitRequest* request,
    v1::SubmitResponse* response) {
  absl::StatusOr<std::string> id = jobs_.Submit(
      request->job(), CertificateName(context->auth_context().get()));
  if (id.ok()) response->set_job_id(*id);
  return Respond(context, id.status());
}

grpc::ServerWriteReactor<v1::WatchEvent>* JobsService::Watch(
    grpc::CallbackServerContext* /*context*/, const v1::WatchRequest* request) {
  auto* reactor =
      new WatchReactor(jobs_, request->job_id(), request->from_result());
  reactor->Begin();
  return reactor;
}

grpc::ServerUnaryReactor* JobsService::Cancel(
    grpc::CallbackServerContext* context, const v1::CancelRequest* request,
    v1::CancelResponse* response) {
  // A submitter may cancel only its own jobs (roles.h); the role check
  // before this handler let it call Cancel at all.
  absl::StatusOr<v1::JobStatus> job = jobs_.Get(request->job_id());
  if (!job.ok()) return Respond(context, job.status());
  if (absl::Status allowed =
          tls::MayCancel(tls::PeerOf(*context->auth_context()),
                         request->job_id(), job->submitter());
      !allowed.ok()) {
    return Respond(context, allowed);
  }
  absl::StatusOr<v1::JobStatus> status =
      dispatcher_.CancelJob(request->job_id());
  if (status.ok()) *response->mutable_status() = *status;
  return Respond(context, status.status());
}

grpc::ServerUnaryReactor* JobsService::ListJobs(
    grpc::CallbackServerContext* context,
    const v1::ListJobsRequest* /*request*/, v1::ListJobsResponse* response) {
  for (v1::JobStatus& job : jobs_.List()) {
    *response->add_jobs() = std::move(job);
  }
  return Respond(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* JobsService::GetJob(
    grpc::CallbackServerContext* context, const v1::GetJobRequest* request,
    v1::JobStatus* response) {
  absl::StatusOr<v1::JobStatus> status = jobs_.Get(request->job_id());
  if (status.ok()) *response = *status;
  return Respond(context, status.status());
}

grpc::ServerUnaryReactor* JobsService::ClusterStatus(
    grpc::CallbackServerContext* context,
    const v1::ClusterStatusRequest* /*request*/,
    v1::ClusterStatusResponse* response) {
  *response = cluster_status_();
  return Respond(context, absl::OkStatus());
}

}  // namespace peergrid
