// `peergrid node`: run this machine's node until SIGTERM or SIGINT.
#include <malloc.h>
#include <pthread.h>
#include <google/protobuf/stubs/logging.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "common/version.h"
#include "node/cli/command.h"
#include "node/cli/name_flag.h"
#include "node/cli/tls_flags.h"
#include "node/node.h"
#include "worker/worker.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7420",
          "gRPC address to listen on, HOST:PORT; port 0 picks a free port. "
          "A non-loopback address needs --insecure.");
ABSL_FLAG(std::string, advertise, "",
          "Address peers and clients dial, HOST:PORT; empty means the bound "
          "--listen address. Required when listening on 0.0.0.0 or [::].");
ABSL_FLAG(int, cores, 0,
          "Cores donated to the grid, from 1 to the machine's cores; 0 means "
          "all of them.");
ABSL_FLAG(std::string, metrics, "127.0.0.1:9420",
          "Address for Prometheus metrics at /metrics, HOST:PORT; port 0 "
          "picks a free port; empty turns metrics off.");
ABSL_FLAG(bool, insecure, false,
          "Allow listening on a non-loopback address without TLS. Anyone "
          "who can reach the port can then use the node.");
ABSL_FLAG(std::string, log_level, "info",
          "Least severe log level written to stderr: debug, info, warning "
          "or error.");
ABSL_FLAG(int64_t, grpc_max_message_bytes, 64 << 20,
          "Largest gRPC message the node accepts or sends, in bytes.");
// The gossip flags default to the membership's own defaults, which
// docs/membership.md justifies.
static const peergrid::MembershipOptions kGossipDefaults;

ABSL_FLAG(std::vector<std::string>, join, {},
          "Nodes to join the grid through, HOST:PORT,... (any one member "
          "will do); retried until one answers. Empty starts a new grid.");
ABSL_FLAG(std::vector<std::string>, label, {},
          "KEY=VALUE labels gossiped with this node's advertisement "
          "(repeatable).");
ABSL_FLAG(int64_t, gossip_probe_interval_ms,
          absl::ToInt64Milliseconds(kGossipDefaults.probe_interval),
          "Gossip: a member is probed every this many ms (scaled up while "
          "this node is unhealthy).");
ABSL_FLAG(int64_t, gossip_probe_timeout_ms,
          absl::ToInt64Milliseconds(kGossipDefaults.probe_timeout),
          "Gossip: how long a direct probe waits for its ack.");
ABSL_FLAG(int, gossip_indirect_checks, kGossipDefaults.indirect_checks,
          "Gossip: members asked to probe a member that missed its ack.");
ABSL_FLAG(int, gossip_suspicion_multiplier,
          kGossipDefaults.suspicion_multiplier,
          "Gossip: a suspect is declared dead after this x log10(members) x "
          "the probe interval (at least 1 x); from 3 up, the timeout starts "
          "6 times longer and shrinks to that as (this - 2) other members "
          "confirm the suspicion.");
ABSL_FLAG(int, gossip_retransmit_multiplier,
          kGossipDefaults.retransmit_multiplier,
          "Gossip: each update is passed on this x log10(members + 1) "
          "times.");
ABSL_FLAG(int64_t, gossip_push_pull_interval_ms,
          absl::ToInt64Milliseconds(kGossipDefaults.push_pull_interval),
          "Gossip: full-state exchange with a random member this often.");
ABSL_FLAG(std::string, prometheus_sd_file, "",
          "Keep a Prometheus file_sd target list of every live member's "
          "metrics address at this path (rewritten atomically as members "
          "come and go).");
ABSL_FLAG(std::string, data_dir, "",
          "Directory for task working directories and the blob cache; empty "
          "means a temporary directory removed when the node stops.");
ABSL_FLAG(std::string, donate, "all",
          "'all' donates --cores; 'idle' donates only what other processes "
          "leave idle (from /proc/stat, every second) and pauses exec tasks "
          "while the machine's owner needs the CPU.");
ABSL_FLAG(std::vector<std::string>, accept,
          std::vector<std::string>({"exec", "kernel"}),
          "Kinds of task this node runs for the grid: exec, kernel, or both.");
ABSL_FLAG(std::string, exec_user, "nobody",
          "When the node runs as root, exec tasks run as this user.");
ABSL_FLAG(std::string, sandbox, "none",
          "'bwrap' runs each exec task under bubblewrap: no network, a "
          "read-only root, a private /tmp.");
ABSL_FLAG(std::vector<std::string>, plugin, {},
          "Shared library of extra kernels to load at start (repeatable).");
