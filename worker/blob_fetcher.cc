#include "worker/blob_fetcher.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/client_callback.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "proto/work.grpc.pb.h"
#include "worker/blob_chunks.h"

namespace peergrid::worker {
namespace {

using Done = absl::AnyInvocable<void(absl::StatusOr<uint64_t>)>;

class GrpcBlobSource;

class FetchCall : public grpc::ClientReadReactor<v1::BlobChunk> {
 public:
  FetchCall(GrpcBlobSource& source, std::string sha256, std::string path,
            Done done)
      : source_(source),
        sha256_(std::move(sha256)),
        path_(std::move(path)),
        done_(std::move(done)),
        checker_(sha256_) {}

  void Begin(v1::Work::Stub& stub, absl::Duration timeout) {
    fd_ = open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0)
      error_ = absl::StrCat("cannot write ", path_, ": ", strerror(errno));
    request_.set_sha256(sha256_);
    ctx_->set_deadline(std::chrono::system_clock::now() +
                      absl::ToChronoMilliseconds(timeout));
    stub.async()->FetchBlob(ctx_.get(), &request_, this);
    StartRead(&chunk_);
    StartCall();
  }
  // Both under the source's lock, so that a CancelAll never meets a call
  // that EndCall has ended.
  void Cancel() { ctx_->TryCancel(); }
  void EndCall() { ctx_.reset(); }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows.
    if (error_.empty()) {
      if (absl::Status checked = checker_.Accept(chunk_); !checked.ok()) {
        error_ = std::string(checked.message());
      } else {
        const std::string& d = chunk_.data();
        size_t off = 0;
        while (off < d.size()) {
          const ssize_t n = write(fd_, d.data() + off, d.size() - off);
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) {
            error_ =
                absl::StrCat("cannot write ", path_, ": ", strerror(errno));
            break;
          }
          off += static_cast<size_t>(n);
        }
        written_ += off;
      }
      if (!error_.empty()) ctx_->TryCancel();
    }
    StartRead(&chunk_);
  }

  void OnDone(const grpc::Status& status) override;

 private:
  GrpcBlobSource& source_;
  std::string sha256_, path_;
  Done done_;
  // Ended (reset) in OnDone before the source may go: the call must not
  // outlive the channel the source holds.
  std::unique_ptr<grpc::ClientContext> ctx_ =
      std::make_unique<grpc::ClientContext>();
  v1::FetchBlobRequest request_;
  v1::BlobChunk chunk_;
  BlobChunkChecker checker_;  // After sha256_, which it copies.
  int fd_ = -1;
  uint64_t written_ = 0;
  std::string error_;
};

class GrpcBlobSource : public BlobSource {
 public:
  GrpcBlobSource(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout)
      : stub_(v1::Work::NewStub(channel)), timeout_(timeout) {}
  ~GrpcBlobSource() override {
    CancelAll();
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](absl::flat_hash_set<FetchCall*>* c) { return c->empty(); },
        &calls_));
  }

  void Fetch(const std::string& sha256, const std::string& path,
             Done done) override {
    auto* call = new FetchCall(*this, sha256, path, std::move(done));
    {
      absl::MutexLock lock(&mu_);
      calls_.insert(call);
    }
    call->Begin(*stub_, timeout_);
  }

  void CancelAll() override {
    absl::MutexLock lock(&mu_);
    for (FetchCall* c : calls_) c->Cancel();
  }

  // Ends the call's gRPC call, with the channel still standing, and
  // forgets it. From its OnDone only.
  void Remove(FetchCall* call) {
    absl::MutexLock lock(&mu_);
    call->EndCall();
    calls_.erase(call);
  }

 private:
  std::unique_ptr<v1::Work::Stub> stub_;
  const absl::Duration timeout_;
  absl::Mutex mu_;
  absl::flat_hash_set<FetchCall*> calls_ ABSL_GUARDED_BY(mu_);
};

void FetchCall::OnDone(const grpc::Status& status) {
  if (fd_ >= 0) close(fd_);
  absl::StatusOr<uint64_t> result = written_;
  if (!error_.empty()) {
    result = absl::DataLossError(error_);
  } else if (!status.ok()) {
    result = absl::Status(
        static_cast<absl::StatusCode>(status.error_code()),
        absl::StrCat("FetchBlob ", sha256_, ": ", status.error_message()));
  } else if (absl::Status complete = checker_.Complete(); !complete.ok()) {
    result = complete;
  }
  // The call ends as this leaves the source's set (Remove): from then on the
  // source, and the channel the call ran on, may be destroyed at any
  // moment, by its owner's thread or by `done`.
  Done done = std::move(done_);
  source_.Remove(this);
  done(std::move(result));
  delete this;
}

}  // namespace

std::unique_ptr<BlobSource> MakeGrpcBlobSource(
    std::shared_ptr<grpc::Channel> channel, absl::Duration timeout) {
  return std::make_unique<GrpcBlobSource>(std::move(channel), timeout);
}

}  // namespace peergrid::worker
