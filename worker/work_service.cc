#include "worker/work_service.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_callback.h>

#include <deque>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "common/peer_name.h"
#include "worker/blob_fetcher.h"

namespace peergrid::worker {

// The open Work streams by origin name. A context is listed from its
// OpenWork until its reactor's OnDone, so it is valid while listed.
class WorkService::OpenStreams {
 public:
  void Add(const std::string& origin, grpc::CallbackServerContext* context) {
    absl::MutexLock lock(&mu_);
    by_origin_[origin].insert(context);
  }
  void Remove(const std::string& origin, grpc::CallbackServerContext* context) {
    absl::MutexLock lock(&mu_);
    auto it = by_origin_.find(origin);
    if (it == by_origin_.end()) return;
    it->second.erase(context);
    if (it->second.empty()) by_origin_.erase(it);
  }
  int CancelFrom(absl::string_view origin) {
    absl::MutexLock lock(&mu_);
    auto it = by_origin_.find(origin);
    if (it == by_origin_.end()) return 0;
    // The reactor's OnCancel runs later, on a gRPC thread.
    for (grpc::CallbackServerContext* context : it->second) {
      context->TryCancel();
    }
    return static_cast<int>(it->second.size());
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string,
                      absl::flat_hash_set<grpc::CallbackServerContext*>>
      by_origin_ ABSL_GUARDED_BY(mu_);
};

namespace {

// Whether the stream's caller may open work for the origin `open` names: with
// TLS (`caller` non-empty) only that origin's own certificate, and, when
// the node lists members, only a current member. Returns where its blobs
// come from (gossip's address for it, never one a request names), or null
// when the origin gives no address; PermissionDenied naming why not.
absl::StatusOr<std::unique_ptr<BlobSource>> AdmitOrigin(
    const WorkServiceOptions& options, const v1::OpenWork& open,
    const std::string& caller) {
  const std::string& origin = open.origin();
  if (!caller.empty() && caller != origin) {
    return absl::PermissionDeniedError(
        absl::StrCat("certificate '", caller,
                     "' may not open work for origin '", origin, "'"));
  }
  std::string blob_address = open.origin_address();
  if (options.member_address) {
    absl::StatusOr<std::string> listed = options.member_address(origin);
    if (!listed.ok()) {
      return absl::PermissionDeniedError(
          absl::StrCat("origin '", origin,
                       "' is not a member of this grid here: ",
                       listed.status().message()));
    }
    blob_address = *std::move(listed);
  }
  if (blob_address.empty()) return nullptr;
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options.origin_credentials) credentials = options.origin_credentials(origin);
  if (credentials == nullptr) credentials = grpc::InsecureChannelCredentials();
  return MakeGrpcBlobSource(grpc::CreateChannel(blob_address, credentials),
                            options.blob_fetch_timeout);
}

class OpenReactor
    : public grpc::ServerBidiReactor<v1::WorkFromOrigin, v1::WorkFromWorker>,
      public WorkSink {
 public:
  OpenReactor(Worker& worker, const WorkServiceOptions& options,
              WorkService::OpenStreams& streams,
              grpc::CallbackServerContext* ctx)
      : worker_(worker), options_(options), streams_(streams), ctx_(ctx) {
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      if (ctx_->IsCancelled()) {
        Broken();
        return;
      }
      bool finish;
      {
        absl::MutexLock lock(&mu_);
        read_closed_ = true;
        finish = ShouldFinishLocked();
      }
      if (finish) Finish(grpc::Status::OK);
      return;
    }
    absl::MutexLock session_lock(&session_mu_);
    if (closed_) return;
    switch (in_.message_case()) {
      case v1::WorkFromOrigin::kOpen: {
        if (session_ != nullptr) {
          return Fail(grpc::StatusCode::INVALID_ARGUMENT,
                      "OpenWork sent twice");
        }
        absl::StatusOr<std::unique_ptr<BlobSource>> blobs = AdmitOrigin(
            options_, in_.open(), CertificateName(ctx_->auth_context().get()));
        if (!blobs.ok()) {
          return Fail(grpc::StatusCode::PERMISSION_DENIED,
                      std::string(blobs.status().message()));
        }
        {
          absl::MutexLock lock(&mu_);
          batching_ = in_.open().accept_batches();
        }
        session_ = worker_.OpenSession(in_.open(), *this, *std::move(blobs));
        origin_ = in_.open().origin();
        streams_.Add(*origin_, ctx_);
        break;
      }
      case v1::WorkFromOrigin::kBundle:
        if (session_ == nullptr) {
          return Fail(grpc::StatusCode::FAILED_PRECONDITION,
                      "the first message must be OpenWork");
        }
        {
          absl::MutexLock lock(&mu_);
          outstanding_ += in_.bundle().tasks_size();
        }
        session_->Submit(std::move(*in_.mutable_bundle()));
        break;
      case v1::WorkFromOrigin::kCancel:
        if (session_ != nullptr) session_->Cancel(in_.cancel());
        break;
      case v1::WorkFromOrigin::kDemand:
        if (session_ == nullptr) {
          return Fail(grpc::StatusCode::FAILED_PRECONDITION,
                      "the first message must be OpenWork");
        }
        session_->SetDemand(in_.demand().slots_wanted());
        break;
      default:
        return Fail(grpc::StatusCode::INVALID_ARGUMENT,
                    "empty or unknown WorkFromOrigin message");
    }
    StartRead(&in_);
  }

