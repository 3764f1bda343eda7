// End-to-end figures of a local grid against PRODUCT.md section 8: real
// `peergrid node` processes on loopback (an origin and --workers workers
// joined to it), driven through the Jobs service. Each figure is the median
// of --runs runs; where GNU parallel can do the same work, it runs in the
// same process run as the baseline and the ratio is printed.
//
//   build/bench/grid/grid_bench [--workers=2] [--runs=5] [--noop_tasks=100000]
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "bench/grid/local_grid.h"
#include "proto/jobs.grpc.pb.h"

ABSL_FLAG(int, workers, 2, "Worker nodes besides the origin.");
ABSL_FLAG(int, runs, 5, "Runs of each measurement; the median is reported.");
ABSL_FLAG(int, noop_tasks, 100000, "Tasks in the noop throughput job.");
ABSL_FLAG(int, latency_samples, 500, "One-task jobs timed for latency.");
ABSL_FLAG(std::string, only, "",
          "Comma-separated subset: noop,latency,spin,results,exec.");

namespace peergrid::bench {
namespace {

bool Wanted(const std::string& name) {
  const std::string only = absl::GetFlag(FLAGS_only);
  return only.empty() || absl::StrContains(only, name);
}

// Seconds GNU parallel -j2 takes for `command` over `tasks` values, or -1.
double ParallelSeconds(const std::string& command, int tasks) {
  if (system("command -v parallel >/dev/null 2>&1") != 0) return -1;
  const std::string line =
      absl::StrCat("seq ", tasks, " | parallel -j2 --will-cite '", command,
                   "' > /dev/null 2>&1");
  const absl::Time start = absl::Now();
  if (system(line.c_str()) != 0) return -1;
  return absl::ToDoubleSeconds(absl::Now() - start);
}

void Row(const std::string& work, const std::string& figure,
         const std::string& target, const std::string& baseline) {
  std::cout << absl::StrFormat("| %s | %s | %s | %s |\n", work, figure, target,
                               baseline);
  std::cout.flush();
}

int Main() {
  const int runs = absl::GetFlag(FLAGS_runs);
  const int workers = absl::GetFlag(FLAGS_workers);
  LocalGrid grid;
  LocalGrid::Options options;
  options.workers = workers;
  if (!grid.Start(options)) return 1;
  std::cout << absl::StrFormat(
      "Local grid: origin + %d workers on loopback, %d cores; median of %d "
      "runs.\n\n| work | peergrid | target | baseline in this run |\n"
      "|---|---|---|---|\n",
      workers, sysconf(_SC_NPROCESSORS_ONLN), runs);

  if (Wanted("noop")) {
    const int tasks = absl::GetFlag(FLAGS_noop_tasks);
    const v1::Job job = KernelJob("noop", "", tasks);
    std::vector<double> rates;
    for (int run = 0; run < runs; ++run) {
      const double seconds = grid.RunJob(job);
      if (seconds > 0) rates.push_back(tasks / seconds);
    }
    Row(absl::StrFormat("%d noop tasks, end to end", tasks),
        absl::StrFormat("%.0f tasks/s", Median(rates)), "100,000 tasks/s",
        "(Dask 662/s, 3,378/s tuned, from PRODUCT.md)");
  }
  if (Wanted("latency")) {
    const v1::Job job = KernelJob("noop", "", 1);
    std::vector<double> micros;
    grid.RunJob(job);  // Opens the work streams.
    for (int i = 0; i < absl::GetFlag(FLAGS_latency_samples); ++i) {
      const double seconds = grid.RunJob(job);
      if (seconds > 0) micros.push_back(seconds * 1e6);
    }
    Row("one tiny task, submit to result",
        absl::StrFormat("median %.0f us, p99 %.0f us", Median(micros),
                        Percentile(micros, 0.99)),
        "median < 300 us, p99 < 1 ms", "(Dask 10.7 ms median)");
  }
  if (Wanted("spin")) {
    const v1::Job job = KernelJob("spin", "100", 64);
    const double ideal =
        64 * 0.1 / static_cast<double>(sysconf(_SC_NPROCESSORS_ONLN));
    std::vector<double> efficiency;
    for (int run = 0; run < runs; ++run) {
      const double seconds = grid.RunJob(job);
      if (seconds > 0) efficiency.push_back(ideal / seconds);
    }
    std::vector<double> parallel_efficiency;
    for (int run = 0; run < runs; ++run) {
      // A CPU-bound 100 ms loop in the shell's own process.
      const double seconds = ParallelSeconds(
          "timeout 0.1 sh -c \"while :; do :; done\" || true", 64);
      if (seconds > 0) parallel_efficiency.push_back(ideal / seconds);
    }
    Row("64 x 100 ms spin, makespan vs ideal",
        absl::StrFormat("%.1f%% efficiency", 100 * Median(efficiency)),
        ">= 97%",
        parallel_efficiency.empty()
            ? "GNU parallel not installed"
            : absl::StrFormat("GNU parallel -j2: %.1f%%",
                              100 * Median(parallel_efficiency)));
  }
  if (Wanted("results")) {
    const v1::Job job = ExecJob({"head", "-c", "1048576", "/dev/zero"}, 200);
    std::vector<double> rates;
    for (int run = 0; run < runs; ++run) {
      uint64_t bytes = 0;
      const double seconds = grid.RunJob(job, &bytes);
      if (seconds > 0)
        rates.push_back(static_cast<double>(bytes) / seconds / 1e6);
    }
    Row("200 results of 1 MiB, end to end",
        absl::StrFormat("%.0f MB/s", Median(rates)), "800 MB/s",
        "(Dask 141 MiB/s)");
  }
  if (Wanted("inputs")) {
    // The other direction: data from the user through the origin to the
    // workers. 48 x 1 MiB keeps the submission under the 64 MiB message cap.
    v1::Job job = ExecJob({"wc", "-c"}, 48);
    for (v1::Task& task : *job.mutable_tasks()) {
      task.mutable_exec()->set_stdin(std::string(1 << 20, 'x'));
    }
    std::vector<double> rates;
    for (int run = 0; run < runs; ++run) {
      const double seconds = grid.RunJob(job);
      if (seconds > 0) rates.push_back(48.0 * (1 << 20) / seconds / 1e6);
    }
    Row("48 inputs of 1 MiB (stdin), submit to last result",
        absl::StrFormat("%.0f MB/s", Median(rates)), "(no target)", "");
  }
  if (Wanted("exec")) {
    const int tasks = 2000;
    const v1::Job job = ExecJob({"/bin/true"}, tasks);
    std::vector<double> rates;
    std::vector<double> parallel_rates;
    for (int run = 0; run < runs; ++run) {
      const double seconds = grid.RunJob(job);
      if (seconds > 0) rates.push_back(tasks / seconds);
      const double baseline = ParallelSeconds("/bin/true", tasks);
      if (baseline > 0) parallel_rates.push_back(tasks / baseline);
    }
    const double ours = Median(rates);
    const double theirs = Median(parallel_rates);
    Row("2,000 x /bin/true", absl::StrFormat("%.0f tasks/s", ours),
        "2,500 tasks/s",
        theirs > 0
            ? absl::StrFormat("GNU parallel -j2: %.0f/s (peergrid %.1fx)",
                              theirs, ours / theirs)
            : "GNU parallel not installed");
  }
  return 0;
}

}  // namespace
}  // namespace peergrid::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return peergrid::bench::Main();
}
