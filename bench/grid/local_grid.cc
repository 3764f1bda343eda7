#include "bench/grid/local_grid.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace peergrid::bench {

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values.empty() ? 0 : values[values.size() / 2];
}

double Percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  if (values.empty()) return 0;
  return values[std::min(
      values.size() - 1,
      static_cast<size_t>(p * static_cast<double>(values.size())))];
}

v1::Job KernelJob(const std::string& kernel, const std::string& argument,
                  int tasks) {
  v1::Job job;
  for (int i = 0; i < tasks; ++i) {
    v1::KernelSpec* spec = job.add_tasks()->mutable_kernel();
    spec->set_name(kernel);
    spec->set_argument(argument);
  }
  return job;
}

v1::Job ExecJob(std::vector<std::string> argv, int tasks) {
  v1::Job job;
  for (int i = 0; i < tasks; ++i) {
    v1::ExecSpec* exec = job.add_tasks()->mutable_exec();
    for (const std::string& arg : argv) exec->add_argv(arg);
  }
  return job;
}

bool LocalGrid::Start(const Options& options) {
  for (int i = 0; i <= options.workers; ++i) {
    const std::string name = i == 0 ? "origin" : absl::StrCat("worker-", i - 1);
    std::vector<std::string> flags = {"--metrics=", "--log-level=warning"};
    if (options.node_flags) {
      for (std::string& flag : options.node_flags(name)) {
        flags.push_back(std::move(flag));
      }
    } else {
      flags.push_back("--name=" + name);
    }
    if (i > 0) flags.push_back("--join=" + nodes_[0]->grpc_address());
    auto node = testing::NodeProcess::Start(
        flags, absl::StrCat("127.0.0.", options.host_base + i));
    if (!node.ok()) {
      std::cerr << name << ": " << node.status() << "\n";
      return false;
    }
    nodes_.push_back(std::move(*node));
  }
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(-1);
  stub_ = v1::Jobs::NewStub(grpc::CreateCustomChannel(
      nodes_[0]->grpc_address(),
      options.client_credentials ? options.client_credentials
                                 : grpc::InsecureChannelCredentials(),
      arguments));
  // Wait until the origin sees every worker alive.
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    grpc::ClientContext context;
    v1::ClusterStatusResponse status;
    if (stub_->ClusterStatus(&context, {}, &status).ok()) {
      int alive = 0;
      for (const auto& member : status.members()) {
        alive += member.state() == v1::MEMBER_STATE_ALIVE ? 1 : 0;
      }
      if (alive == options.workers + 1) return true;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  std::cerr << "the grid did not converge\n";
  return false;
}

double LocalGrid::RunJob(const v1::Job& job, uint64_t* bytes) {
  const absl::Time start = absl::Now();
  v1::SubmitRequest request;
  *request.mutable_job() = job;
  v1::SubmitResponse response;
  {
    grpc::ClientContext context;
    grpc::Status status = stub_->Submit(&context, request, &response);
    if (!status.ok()) {
      std::cerr << "submit: " << status.error_message() << "\n";
      return -1;
    }
  }
  grpc::ClientContext context;
  v1::WatchRequest watch;
  watch.set_job_id(response.job_id());
  auto reader = stub_->Watch(&context, watch);
  v1::WatchEvent event;
  uint64_t results = 0;
  uint64_t failed = 0;
  while (reader->Read(&event)) {
    if (event.has_result()) {
      ++results;
      if (event.result().outcome() != v1::TASK_OUTCOME_SUCCEEDED) ++failed;
      if (bytes != nullptr) *bytes += event.result().stdout().size();
    }
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (!reader->Finish().ok() ||
      results != static_cast<uint64_t>(job.tasks_size()) || failed > 0) {
    std::cerr << "job ended with " << results << " results, " << failed
              << " failed\n";
    return -1;
  }
  return seconds;
}

}  // namespace peergrid::bench
