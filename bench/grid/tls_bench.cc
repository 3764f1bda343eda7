// What mutual TLS costs (PRODUCT.md section 8: tiny-task throughput within
// 15% of plain, one task's round trip within +100 us, 1 MiB results within
// 20%): two local grids side by side in one run, a plain one on
// 127.0.0.1-3 and a TLS one on 127.0.0.11-13 with certificates of a fresh
// CA, measured in turn, run after run, so that both see the same machine.
// Each figure is the median of --runs runs.
//
//   build/bench/grid/tls_bench [--workers=2] [--runs=5] [--noop_tasks=50000]
//                              [--remote_kernels]
#include <grpcpp/grpcpp.h>
#include <stdlib.h>

#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/grid/local_grid.h"
#include "node/tls/cluster_ca.h"
#include "node/tls/credentials.h"

ABSL_FLAG(int, workers, 2, "Worker nodes besides the origin, in each grid.");
ABSL_FLAG(int, runs, 5, "Runs of each measurement; the median is reported.");
ABSL_FLAG(int, noop_tasks, 50000, "Tasks in the noop throughput job.");
ABSL_FLAG(int, latency_samples, 300, "One-task jobs timed per run.");
ABSL_FLAG(bool, remote_kernels, false,
          "The origins run no kernels (--accept=exec), so that every noop "
          "task crosses a work stream: isolates what TLS costs there.");

namespace peergrid::bench {
namespace {

struct Figures {
  std::vector<double> noop_rate;     // tasks/s
  std::vector<double> latency_us;    // median of a run's samples
  std::vector<double> results_rate;  // MB/s
};

void Measure(LocalGrid& grid, Figures& figures) {
  const int tasks = absl::GetFlag(FLAGS_noop_tasks);
  if (double s = grid.RunJob(KernelJob("noop", "", tasks)); s > 0) {
    figures.noop_rate.push_back(tasks / s);
  }
  std::vector<double> micros;
  const v1::Job one = KernelJob("noop", "", 1);
  grid.RunJob(one);  // Opens the work streams.
  for (int i = 0; i < absl::GetFlag(FLAGS_latency_samples); ++i) {
    if (double s = grid.RunJob(one); s > 0) micros.push_back(s * 1e6);
  }
  figures.latency_us.push_back(Median(micros));
  uint64_t bytes = 0;
  const v1::Job results = ExecJob({"head", "-c", "1048576", "/dev/zero"}, 100);
  if (double s = grid.RunJob(results, &bytes); s > 0) {
    figures.results_rate.push_back(static_cast<double>(bytes) / s / 1e6);
  }
}

int Main() {
  char pattern[] = "/tmp/peergrid_tls_bench.XXXXXX";
  const std::string dir = mkdtemp(pattern);
  const std::string ca = dir + "/ca";
  auto issue = [&](const std::string& name, tls::Role role) {
    tls::IssueOptions options;
    options.name = name;
    options.role = role;
    options.out_prefix = dir + "/" + name;
    return tls::IssueCertificate(ca, options).ok();
  };
  const int workers = absl::GetFlag(FLAGS_workers);
  bool ok = tls::InitCa(ca).ok() && issue("client", tls::Role::kSubmit) &&
            issue("origin", tls::Role::kNode);
  for (int i = 0; i < workers; ++i) {
    ok = ok && issue(absl::StrCat("worker-", i), tls::Role::kNode);
  }
  if (!ok) {
    std::cerr << "cannot make the CA and certificates in " << dir << "\n";
    return 1;
  }
  tls::TlsFiles client_files{dir + "/client.crt", dir + "/client.key",
                             ca + "/ca.crt", ""};
  auto client = tls::TlsCredentials::Create(client_files);
  if (!client.ok()) {
    std::cerr << client.status() << "\n";
    return 1;
  }

  const bool remote = absl::GetFlag(FLAGS_remote_kernels);
  LocalGrid plain;
  LocalGrid::Options plain_options;
  plain_options.workers = workers;
  plain_options.node_flags = [&](const std::string& name) {
    std::vector<std::string> flags = {"--name=" + name};
    if (remote && name == "origin") flags.push_back("--accept=exec");
    return flags;
  };
  LocalGrid secure;
  LocalGrid::Options tls_options;
  tls_options.workers = workers;
  tls_options.host_base = 11;
  tls_options.client_credentials = (*client)->ChannelCredentials();
  tls_options.node_flags = [&](const std::string& name) {
    std::vector<std::string> flags = {"--tls-cert=" + dir + "/" + name + ".crt",
                                      "--tls-key=" + dir + "/" + name + ".key",
                                      "--tls-ca=" + ca + "/ca.crt",
                                      "--tls-crl=" + ca + "/crl"};
    if (remote && name == "origin") flags.push_back("--accept=exec");
    return flags;
  };
  if (!plain.Start(plain_options) || !secure.Start(tls_options)) return 1;

  Figures plain_figures, tls_figures;
  const int runs = absl::GetFlag(FLAGS_runs);
  for (int run = 0; run < runs; ++run) {
    // In turn, plain first then TLS, then the other way round.
    if (run % 2 == 0) {
      Measure(plain, plain_figures);
      Measure(secure, tls_figures);
    } else {
      Measure(secure, tls_figures);
      Measure(plain, plain_figures);
    }
  }
  const double plain_noop = Median(plain_figures.noop_rate);
  const double tls_noop = Median(tls_figures.noop_rate);
  const double plain_rtt = Median(plain_figures.latency_us);
  const double tls_rtt = Median(tls_figures.latency_us);
  const double plain_mb = Median(plain_figures.results_rate);
  const double tls_mb = Median(tls_figures.results_rate);
  std::cout << absl::StrFormat(
      "Two local grids (origin + %d workers each), plain and mutual TLS, "
      "measured in turn; median of %d runs.\n\n"
      "| work | plain | TLS | TLS vs plain | target |\n|---|---|---|---|---|\n",
      workers, runs);
  std::cout << absl::StrFormat(
      "| %d noop tasks | %.0f tasks/s | %.0f tasks/s | %.2fx | >= 0.85x |\n",
      absl::GetFlag(FLAGS_noop_tasks), plain_noop, tls_noop,
      tls_noop / plain_noop);
  std::cout << absl::StrFormat(
      "| one tiny task, submit to result (median) | %.0f us | %.0f us | "
      "%+.0f us | <= +100 us |\n",
      plain_rtt, tls_rtt, tls_rtt - plain_rtt);
  std::cout << absl::StrFormat(
      "| 100 results of 1 MiB | %.0f MB/s | %.0f MB/s | %.2fx | >= 0.80x |\n",
      plain_mb, tls_mb, tls_mb / plain_mb);
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace peergrid::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return peergrid::bench::Main();
}
