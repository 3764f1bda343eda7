// A local grid for the end-to-end benchmarks: real `peergrid node`
// processes on loopback (an origin on 127.0.0.1 and workers on 127.0.0.2,
// .3, ...), driven through the origin's Jobs service, and the jobs and
// statistics the benchmarks share.
//
// Thread safety: none; one benchmark thread drives a grid.
#ifndef PEERGRID_BENCH_GRID_LOCAL_GRID_H_
#define PEERGRID_BENCH_GRID_LOCAL_GRID_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "proto/jobs.grpc.pb.h"
#include "tests/testing/node_process.h"

namespace grpc {
class ChannelCredentials;
}

namespace peergrid::bench {

double Median(std::vector<double> values);
double Percentile(std::vector<double> values, double p);

v1::Job KernelJob(const std::string& kernel, const std::string& argument,
                  int tasks);
v1::Job ExecJob(std::vector<std::string> argv, int tasks);

class LocalGrid {
 public:
  // The flags of node `name` beyond those every node gets (a TLS grid: its
  // certificate); the client's credentials (null: insecure).
  struct Options {
    int workers = 2;
    std::function<std::vector<std::string>(const std::string& name)> node_flags;
    std::shared_ptr<grpc::ChannelCredentials> client_credentials;
    // Hosts 127.0.0.HOST_BASE, +1, ...: two grids can run side by side.
    int host_base = 1;
  };

  // Starts the nodes and waits until the origin sees all alive; false (and
  // why, on stderr) if they do not start or converge within 20 s.
  bool Start(const Options& options);

  // Submits `job` and streams it to the end; seconds from submit to the
  // final event, or -1 (and why, on stderr). `bytes` adds up stdout sizes.
  double RunJob(const v1::Job& job, uint64_t* bytes = nullptr);

 private:
  std::vector<std::unique_ptr<testing::NodeProcess>> nodes_;
  std::unique_ptr<v1::Jobs::Stub> stub_;
};

}  // namespace peergrid::bench

#endif  // PEERGRID_BENCH_GRID_LOCAL_GRID_H_
