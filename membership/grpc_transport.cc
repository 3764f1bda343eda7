#include "membership/grpc_transport.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/client_callback.h>

#include <chrono>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/peer_name.h"
#include "proto/membership.grpc.pb.h"

namespace peergrid {
namespace {

// With TLS, an answer that names its sender must come from that member's
// certificate: a node that answers at another's address cannot ack, or
// hand its state over, in the other's name.
template <typename Response>
grpc::Status CheckResponder(const grpc::ClientContext& context,
                            const Response& response) {
  if constexpr (std::is_same_v<Response, v1::IndirectPingResponse>) {
    return grpc::Status::OK;  // A relay's report, in no one's name.
  } else {
    const std::string responder = CertificateName(context.auth_context().get());
    if (responder.empty() || responder == response.from()) {
      return grpc::Status::OK;
    }
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        absl::StrCat("certificate '", responder,
                                     "' answered as member '", response.from(),
                                     "'"));
  }
}

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

class GrpcTransport final : public Transport {
 public:
  explicit GrpcTransport(GrpcTransportOptions options)
      : options_(std::move(options)) {
    if (!options_.credentials) {
      options_.credentials = grpc::InsecureChannelCredentials();
    }
  }
  ~GrpcTransport() override { Shutdown(); }

  void SendPing(const std::string& address, v1::Ping request,
                absl::Duration timeout, Callback<v1::Ack> done) override {
    Call<v1::Ping, v1::Ack>(
        address, std::move(request), timeout, std::move(done),
        [](v1::Membership::Stub::async_interface* async,
           grpc::ClientContext* context, const v1::Ping* req, v1::Ack* resp,
           std::function<void(grpc::Status)> on_done) {
          async->SendPing(context, req, resp, std::move(on_done));
        });
  }

  void SendIndirectPing(const std::string& address,
                        v1::IndirectPingRequest request, absl::Duration timeout,
                        Callback<v1::IndirectPingResponse> done) override {
    Call<v1::IndirectPingRequest, v1::IndirectPingResponse>(
        address, std::move(request), timeout, std::move(done),
        [](v1::Membership::Stub::async_interface* async,
           grpc::ClientContext* context, const v1::IndirectPingRequest* req,
           v1::IndirectPingResponse* resp,
           std::function<void(grpc::Status)> on_done) {
          async->SendIndirectPing(context, req, resp, std::move(on_done));
        });
  }

  void PushPull(const std::string& address, v1::PushPullRequest request,
                absl::Duration timeout,
                Callback<v1::PushPullResponse> done) override {
    Call<v1::PushPullRequest, v1::PushPullResponse>(
        address, std::move(request), timeout, std::move(done),
        [](v1::Membership::Stub::async_interface* async,
           grpc::ClientContext* context, const v1::PushPullRequest* req,
           v1::PushPullResponse* resp,
           std::function<void(grpc::Status)> on_done) {
          async->PushPull(context, req, resp, std::move(on_done));
        });
  }

  std::vector<std::string> TakeLostConnections() override {
    std::vector<std::string> lost;
    absl::MutexLock lock(&mu_);
    for (auto& [address, peer] : peers_) {
      // Reads the channel's state; never connects.
      grpc_connectivity_state state = peer.channel->GetState(false);
      if (peer.last_state == GRPC_CHANNEL_READY &&
          state != GRPC_CHANNEL_READY) {
        lost.push_back(address);
      }
      peer.last_state = state;
    }
    return lost;
  }

  void Shutdown() override {
    absl::MutexLock lock(&mu_);
    shutdown_ = true;
    for (grpc::ClientContext* context : in_flight_) context->TryCancel();
    mu_.Await(absl::Condition(
        +[](absl::flat_hash_set<grpc::ClientContext*>* calls) {
          return calls->empty();
        },
        &in_flight_));
    peers_.clear();
  }

 private:
  template <typename Request, typename Response>
  struct CallState {
    grpc::ClientContext context;
    Request request;
    Response response;
    Callback<Response> done;
  };

  template <typename Request, typename Response, typename Start>
  void Call(const std::string& address, Request request, absl::Duration timeout,
            Callback<Response> done, Start start) {
    auto* call = new CallState<Request, Response>{
        {}, std::move(request), {}, std::move(done)};
    call->context.set_deadline(std::chrono::system_clock::now() +
                               absl::ToChronoMicroseconds(timeout));
    v1::Membership::Stub* stub = nullptr;
    {
      absl::MutexLock lock(&mu_);
      if (!shutdown_) {
        stub = StubLocked(address);
        in_flight_.insert(&call->context);
      }
    }
    if (stub == nullptr) {
      call->done(absl::UnavailableError("transport shut down"));
      delete call;
      return;
    }
    start(stub->async(), &call->context, &call->request, &call->response,
          [this, call](grpc::Status status) {
            if (status.ok()) {
              status = CheckResponder(call->context, call->response);
            }
            if (status.ok()) {
              call->done(std::move(call->response));
            } else {
              call->done(FromGrpc(status));
            }
            absl::MutexLock lock(&mu_);
            in_flight_.erase(&call->context);
            delete call;
          });
  }

  struct Peer {
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<v1::Membership::Stub> stub;
    // As of the last TakeLostConnections().
    grpc_connectivity_state last_state = GRPC_CHANNEL_IDLE;
  };

  v1::Membership::Stub* StubLocked(const std::string& address)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (options_.trust_generation) {
      const uint64_t generation = options_.trust_generation();
      if (generation != trust_generation_) {
        peers_.clear();
        trust_generation_ = generation;
      }
    }
    auto it = peers_.find(address);
    if (it != peers_.end()) return it->second.stub.get();
    // Dead members' addresses accumulate; dropping the cache now and then
    // only costs a reconnect.
    if (peers_.size() >= 4096) peers_.clear();
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(options_.max_receive_message_bytes);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    // One channel per member: channelz's per-channel counters and trace
    // buffer are memory nobody reads (see node.cc).
    args.SetInt(GRPC_ARG_ENABLE_CHANNELZ, 0);
    // Gossip messages are small: the bandwidth-delay probe would only add
    // an HTTP/2 ping round after each (see node.cc).
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    Peer& peer = peers_[address];
    peer.channel =
        grpc::CreateCustomChannel(address, options_.credentials, args);
    peer.stub = v1::Membership::NewStub(peer.channel);
    return peer.stub.get();
  }

  GrpcTransportOptions options_;
  absl::Mutex mu_;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<std::string, Peer> peers_ ABSL_GUARDED_BY(mu_);
  // options_.trust_generation() when peers_ was last emptied for it.
  uint64_t trust_generation_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_set<grpc::ClientContext*> in_flight_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<Transport> NewGrpcTransport(GrpcTransportOptions options) {
  return std::make_unique<GrpcTransport>(std::move(options));
}

}  // namespace peergrid
