#include "node/node.h"

#include <grpcpp/grpcpp.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <exception>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "node/common/address.h"
#include "node/common/log.h"
#include "node/common/machine.h"
#include "node/common/version.h"
#include "node/jobs_service.h"
#include "node/process_metrics.h"
#include "node/rpc_metrics.h"

namespace peergrid {
namespace {

constexpr uint16_t kDefaultGrpcPort = 7420;

void RegisterNodeGauges(prometheus::Registry& registry, double cores_donated) {
  prometheus::BuildGauge()
      .Name("peergrid_build_info")
      .Help("Always 1; labelled with the version of the running node.")
      .Register(registry)
      .Add({{"version", Version()}})
      .Set(1);
  prometheus::BuildGauge()
      .Name("peergrid_machine_cores")
      .Help("Online CPU cores of the machine the node runs on.")
      .Register(registry)
      .Add({})
      .Set(MachineCores());
  prometheus::BuildGauge()
      .Name("peergrid_cores_donated")
      .Help("Cores this node offers to the grid.")
      .Register(registry)
      .Add({})
      .Set(cores_donated);
}

}  // namespace

absl::Status ValidateNodeOptions(const NodeOptions& options) {
  absl::StatusOr<HostPort> listen = ParseHostPort(options.listen);
  if (!listen.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen: ", listen.status().message()));
  }
  if (!IsLoopbackHost(listen->host) && !options.insecure) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--listen=", options.listen,
        " is not a loopback address: peers could reach this node without "
        "authentication. Listen on 127.0.0.1, or pass --insecure to accept "
        "that risk on a trusted network."));
  }
  if (!options.advertise.empty()) {
    absl::StatusOr<HostPort> advertise = ParseHostPort(options.advertise);
    if (!advertise.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--advertise: ", advertise.status().message()));
    }
    if (IsWildcardHost(advertise->host) || advertise->port == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--advertise=", options.advertise,
          ": peers cannot dial a wildcard host or port 0; give the address "
          "they should use"));
    }
  } else if (IsWildcardHost(listen->host)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--listen=", options.listen,
        " listens on every interface; pass --advertise=HOST:PORT with the "
        "address peers should dial"));
  }
  if (!options.metrics.empty()) {
    absl::StatusOr<HostPort> metrics = ParseHostPort(options.metrics);
    if (!metrics.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--metrics: ", metrics.status().message()));
    }
  }
  if (options.name.size() > 128 ||
      std::any_of(options.name.begin(), options.name.end(), [](char c) {
        return absl::ascii_isspace(static_cast<unsigned char>(c)) ||
               absl::ascii_iscntrl(static_cast<unsigned char>(c));
      })) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--name='", options.name,
        "': use at most 128 characters without spaces or control characters"));
  }
  const int machine_cores = MachineCores();
  if (options.cores < 0 || options.cores > machine_cores) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--cores=", options.cores, ": must be from 1 to ", machine_cores,
        " (this machine's cores), or 0 for all of them"));
  }
  if (options.grpc_max_message_bytes < (1 << 20)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--grpc-max-message-bytes=", options.grpc_max_message_bytes,
        ": must be at least 1048576 (1 MiB)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Node>> Node::Start(const NodeOptions& options) {
  if (absl::Status valid = ValidateNodeOptions(options); !valid.ok()) {
    return valid;
  }
  std::unique_ptr<Node> node(new Node(options));
  if (absl::Status started = node->StartServing(); !started.ok()) {
    node->Shutdown(absl::ZeroDuration());
    return started;
  }
  return node;
}

Node::Node(const NodeOptions& options)
    : options_(options),
      cores_donated_(options.cores > 0 ? options.cores : MachineCores()),
      start_time_unix_ms_(absl::ToUnixMillis(absl::Now())),
      registry_(std::make_shared<prometheus::Registry>()) {}