  void OnCancel() override { Broken(); }

  void OnWriteDone(bool ok) override {
    const v1::WorkFromWorker* next = nullptr;
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      out_.pop_front();
      if (ok && !out_.empty() && !finished_) {
        next = &out_.front();
      } else {
        writing_ = false;
        if (ok) finish = ShouldFinishLocked();
      }
    }
    if (next != nullptr) StartWrite(next);
    if (finish) Finish(grpc::Status::OK);
  }

  void OnDone() override {
    {
      absl::MutexLock lock(&session_mu_);
      closed_ = true;
      session_.reset();  // Close: cancels tasks; no sink call after this.
      if (origin_.has_value()) streams_.Remove(*origin_, ctx_);
    }
    delete this;
  }

  // WorkSink: from worker threads.
  void OnCredits(const v1::CreditGrant& grant) override {
    v1::WorkFromWorker m;
    *m.mutable_credits() = grant;
    Enqueue(std::move(m), false);
  }
  void OnResult(v1::WorkResult result) override {
    v1::WorkFromWorker m;
    *m.mutable_result() = std::move(result);
    Enqueue(std::move(m), true);
  }

 private:
  void Enqueue(v1::WorkFromWorker m, bool is_result) {
    const v1::WorkFromWorker* first = nullptr;
    {
      absl::MutexLock lock(&mu_);
      if (is_result) --outstanding_;
      if (finished_) return;
      if (batching_ && out_.size() >= 2 && Merge(out_.back(), m)) return;
      out_.push_back(std::move(m));
      if (!writing_) {
        writing_ = true;
        first = &out_.front();
      }
    }
    if (first != nullptr) StartWrite(first);
  }

  // Folds `m` into `tail`, a message queued behind the one being written
  // (made a WorkBatch if it is not one). False if the batch is full.
  static bool Merge(v1::WorkFromWorker& tail, v1::WorkFromWorker& m) {
    constexpr int kMaxBatch = 1024;
    if (!tail.has_batch()) {
      v1::WorkBatch batch;
      if (tail.has_result())
        *batch.add_results() = std::move(*tail.mutable_result());
      if (tail.has_credits()) *batch.mutable_credits() = tail.credits();
      *tail.mutable_batch() = std::move(batch);
    }
    v1::WorkBatch& b = *tail.mutable_batch();
    if (b.results_size() >= kMaxBatch) return false;
    if (m.has_result()) {
      *b.add_results() = std::move(*m.mutable_result());
    } else if (m.has_credits()) {
      b.mutable_credits()->set_slots(b.credits().slots() + m.credits().slots());
      b.mutable_credits()->set_donated(m.credits().donated());
    }
    return true;
  }

  // The call broke: stop the session's tasks now, not when gRPC is done.
  void Broken() {
    {
      absl::MutexLock lock(&mu_);
      if (broken_) return;
      broken_ = true;
    }
    {
      absl::MutexLock lock(&session_mu_);
      closed_ = true;
      if (session_ != nullptr) session_->Close();
    }
    FinishOnce(grpc::Status::CANCELLED);
  }

