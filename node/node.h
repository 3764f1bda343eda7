// One peergrid node: the composition root.
//
// Node builds each part from NodeOptions, serves them on one gRPC port,
// exposes the metrics registry over HTTP and stops everything in order. It
// holds no logic of its own beyond wiring.
//
// Threading: Start() and Shutdown() are called from one thread (the owner's);
// the accessors are safe from any thread. gRPC and the metrics exposer run
// their own threads, which belong to them.
#ifndef PEERGRID_NODE_NODE_H_
#define PEERGRID_NODE_NODE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "membership/membership.h"
#include "node/tls/credentials.h"
#include "proto/advertisement.pb.h"
#include "scheduler/grpc_work_channel.h"
#include "worker/worker.h"

namespace prometheus {
class Exposer;
class Registry;
}  // namespace prometheus

namespace grpc {
class ChannelCredentials;
class Server;
}  // namespace grpc

namespace peergrid {

class Advertiser;
class PrometheusSdWriter;
class JobsService;
class MembershipService;
class ProcessMetrics;

namespace scheduler {
class Dispatcher;
class JobManager;
}  // namespace scheduler

namespace worker {
class BlobProvider;
class WorkService;
}  // namespace worker

struct NodeOptions {
  // Name in the grid; empty picks the host name, plus ":PORT" when the gRPC
  // port is not the default 7420 (so that several local nodes differ).
  std::string name;
  // gRPC listen address; port 0 picks a free port.
  std::string listen = "127.0.0.1:7420";
  // Address peers and clients dial; empty means the bound listen address.
  // Required when listening on a wildcard address (0.0.0.0 or ::).
  std::string advertise;
  // Prometheus /metrics listen address; empty turns metrics off.
  std::string metrics = "127.0.0.1:9420";
  // Allows listening on a non-loopback address without TLS.
  bool insecure = false;
  // Mutual TLS on the gRPC port and every channel to peers (--tls-*). With
  // it, the node's name is its certificate's, and any --listen is allowed.
  tls::TlsFiles tls;
  // Cores donated to the grid; 0 means all of the machine's.
  int cores = 0;
  // Largest gRPC message accepted or sent.
  int64_t grpc_max_message_bytes = 64 << 20;
  // Where the node keeps task directories and its blob cache; empty means a
  // private temporary directory, removed when the node stops.
  std::string data_dir;
  // The worker's own settings. Its cores, data_dir and node_name are taken
  // from the fields above.
  worker::WorkerOptions worker;
  // Nodes to join through (HOST:PORT); empty starts a grid of one.
  std::vector<std::string> join;
  // Labels gossiped with the advertisement (--label=k=v).
  std::map<std::string, std::string> labels;
  // Gossip tunables. Its name, advertise_address and seeds are taken from
  // the fields above.
  MembershipOptions membership;
  // Where to keep a Prometheus file_sd list of every live member's metrics
  // address; empty: none.
  std::string prometheus_sd_file;
};

// Checks options a user typed, before anything binds: every error names
// the flag and what would be accepted.
absl::Status ValidateNodeOptions(const NodeOptions& options);

class Node {
 public:
  // Validates the options, binds the gRPC port and the metrics port, and
  // starts serving. Fails with a clear status if an address is refused or
  // taken; nothing keeps running then.
  static absl::StatusOr<std::unique_ptr<Node>> Start(
      const NodeOptions& options);

  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  // Shuts down with a short grace period if Shutdown() was not called, then
  // stops the metrics endpoint (which can take up to 2 s: civetweb polls).
  ~Node();

  // Leaves the grid gracefully: stops placing and taking work, tells its
  // peers it leaves (they mark it `left` at once and run its tasks
  // elsewhere), gives calls in flight up to `grace` to finish and cancels
  // the rest. Metrics keep being served until destruction. After it
  // returns, the node holds no work: the process may exit. Idempotent.
  void Shutdown(absl::Duration grace);

  const std::string& name() const { return name_; }
  // The gRPC address peers and clients dial, with the bound port.
  const std::string& grpc_address() const { return grpc_address_; }
  // HOST:PORT of /metrics with the bound port; empty when metrics are off.
  const std::string& metrics_address() const { return metrics_address_; }
  prometheus::Registry& metrics() { return *registry_; }
  // With TLS, re-reads the CA and CRL files now if they changed (SIGHUP);
  // otherwise nothing. Thread-safe.
  void ReloadTrust();
  worker::Worker& worker() { return *worker_; }
  scheduler::JobManager& jobs() { return *jobs_; }

 private:
  Node(const NodeOptions& options,
       std::shared_ptr<prometheus::Registry> registry);
  absl::Status StartServing();
  // For channels to peers: mutual TLS with tls_, else null (insecure).
  std::shared_ptr<grpc::ChannelCredentials> PeerCredentials() const;
  // For channels to a named member: with TLS, accepting only its
  // certificate; else null (insecure).
  scheduler::CredentialsFor MemberCredentials() const;
  // With TLS, the trust store's generation (for channel caches); else null.
  std::function<uint64_t()> TrustGeneration() const;
  // This node's advertisement with the machine's current figures.
  v1::Advertisement CurrentAdvertisement() const;

  const NodeOptions options_;
  // Set by Start() before StartServing() when options_.tls is configured.
  std::shared_ptr<const tls::TlsCredentials> tls_;
  const int64_t start_time_unix_ms_;
  std::string data_dir_;
  bool remove_data_dir_ = false;  // A temporary one of our own.
  // Set once in StartServing(), before `serving_`; read-only after.
  std::atomic<bool> serving_{false};
  std::string name_;
  std::string grpc_address_;
  std::string metrics_address_;

  // gRPC threads may ask for the advertisement as soon as the port is bound,
  // before the name and address are known.
  mutable absl::Mutex advertisement_mu_;
  v1::Advertisement advertisement_ ABSL_GUARDED_BY(advertisement_mu_);

  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<ProcessMetrics> process_metrics_;
  // The parts, in the order they are built; destroyed in reverse.
  std::unique_ptr<worker::Worker> worker_;
  std::unique_ptr<scheduler::JobManager> jobs_;
  std::unique_ptr<worker::BlobProvider> blob_provider_;
  std::unique_ptr<worker::WorkService> work_service_;
  std::unique_ptr<scheduler::Dispatcher> dispatcher_;
  std::unique_ptr<MembershipService> membership_service_;
  std::unique_ptr<JobsService> jobs_service_;
  // Built once the port is bound: gossip needs the address.
  std::unique_ptr<Membership> membership_;
  // membership_ once it serves, for gRPC threads (the work service's checks).
  std::atomic<Membership*> membership_ready_{nullptr};
  std::unique_ptr<Advertiser> advertiser_;
  std::unique_ptr<PrometheusSdWriter> prometheus_sd_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  bool shut_down_ = false;
};

}  // namespace peergrid

#endif  // PEERGRID_NODE_NODE_H_