Node::~Node() {
  Shutdown(absl::Milliseconds(500));
  // civetweb's stop polls every 2 s, so this may block that long; the node
  // command exits without it (see node_command.cc).
  exposer_.reset();
}

absl::Status Node::StartServing() {
  const HostPort listen = *ParseHostPort(options_.listen);
  RegisterNodeGauges(*registry_, cores_donated_);

  jobs_service_ = std::make_unique<JobsService>([this] {
    v1::ClusterStatusResponse response;
    v1::MemberStatus* self = response.add_members();
    *self->mutable_advertisement() = CurrentAdvertisement();
    self->set_state(v1::MEMBER_STATE_ALIVE);
    response.set_self(self->advertisement().name());
    return response;
  });

  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(options_.listen, grpc::InsecureServerCredentials(),
                           &bound_port);
  // gRPC turns SO_REUSEPORT on by default, which would let a second node
  // silently share a port with the first.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  const int max_bytes = static_cast<int>(options_.grpc_max_message_bytes);
  builder.SetMaxReceiveMessageSize(max_bytes);
  builder.SetMaxSendMessageSize(max_bytes);
  builder.RegisterService(jobs_service_.get());
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(
      std::make_unique<RpcMetricsInterceptorFactory>(*registry_));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || bound_port == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", options_.listen,
        ": the address is in use or not available on this machine"));
  }

  if (!options_.advertise.empty()) {
    grpc_address_ = options_.advertise;
  } else {
    grpc_address_ =
        HostPort{listen.host, static_cast<uint16_t>(bound_port)}.ToString();
  }
  name_ = options_.name;
  if (name_.empty()) {
    name_ = bound_port == kDefaultGrpcPort
                ? HostName()
                : absl::StrCat(HostName(), ":", bound_port);
  }

  if (!options_.metrics.empty()) {
    const HostPort metrics = *ParseHostPort(options_.metrics);
    try {
      exposer_ = std::make_unique<prometheus::Exposer>(metrics.ToString(),
                                                       /*num_threads=*/1);
    } catch (const std::exception& error) {
      return absl::UnavailableError(absl::StrCat(
          "cannot serve metrics on ", options_.metrics,
          ": the address is in use or not available on this machine (",
          error.what(), ")"));
    }
    exposer_->RegisterCollectable(registry_);
    process_metrics_ = std::make_shared<ProcessMetrics>();
    // The exposer holds collectables weakly; the node owns them.
    exposer_->RegisterCollectable(process_metrics_);
    const std::vector<int> ports = exposer_->GetListeningPorts();
    metrics_address_ =
        HostPort{metrics.host,
                 static_cast<uint16_t>(ports.empty() ? 0 : ports.front())}
            .ToString();
  }
  {
    absl::MutexLock lock(&advertisement_mu_);
    advertisement_.set_name(name_);
    advertisement_.set_grpc_address(grpc_address_);
    advertisement_.set_metrics_address(metrics_address_);
    advertisement_.set_machine_cores(static_cast<uint32_t>(MachineCores()));
    advertisement_.set_cores_donated(cores_donated_);
    advertisement_.set_version(Version());
    advertisement_.set_start_time_unix_ms(start_time_unix_ms_);
  }
  LogInfo("node %s serving gRPC on %s, metrics on %s", name_, grpc_address_,
          metrics_address_.empty() ? "(off)" : metrics_address_);
  return absl::OkStatus();
}

v1::Advertisement Node::CurrentAdvertisement() const {
  v1::Advertisement ad;
  {
    absl::MutexLock lock(&advertisement_mu_);
    ad = advertisement_;
  }
  // Nothing runs tasks yet, so every donated core is free.
  ad.set_cores_free(cores_donated_);
  ad.set_load_average(LoadAverage1m());
  ad.set_memory_free_bytes(MemoryAvailableBytes());
  return ad;
}

void Node::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now() +
                      absl::ToChronoMilliseconds(grace));
    server_->Wait();
  }
}

}  // namespace peergrid
