#include "node/node.h"

#include <grpcpp/grpcpp.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <filesystem>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/address.h"
#include "common/log.h"
#include "common/machine.h"
#include "common/version.h"
#include "membership/grpc_transport.h"
#include "membership/membership_service.h"
#include "membership/scheduler.h"
#include "node/advertiser.h"
#include "node/jobs_service.h"
#include "node/local_work_channel.h"
#include "node/process_metrics.h"
#include "node/prometheus_sd.h"
#include "node/rpc_metrics.h"
#include "node/tls/roles.h"
#include "scheduler/dispatcher.h"
#include "scheduler/grpc_work_channel.h"
#include "scheduler/job_manager.h"
#include "worker/kernel.h"
#include "worker/work_service.h"

namespace peergrid {
namespace {

constexpr uint16_t kDefaultGrpcPort = 7420;

void RegisterNodeGauges(prometheus::Registry& registry) {
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
}

// Workers fetch the inputs of this origin's jobs from its job manager.
class JobBlobProvider : public worker::BlobProvider {
 public:
  explicit JobBlobProvider(scheduler::JobManager& jobs) : jobs_(jobs) {}
  absl::StatusOr<std::string> ReadBlob(const std::string& sha256,
                                       const std::string& requester) override {
    return jobs_.ReadBlob(sha256, requester);
  }

 private:
  scheduler::JobManager& jobs_;
};

}  // namespace

absl::Status ValidateNodeOptions(const NodeOptions& options) {
  absl::StatusOr<HostPort> listen = ParseHostPort(options.listen);
  if (!listen.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen: ", listen.status().message()));
  }
  if (options.insecure && options.tls.configured()) {
    return absl::InvalidArgumentError(
        "--insecure and --tls-* contradict each other: with TLS, any "
        "--listen address is allowed; drop --insecure");
  }
  if (!IsLoopbackHost(listen->host) && !options.insecure &&
      !options.tls.configured()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--listen=", options.listen,
        " is not a loopback address: peers could reach this node without "
        "authentication. Listen on 127.0.0.1, give the node a certificate "
        "(--tls-cert, --tls-key, --tls-ca: see docs/security.md), or pass "
        "--insecure to accept that risk on a trusted network."));
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
  MembershipOptions gossip = options.membership;
  gossip.name = options.name.empty() ? "placeholder" : options.name;
  gossip.advertise_address = "127.0.0.1:1";  // The real one comes at bind.
  gossip.seeds = options.join;
  if (absl::Status valid = ValidateMembershipOptions(gossip); !valid.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("gossip: ", valid.message()));
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
  NodeOptions resolved = options;
  auto registry = std::make_shared<prometheus::Registry>();
  std::shared_ptr<const tls::TlsCredentials> credentials;
  if (options.tls.configured()) {
    tls::TlsOptions tls_options;
    tls_options.registry = registry.get();
    absl::StatusOr<std::shared_ptr<const tls::TlsCredentials>> made =
        tls::TlsCredentials::Create(options.tls, tls_options);
    if (!made.ok()) return made.status();
    credentials = *std::move(made);
    const tls::CertificateInfo& identity = credentials->identity();
    if (identity.role != tls::Role::kNode) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--tls-cert=", options.tls.cert, " is a '",
          identity.role ? tls::RoleName(*identity.role) : "no role",
          "' certificate; a node needs one issued with --role=node"));
    }
    if (resolved.name.empty()) {
      resolved.name = identity.common_name;
    } else if (resolved.name != identity.common_name) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--name=", resolved.name, ", but --tls-cert=", options.tls.cert,
          " is issued to '", identity.common_name,
          "': with TLS a node's name is its certificate's; leave --name out"));
    }
  }
  std::unique_ptr<Node> node(new Node(resolved, std::move(registry)));
  node->tls_ = std::move(credentials);
  if (absl::Status started = node->StartServing(); !started.ok()) {
    node->Shutdown(absl::ZeroDuration());
    return started;
  }
  return node;
}

Node::Node(const NodeOptions& options,
           std::shared_ptr<prometheus::Registry> registry)
    : options_(options),
      start_time_unix_ms_(absl::ToUnixMillis(absl::Now())),
      registry_(std::move(registry)) {}

Node::~Node() {
  Shutdown(absl::Milliseconds(500));
  server_.reset();
  // civetweb's stop polls every 2 s, so this may block that long; the node
  // command exits without it (see node_command.cc).
  exposer_.reset();
  // The rest in the reverse order of building: users before what they use.
  prometheus_sd_.reset();
  advertiser_.reset();
  membership_.reset();
  jobs_service_.reset();
  membership_service_.reset();
  dispatcher_.reset();
  work_service_.reset();
  blob_provider_.reset();
  jobs_.reset();
  worker_.reset();  // Cancels what still runs.
  if (remove_data_dir_) {
    std::error_code ignored;
    std::filesystem::remove_all(data_dir_, ignored);
  }
}

