#include "scheduler/grpc_work_channel.h"

#include <grpcpp/grpcpp.h>

#include <deque>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "proto/work.grpc.pb.h"

namespace peergrid::scheduler {
namespace {

// The stream's reactor. It keeps itself alive until gRPC calls OnDone; the
// handle below keeps it alive as long as the dispatcher holds the channel.
//
// Writes may start from any thread. A hold keeps OnDone from running while
// writes can still start; it is released once, when the read side ends or
// the channel is closed, after which no write starts.
class WorkStream
    : public grpc::ClientBidiReactor<v1::WorkFromOrigin, v1::WorkFromWorker> {
 public:
  WorkStream(std::shared_ptr<WorkChannelEvents> events)
      : events_(std::move(events)) {}

  void Start(v1::Work::Stub& stub, const v1::OpenWork& open,
             std::shared_ptr<WorkStream> self) {
    self_ = std::move(self);
    v1::WorkFromOrigin first;
    *first.mutable_open() = open;
    // Results and credits that queue up during a write come coalesced.
    first.mutable_open()->set_accept_batches(true);
    stub.async()->Open(&context_, this);
    AddHold();
    Enqueue(std::move(first));
    StartRead(&incoming_);
    StartCall();
  }

  void Enqueue(v1::WorkFromOrigin message) {
    absl::MutexLock lock(&mu_);
    if (hold_released_) return;
    outgoing_.push_back(std::move(message));
    if (!writing_) {
      writing_ = true;
      StartWrite(&outgoing_.front());
    }
  }

  void Close() {
    context_.TryCancel();
    ReleaseHold();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    outgoing_.pop_front();
    if (!ok || hold_released_ || outgoing_.empty()) {
      writing_ = false;
      if (!ok) outgoing_.clear();
      return;
    }
    StartWrite(&outgoing_.front());
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      ReleaseHold();
      return;
    }
    if (incoming_.has_credits()) {
      events_->OnCredits(incoming_.credits().slots());
    } else if (incoming_.has_result()) {
      events_->OnResult(std::move(*incoming_.mutable_result()));
    } else if (incoming_.has_batch()) {
      // Results first: their credits come after them, as the worker sends.
      v1::WorkBatch& batch = *incoming_.mutable_batch();
      for (v1::WorkResult& result : *batch.mutable_results()) {
        events_->OnResult(std::move(result));
      }
      if (batch.credits().slots() > 0) {
        events_->OnCredits(batch.credits().slots());
      }
    }
    StartRead(&incoming_);
  }

  void OnDone(const grpc::Status& status) override {
    events_->OnClosed(status.ok() ? absl::OkStatus()
                                  : absl::UnavailableError(absl::StrCat(
                                        status.error_message(), " (code ",
                                        status.error_code(), ")")));
    self_.reset();  // May delete this.
  }

 private:
  void ReleaseHold() {
    bool release = false;
    {
      absl::MutexLock lock(&mu_);
      release = !hold_released_;
      hold_released_ = true;
    }
    if (release) RemoveHold();
  }

  grpc::ClientContext context_;
  const std::shared_ptr<WorkChannelEvents> events_;
  v1::WorkFromWorker incoming_;
  std::shared_ptr<WorkStream> self_;

  absl::Mutex mu_;
  std::deque<v1::WorkFromOrigin> outgoing_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool hold_released_ ABSL_GUARDED_BY(mu_) = false;
};

class GrpcWorkChannel : public WorkChannel {
 public:
  explicit GrpcWorkChannel(std::shared_ptr<WorkStream> stream)
      : stream_(std::move(stream)) {}
  ~GrpcWorkChannel() override { stream_->Close(); }

  void SetDemand(uint32_t slots) override {
    v1::WorkFromOrigin message;
    message.mutable_demand()->set_slots_wanted(slots);
    stream_->Enqueue(std::move(message));
  }
  void Submit(v1::Bundle bundle) override {
    v1::WorkFromOrigin message;
    *message.mutable_bundle() = std::move(bundle);
    stream_->Enqueue(std::move(message));
  }
  void Cancel(v1::CancelWork cancel) override {
    v1::WorkFromOrigin message;
    *message.mutable_cancel() = std::move(cancel);
    stream_->Enqueue(std::move(message));
  }
  void Close() override { stream_->Close(); }

 private:
  std::shared_ptr<WorkStream> stream_;
};

}  // namespace

WorkChannelFactory GrpcWorkChannelFactory(
    CredentialsFor credentials, int max_message_bytes,
    std::function<uint64_t()> trust_generation) {
  struct Stubs {
    absl::Mutex mu;
    absl::flat_hash_map<std::string, std::unique_ptr<v1::Work::Stub>> by_address
        ABSL_GUARDED_BY(mu);
    uint64_t trust_generation ABSL_GUARDED_BY(mu) = 0;
  };
  auto stubs = std::make_shared<Stubs>();
  return [stubs, credentials, max_message_bytes, trust_generation](
             const WorkerEndpoint& worker, const v1::OpenWork& open,
             std::shared_ptr<WorkChannelEvents> events)
             -> std::unique_ptr<WorkChannel> {
    v1::Work::Stub* stub = nullptr;
    {
      absl::MutexLock lock(&stubs->mu);
      if (trust_generation) {
        const uint64_t generation = trust_generation();
        if (generation != stubs->trust_generation) {
          stubs->by_address.clear();  // Re-dial: a new handshake for each.
          stubs->trust_generation = generation;
        }
      }
      // By member and address: with TLS a channel is bound to the member
      // it was dialled for (its certificate must carry that name).
      auto& slot =
          stubs->by_address[absl::StrCat(worker.name, "@", worker.address)];
      if (slot == nullptr) {
        std::shared_ptr<grpc::ChannelCredentials> channel_credentials =
            credentials ? credentials(worker.name) : nullptr;
        if (channel_credentials == nullptr) {
          channel_credentials = grpc::InsecureChannelCredentials();
        }
        grpc::ChannelArguments arguments;
        arguments.SetMaxReceiveMessageSize(max_message_bytes);
        arguments.SetMaxSendMessageSize(max_message_bytes);
        // Notice a silent peer (a cut cable) in seconds, not the minutes of
        // TCP's own timeouts; leniently, since a worker saturated by its
        // tasks may answer late (gossip is the fast failure detector).
        arguments.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
        arguments.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
        arguments.SetInt(GRPC_ARG_ENABLE_CHANNELZ, 0);  // Nobody reads it.
        slot = v1::Work::NewStub(
            grpc::CreateCustomChannel(worker.address, channel_credentials,
                                      arguments));
      }
      stub = slot.get();
    }
    auto stream = std::make_shared<WorkStream>(std::move(events));
    stream->Start(*stub, open, stream);
    return std::make_unique<GrpcWorkChannel>(std::move(stream));
  };
}

}  // namespace peergrid::scheduler