  void Fail(grpc::StatusCode code, const std::string& message) {
    // Called from OnReadDone, which holds session_mu_.
    LogWarning("work stream from %s: %s", ctx_->peer(), message);
    closed_ = true;
    if (session_ != nullptr) session_->Close();
    FinishOnce(grpc::Status(code, message));
  }

  void FinishOnce(const grpc::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
    }
    Finish(status);
  }

  // After a half-close: finish once every result has been written.
  bool ShouldFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (read_closed_ && outstanding_ <= 0 && !writing_ && !finished_) {
      finished_ = true;
      return true;
    }
    return false;
  }

  Worker& worker_;
  const WorkServiceOptions& options_;
  WorkService::OpenStreams& streams_;
  grpc::CallbackServerContext* ctx_;
  v1::WorkFromOrigin in_;
  // Set once OpenWork has listed this stream in streams_.
  std::optional<std::string> origin_ ABSL_GUARDED_BY(session_mu_);
  // Held while calling into the session from reactions; never taken by
  // sink calls, which take only mu_.
  absl::Mutex session_mu_;
  std::unique_ptr<WorkSession> session_ ABSL_GUARDED_BY(session_mu_);
  bool closed_ ABSL_GUARDED_BY(session_mu_) = false;

  absl::Mutex mu_;
  std::deque<v1::WorkFromWorker> out_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool read_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool batching_ ABSL_GUARDED_BY(mu_) = false;
  int outstanding_ ABSL_GUARDED_BY(mu_) = 0;
};

class BlobWriter : public grpc::ServerWriteReactor<v1::BlobChunk> {
 public:
  BlobWriter(std::string sha256, std::string data, size_t chunk)
      : data_(std::move(data)), chunk_size_(std::max<size_t>(1, chunk)) {
    chunk_.set_sha256(std::move(sha256));
    chunk_.set_total_size(data_.size());
    Next();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::CANCELLED);
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    if (offset_ >= data_.size() && offset_ != 0) {
      return Finish(grpc::Status::OK);
    }
    const size_t n = std::min(chunk_size_, data_.size() - offset_);
    chunk_.set_offset(offset_);
    chunk_.set_data(data_.substr(offset_, n));
    offset_ += n;
    if (n == 0) offset_ = 1;  // An empty blob: one empty chunk, then done.
    StartWrite(&chunk_);
  }
  std::string data_;
  const size_t chunk_size_;
  size_t offset_ = 0;
  v1::BlobChunk chunk_;
};

}  // namespace

WorkService::WorkService(Worker& worker, WorkServiceOptions options)
    : worker_(worker),
      options_(std::move(options)),
      streams_(std::make_unique<OpenStreams>()) {}
WorkService::~WorkService() = default;

grpc::ServerBidiReactor<v1::WorkFromOrigin, v1::WorkFromWorker>*
WorkService::Open(grpc::CallbackServerContext* context) {
  return new OpenReactor(worker_, options_, *streams_, context);
}

int WorkService::CancelStreamsFrom(absl::string_view origin) {
  return streams_->CancelFrom(origin);
}

grpc::ServerWriteReactor<v1::BlobChunk>* WorkService::FetchBlob(
    grpc::CallbackServerContext* context,
    const v1::FetchBlobRequest* request) {
  if (options_.blob_provider == nullptr) {
    class Unimplemented : public grpc::ServerWriteReactor<v1::BlobChunk> {
     public:
      Unimplemented() {
        Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                            "this node serves no blobs"));
      }
      void OnDone() override { delete this; }
    };
    return new Unimplemented;
  }
  auto data = options_.blob_provider->ReadBlob(
      request->sha256(), CertificateName(context->auth_context().get()));
  if (!data.ok()) {
    class Failed : public grpc::ServerWriteReactor<v1::BlobChunk> {
     public:
      explicit Failed(const absl::Status& s) {
        Finish(grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                            std::string(s.message())));
      }
      void OnDone() override { delete this; }
    };
    return new Failed(data.status());
  }
  return new BlobWriter(request->sha256(), std::move(*data),
                        options_.blob_chunk_bytes);
}

}  // namespace peergrid::worker