std::shared_ptr<grpc::ChannelCredentials> Node::PeerCredentials() const {
  return tls_ != nullptr ? tls_->ChannelCredentials() : nullptr;
}

void Node::ReloadTrust() {
  if (tls_ != nullptr) tls_->trust()->Reload();
}

scheduler::CredentialsFor Node::MemberCredentials() const {
  if (tls_ == nullptr) return nullptr;
  return [tls = tls_](const std::string& member) {
    return tls->ChannelCredentials(member);
  };
}

std::function<uint64_t()> Node::TrustGeneration() const {
  if (tls_ == nullptr) return nullptr;
  return [trust = tls_->trust()] { return trust->generation(); };
}

absl::Status Node::StartServing() {
  const HostPort listen = *ParseHostPort(options_.listen);
  RegisterNodeGauges(*registry_);

  data_dir_ = options_.data_dir;
  if (data_dir_.empty()) {
    std::string pattern = "/tmp/peergrid-node-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      return absl::InternalError("cannot create a temporary data directory");
    }
    data_dir_ = pattern;
    remove_data_dir_ = true;
  } else {
    std::error_code error;
    std::filesystem::create_directories(data_dir_, error);
    if (error) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--data-dir=", data_dir_, ": cannot create it: ", error.message()));
    }
  }

  worker::WorkerOptions worker_options = options_.worker;
  worker_options.cores = options_.cores;
  worker_options.data_dir = data_dir_;
  worker_options.node_name = options_.name;  // Empty: the origin fills it in.
  absl::StatusOr<std::unique_ptr<worker::Worker>> worker =
      worker::Worker::Create(worker_options, registry_.get());
  if (!worker.ok()) return worker.status();
  worker_ = std::move(*worker);

  scheduler::JobManagerOptions job_options;
  job_options.origin_name = options_.name.empty() ? HostName() : options_.name;
  worker::Worker* worker_ptr = worker_.get();
  job_options.limits.kernel_known = [worker_ptr](const std::string& name) {
    return worker_ptr->kernels().Find(name) != nullptr;
  };
  jobs_ = std::make_unique<scheduler::JobManager>(job_options, registry_.get());
  blob_provider_ = std::make_unique<JobBlobProvider>(*jobs_);
  worker::WorkServiceOptions work_options;
  work_options.blob_provider = blob_provider_.get();
  work_options.origin_credentials = MemberCredentials();
  // Streams only from current members; blobs only from where gossip says
  // the origin is. membership_ is built after the server starts: until then
  // no origin is known, and nobody can have placed work here yet.
  work_options.member_address =
      [this](const std::string& origin) -> absl::StatusOr<std::string> {
    Membership* membership = membership_ready_.load();
    if (membership == nullptr) {
      return absl::UnavailableError("membership not started yet");
    }
    absl::optional<v1::MemberStatus> member = membership->GetMember(origin);
    if (!member.has_value() ||
        (member->state() != v1::MEMBER_STATE_ALIVE &&
         member->state() != v1::MEMBER_STATE_SUSPECT)) {
      return absl::NotFoundError("gossip lists no live member of that name");
    }
    return member->advertisement().grpc_address();
  };
  work_service_ =
      std::make_unique<worker::WorkService>(*worker_, std::move(work_options));

  const int max_bytes = static_cast<int>(options_.grpc_max_message_bytes);
  scheduler::WorkChannelFactory remote =
      scheduler::GrpcWorkChannelFactory(MemberCredentials(), max_bytes,
                                        TrustGeneration());
  dispatcher_ = std::make_unique<scheduler::Dispatcher>(
      scheduler::DispatcherOptions(), *jobs_,
      [this] {
        std::vector<scheduler::WorkerView> alive;
        for (const v1::MemberStatus& member : membership_->Snapshot()) {
          if (member.state() != v1::MEMBER_STATE_ALIVE &&
              member.state() != v1::MEMBER_STATE_SUSPECT) {
            continue;
          }
          scheduler::WorkerView& view = alive.emplace_back();
          view.alive = member.state() == v1::MEMBER_STATE_ALIVE;
          view.name = member.advertisement().name();
          view.address = member.advertisement().grpc_address();
          view.cores_donated = member.advertisement().cores_donated();
          view.cores_free = member.advertisement().cores_free();
          if (view.name == name_) {
            // Our own figures first-hand, not as last gossiped.
            view.cores_donated = worker_->cores_donated();
            view.cores_free = worker_->cores_free();
          }
        }
        return alive;
      },
      [this, remote](const scheduler::WorkerEndpoint& endpoint,
                     const v1::OpenWork& open,
                     std::shared_ptr<scheduler::WorkChannelEvents> events) {
        if (endpoint.name == name_) {
          return OpenLocalWorkChannel(*worker_, *jobs_, open,
                                      std::move(events));
        }
        return remote(endpoint, open, std::move(events));
      });

  membership_service_ = std::make_unique<MembershipService>();
  jobs_service_ = std::make_unique<JobsService>(*jobs_, *dispatcher_, [this] {
    v1::ClusterStatusResponse response;
    if (!serving_.load(std::memory_order_acquire)) {
      // Still starting: only this node is known.
      v1::MemberStatus* self = response.add_members();
      *self->mutable_advertisement() = CurrentAdvertisement();
      self->set_state(v1::MEMBER_STATE_ALIVE);
      return response;
    }
    response.set_self(name_);
    for (v1::MemberStatus& member : membership_->Snapshot()) {
      if (member.advertisement().name() == name_) {
        // This node's own line is current, not as last gossiped; its
        // sequence and stamp are those of the last publication.
        v1::Advertisement current = CurrentAdvertisement();
        current.set_sequence(member.advertisement().sequence());
        current.set_published_unix_ms(
            member.advertisement().published_unix_ms());
        *member.mutable_advertisement() = std::move(current);
      }
      *response.add_members() = std::move(member);
    }
    return response;
  });

  grpc::ServerBuilder builder;
  int bound_port = 0;
  std::shared_ptr<grpc::ServerCredentials> server_credentials =
      grpc::InsecureServerCredentials();
  if (tls_ != nullptr) {
    server_credentials = tls_->ServerCredentials();
    // Every call's role is checked here, before any handler runs.
    server_credentials->SetAuthMetadataProcessor(
        tls::NewRoleCheck(tls_->trust()));
  }
  builder.AddListeningPort(options_.listen, server_credentials, &bound_port);
  // gRPC turns SO_REUSEPORT on by default, which would let a second node
  // silently share a port with the first.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Nothing reads channelz (no channelz service is registered), yet gRPC
  // keeps its counters and a trace buffer for every connection, and every
  // peer holds one to us. The node's client channels turn it off too.
  builder.AddChannelArgument(GRPC_ARG_ENABLE_CHANNELZ, 0);
  // Work streams live as long as their tasks and ping every 10 s so that a
  // silent peer is noticed; gRPC's default policy (one ping per 5 minutes)
  // would answer those pings with GOAWAY and break long tasks' streams.
  // The server pings its clients too, but only on connections with calls
  // open, and only once a minute: it is a backstop for a connection that
  // died while both nodes live. A vanished origin is noticed by gossip
  // within seconds, and its streams then ended (the membership listener
  // below). gRPC wakes up for every connection's keepalive timer, calls
  // or not, and every peer keeps an idle gossip connection to us: at 10 s
  // they woke the timer threads of a node in an idle 16-node grid 8.7
  // times a second against 5.6 without keepalive, more with more peers.
  // Timeouts are lenient: a machine saturated by its tasks may answer
  // late.
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 1000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
  // gRPC's bandwidth-delay probe sends an HTTP/2 ping after data arrives
  // on a connection (one every few seconds at most, per connection), and
  // every peer probes us over a connection of its own: with the gossip
  // channels' probe (grpc_transport.cc), the pings, their acks and timers
  // were a third of an idle node's wakeups in a 16-node grid (32 a second
  // against 21 without; bench/gossip/idle_threads.sh). We receive probes,
  // task bundles and submissions; without the probe, our receive windows
  // no longer grow with the measured bandwidth-delay product, and 48
  // submitted 1 MiB inputs went through no slower over loopback
  // (`grid_bench --only=inputs`). Results flow to the origin's work
  // channels, which keep the probe.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  builder.SetMaxReceiveMessageSize(max_bytes);
  builder.SetMaxSendMessageSize(max_bytes);
  builder.RegisterService(jobs_service_.get());
  builder.RegisterService(work_service_.get());
  builder.RegisterService(membership_service_.get());
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
    // Peers and Prometheus dial this address: a wildcard host means "the
    // host peers reach this node by".
    const std::string metrics_host = IsWildcardHost(metrics.host)
                                         ? ParseHostPort(grpc_address_)->host
                                         : metrics.host;
    metrics_address_ =
        HostPort{metrics_host,
                 static_cast<uint16_t>(ports.empty() ? 0 : ports.front())}
            .ToString();
  }
  {
    absl::MutexLock lock(&advertisement_mu_);
    advertisement_.set_name(name_);
    advertisement_.set_grpc_address(grpc_address_);
    advertisement_.set_metrics_address(metrics_address_);
    advertisement_.set_machine_cores(static_cast<uint32_t>(MachineCores()));
    advertisement_.set_version(Version());
    advertisement_.set_start_time_unix_ms(start_time_unix_ms_);
    for (const auto& [key, value] : options_.labels) {
      (*advertisement_.mutable_labels())[key] = value;
    }
  }
  MembershipOptions membership_options = options_.membership;
  membership_options.name = name_;
  membership_options.advertise_address = grpc_address_;
  membership_options.seeds = options_.join;
  if (absl::Status valid = ValidateMembershipOptions(membership_options);
      !valid.ok()) {
    return valid;
  }
  GrpcTransportOptions transport_options;
  transport_options.max_receive_message_bytes = max_bytes;
  transport_options.credentials = PeerCredentials();
  transport_options.trust_generation = TrustGeneration();
  membership_ = std::make_unique<Membership>(
      membership_options, NewGrpcTransport(transport_options),
      NewThreadScheduler("pg-gossip"), *registry_);
  membership_->SetAdvertisement(CurrentAdvertisement());
  // An origin declared dead runs no more of its tasks here: on a silent
  // failure (power loss, partition) its streams would otherwise live until
  // the keepalive gives up, a minute and more later.
  membership_->SetListener([this](const v1::MemberStatus& member) {
    if (member.state() != v1::MEMBER_STATE_DEAD) return;
    const std::string& origin = member.advertisement().name();
    if (int ended = work_service_->CancelStreamsFrom(origin); ended > 0) {
      LogInfo("%s was declared dead: ended its %d work stream(s)", origin,
              ended);
    }
  });
  membership_service_->set_membership(membership_.get());
  membership_ready_.store(membership_.get());
  if (absl::Status started = membership_->Start(); !started.ok()) {
    return started;
  }
  advertiser_ = std::make_unique<Advertiser>(
      [this] {
        const worker::Worker::Stats stats = worker_->stats();
        Advertiser::Figures figures;
        figures.cores_donated = worker_->cores_donated();
        figures.cores_free = worker_->cores_free();
        figures.tasks_running = static_cast<uint32_t>(stats.running);
        figures.tasks_queued = static_cast<uint32_t>(stats.queued);
        return figures;
      },
      [this] { return CurrentAdvertisement(); },
      [this](v1::Advertisement ad) {
        membership_->SetAdvertisement(std::move(ad));
      });
  worker_->SetLoadListener(
      [advertiser = advertiser_.get()] { advertiser->Poke(); });
  if (!options_.prometheus_sd_file.empty()) {
    absl::StatusOr<std::unique_ptr<PrometheusSdWriter>> sd =
        PrometheusSdWriter::Start(options_.prometheus_sd_file,
                                  [this] { return membership_->Snapshot(); });
    if (!sd.ok()) return sd.status();
    prometheus_sd_ = std::move(*sd);
  }
  dispatcher_->Start(name_, grpc_address_);
  serving_.store(true, std::memory_order_release);
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
  ad.set_cores_donated(worker_->cores_donated());
  ad.set_cores_free(worker_->cores_free());
  const worker::Worker::Stats stats = worker_->stats();
  ad.set_tasks_running(static_cast<uint32_t>(stats.running));
  ad.set_tasks_queued(static_cast<uint32_t>(stats.queued));
  // Load and free memory drift all the time, and every change is spread to
  // every member, which parses and applies it. Rounded to what anyone
  // reads them at (status prints the load with two decimals), they change
  // when something happens on the machine rather than at every refresh.
  constexpr uint64_t kMemoryStep = uint64_t{64} << 20;
  ad.set_load_average(std::round(LoadAverage1m() * 20) / 20);
  ad.set_memory_free_bytes(MemoryAvailableBytes() / kMemoryStep * kMemoryStep);
  return ad;
}

void Node::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  // The origin side first: its streams close and nothing new is placed.
  if (dispatcher_ != nullptr) dispatcher_->Stop();
  if (worker_ != nullptr) worker_->SetLoadListener(nullptr);
  advertiser_.reset();
  prometheus_sd_.reset();
  if (worker_ != nullptr) worker_->StopGranting();
  if (membership_ != nullptr) {
    // Peers mark us `left` at once and place our tasks elsewhere; their
    // streams to us break when the server stops below.
    const absl::Status left =
        membership_->Leave(std::min(grace, absl::Milliseconds(300)));
    if (!left.ok()) LogInfo("leaving the grid: %s", left.ToString());
  }
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now() +
                      absl::ToChronoMilliseconds(grace));
    server_->Wait();
  }
  if (membership_service_ != nullptr)
    membership_service_->set_membership(nullptr);
  membership_ready_.store(nullptr);
  if (membership_ != nullptr) membership_->Stop();
}

}  // namespace peergrid