ABSL_FLAG(int64_t, blob_cache_bytes, int64_t{1} << 30,
          "Most bytes of input blobs kept on disk; least recently used go "
          "first.");
ABSL_FLAG(int64_t, task_timeout_ms, 3600000,
          "Wall-clock limit of a task that sets none, in milliseconds.");

namespace peergrid::cli {
namespace {

// Shutdown must finish within 2 s of the signal; this leaves room to exit.
constexpr absl::Duration kShutdownGrace = absl::Milliseconds(500);

absl::Status WorkerOptionsFromFlags(worker::WorkerOptions& options) {
  const std::string donate = absl::GetFlag(FLAGS_donate);
  if (donate == "all") {
    options.donate = worker::DonateMode::kAll;
  } else if (donate == "idle") {
    options.donate = worker::DonateMode::kIdle;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--donate=", donate, ": use 'all' or 'idle'"));
  }
  options.accept_exec = options.accept_kernel = false;
  for (const std::string& kind : absl::GetFlag(FLAGS_accept)) {
    if (kind == "exec") {
      options.accept_exec = true;
    } else if (kind == "kernel") {
      options.accept_kernel = true;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "--accept: unknown kind '", kind, "' (use exec, kernel or both)"));
    }
  }
  if (!options.accept_exec && !options.accept_kernel) {
    return absl::InvalidArgumentError("--accept: name at least one kind");
  }
  const std::string sandbox = absl::GetFlag(FLAGS_sandbox);
  if (sandbox != "none" && sandbox != "bwrap") {
    return absl::InvalidArgumentError(
        absl::StrCat("--sandbox=", sandbox, ": use 'none' or 'bwrap'"));
  }
  options.sandbox_bwrap = sandbox == "bwrap";
  options.exec_user = absl::GetFlag(FLAGS_exec_user);
  options.plugins = absl::GetFlag(FLAGS_plugin);
  if (absl::GetFlag(FLAGS_blob_cache_bytes) < 0 ||
      absl::GetFlag(FLAGS_task_timeout_ms) <= 0) {
    return absl::InvalidArgumentError(
        "--blob-cache-bytes must be 0 or more and --task-timeout-ms more "
        "than 0");
  }
  options.blob_cache_bytes =
      static_cast<uint64_t>(absl::GetFlag(FLAGS_blob_cache_bytes));
  options.default_timeout_ms = absl::GetFlag(FLAGS_task_timeout_ms);
  return absl::OkStatus();
}

// protobuf's log lines, at most one per 10 s (the rest are counted).
void RateLimitedProtobufLog(google::protobuf::LogLevel level,
                            const char* /*file*/, int /*line*/,
                            const std::string& message) {
  static absl::Mutex mu(absl::kConstInit);
  static absl::Time next_line = absl::InfinitePast();
  static int skipped = 0;
  absl::MutexLock lock(&mu);
  const absl::Time now = absl::Now();
  if (now < next_line) {
    ++skipped;
    return;
  }
  next_line = now + absl::Seconds(10);
  LogLine(level >= google::protobuf::LOGLEVEL_ERROR ? LogLevel::kWarning
                                                   : LogLevel::kInfo,
          absl::StrCat("protobuf: ", message,
                       skipped > 0 ? absl::StrCat(" (and ", skipped,
                                                  " more lines like it)")
                                   : ""));
  skipped = 0;
}

int RunNode(const Command& command, std::vector<std::string> args) {
  // One malloc arena per core, before any thread starts. glibc allows 8 per
  // core, and gRPC's 20-odd threads each ended up with one of their own,
  // every arena holding its own free and fragmented memory: in an idle
  // 64-node grid a node's anonymous memory went from 6.6 to 5.9 MB (medians
  // of 3 runs) with the cap, and the noop throughput did not move.
  mallopt(M_ARENA_MAX,
          static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  // protobuf logs every string field that is not UTF-8 in a message it
  // refuses: a peer sending such messages in a loop would fill the log.
  google::protobuf::SetLogHandler(&RateLimitedProtobufLog);
  // Handle the stop signals synchronously on this thread: block them before
  // gRPC starts its threads, which inherit the mask, then sigwait below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);  // Not a stop: re-read the CA and CRL.
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::vector<std::string> positional;
  int exit_code = kExitOk;
  if (!ParseCommand(command, args, &positional, &exit_code)) return exit_code;
  if (!CheckNoArguments(command, positional)) return kExitUsage;
  absl::StatusOr<LogLevel> level =
      ParseLogLevel(absl::GetFlag(FLAGS_log_level));
  if (!level.ok()) {
    PrintError(command,
               absl::StrCat("--log-level: ", level.status().message()));
    return kExitUsage;
  }
  SetLogLevel(*level);

  NodeOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.advertise = absl::GetFlag(FLAGS_advertise);
  options.name = absl::GetFlag(FLAGS_name);
  options.cores = absl::GetFlag(FLAGS_cores);
  options.metrics = absl::GetFlag(FLAGS_metrics);
  options.insecure = absl::GetFlag(FLAGS_insecure);
  options.tls = NodeTlsFiles();
  options.grpc_max_message_bytes = absl::GetFlag(FLAGS_grpc_max_message_bytes);
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.join = absl::GetFlag(FLAGS_join);
  options.prometheus_sd_file = absl::GetFlag(FLAGS_prometheus_sd_file);
  for (const std::string& label : absl::GetFlag(FLAGS_label)) {
    const size_t equals = label.find('=');
    if (equals == std::string::npos || equals == 0) {
      PrintError(command, absl::StrCat("--label=", label, ": use KEY=VALUE"));
      return kExitUsage;
    }
    options.labels[label.substr(0, equals)] = label.substr(equals + 1);
  }
  MembershipOptions& gossip = options.membership;
  gossip.probe_interval =
      absl::Milliseconds(absl::GetFlag(FLAGS_gossip_probe_interval_ms));
  gossip.probe_timeout =
      absl::Milliseconds(absl::GetFlag(FLAGS_gossip_probe_timeout_ms));
  gossip.indirect_checks = absl::GetFlag(FLAGS_gossip_indirect_checks);
  gossip.suspicion_multiplier =
      absl::GetFlag(FLAGS_gossip_suspicion_multiplier);
  gossip.retransmit_multiplier =
      absl::GetFlag(FLAGS_gossip_retransmit_multiplier);
  gossip.push_pull_interval =
      absl::Milliseconds(absl::GetFlag(FLAGS_gossip_push_pull_interval_ms));
  if (absl::Status worker = WorkerOptionsFromFlags(options.worker);
      !worker.ok()) {
    PrintError(command, std::string(worker.message()));
    return kExitUsage;
  }
  if (absl::Status valid = ValidateNodeOptions(options); !valid.ok()) {
    PrintError(command, std::string(valid.message()));
    return kExitUsage;
  }

  absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(options);
  if (!node.ok()) {
    PrintError(command, std::string(node.status().message()));
    return kExitFailure;
  }
  // The start line: one line on stdout that scripts parse for the bound
  // addresses (port 0 picks them). Keys never change; more may be added.
  std::cout << "peergrid node ready name=" << (*node)->name()
            << " grpc=" << (*node)->grpc_address() << " metrics="
            << ((*node)->metrics_address().empty() ? "off"
                                                   : (*node)->metrics_address())
            << " version=" << Version() << std::endl;

  int signal_number = 0;
  while (sigwait(&stop_signals, &signal_number) == 0 &&
         signal_number == SIGHUP) {
    LogInfo("received SIGHUP, re-reading the TLS CA and CRL");
    (*node)->ReloadTrust();
  }
  LogInfo("received %s, shutting down", strsignal(signal_number));
  (*node)->Shutdown(kShutdownGrace);
  LogInfo("stopped");
  // Nothing is left to hand over once Shutdown() returns. Skip the metrics
  // endpoint's stop (civetweb polls every 2 s) and gRPC's global teardown
  // (about 2 s more), which would break the promise to exit within 2 s.
  std::fflush(nullptr);
  std::_Exit(kExitOk);
}

}  // namespace

const Command& NodeCommand() {
  static const Command* command = new Command{
      "node",
      "run a node of the grid on this machine",
      "[flags]\n\n"
      "Runs this machine's node: serves the grid's gRPC services and\n"
      "Prometheus metrics until SIGTERM or SIGINT, then stops within 2 s and\n"
      "exits 0. SIGHUP re-reads the TLS CA and CRL files at once (they are\n"
      "also re-read within a second of a change; the certificate and key\n"
      "within 10 s). When ready it prints one line to stdout:\n"
      "  peergrid node ready name=NAME grpc=HOST:PORT metrics=HOST:PORT|off "
      "version=V",
      {"node/cli/node_command.cc", kNameFlagFile, kTlsFlagsFile},
      &RunNode,
      /*aliases=*/{},
      kExitUsage,
      /*flags_end_at_first_argument=*/false,
      /*handles_stop_signals=*/true,
  };
  return *command;
}

}  // namespace peergrid::cli
