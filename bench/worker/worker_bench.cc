// Worker micro-benchmarks (see docs/worker.md for how to run them):
//  * noop dispatch through the Executor (target >= 1,000,000 tasks/s);
//  * noop kernel tasks through an in-process session (credits, results);
//  * exec /bin/true through the Worker (target >= 2,500 tasks/s), with the
//    spawn latency p50/p99 as counters, and a bare posix_spawn loop as the
//    machine's reference in the same run.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "worker/executor.h"
#include "worker/process.h"
#include "worker/work_service.h"
#include "worker/worker.h"

namespace peergrid::worker {
namespace {

void BM_ExecutorNoopDispatch(benchmark::State& state) {
  const int slots = static_cast<int>(state.range(0));
  constexpr int kBatch = 200000;
  Executor ex(slots);
  std::atomic<int> done{0};
  for (auto _ : state) {
    done.store(0);
    for (int i = 0; i < kBatch; ++i) {
      ex.Submit(1, [&done](SlotLease&) {
        done.fetch_add(1, std::memory_order_relaxed);
      });
    }
    while (done.load(std::memory_order_acquire) < kBatch) {
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_ExecutorNoopDispatch)
    ->Arg(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// An origin in process that keeps every credit busy.
class FloodingOrigin : public WorkSink {
 public:
  FloodingOrigin(v1::Task task, int total)
      : task_(std::move(task)), total_(total) {}
  void Attach(WorkSession* session) { session_ = session; }
  void OnCredits(const v1::CreditGrant& grant) override {
    int n = static_cast<int>(grant.slots());
    v1::Bundle bundle;
    bundle.set_job_id("bench");
    {
      absl::MutexLock lock(&mu_);
      n = std::min(n, total_ - sent_);
      for (int i = 0; i < n; ++i) {
        task_.set_index(static_cast<uint64_t>(sent_++));
        *bundle.add_tasks() = task_;
      }
    }
    if (n > 0) session_->Submit(std::move(bundle));
  }
  void OnResult(v1::WorkResult r) override {
    absl::MutexLock lock(&mu_);
    if (r.result().outcome() != v1::TASK_OUTCOME_SUCCEEDED) ++failed_;
    ++received_;
  }
  int WaitAll() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](FloodingOrigin* o) ABSL_EXCLUSIVE_LOCKS_REQUIRED(o->mu_) {
          return o->received_ >= o->total_;
        },
        this));
    return failed_;
  }

 private:
  v1::Task task_;
  WorkSession* session_ = nullptr;
  absl::Mutex mu_;
  const int total_;
  int sent_ ABSL_GUARDED_BY(mu_) = 0;
  int received_ ABSL_GUARDED_BY(mu_) = 0;
  int failed_ ABSL_GUARDED_BY(mu_) = 0;
};

std::string BenchDir() {
  std::string tmpl = "/tmp/peergrid_worker_bench.XXXXXX";
  return mkdtemp(tmpl.data());
}

// Runs `total` copies of `task` through a fresh in-process session.
void Flood(Worker& worker, const v1::Task& task, int total,
           benchmark::State& state) {
  FloodingOrigin origin(task, total);
  v1::OpenWork open;
  open.set_origin("bench");
  open.set_slots_wanted(static_cast<uint32_t>(worker.max_cores()));
  // Credits may arrive before Attach returns: attach first, then demand.
  open.set_slots_wanted(0);
  auto session = worker.OpenSession(open, origin, nullptr);
  origin.Attach(session.get());
  session->SetDemand(static_cast<uint32_t>(worker.max_cores()));
  if (origin.WaitAll() > 0) state.SkipWithError("tasks failed");
}

void BM_WorkerNoopKernel(benchmark::State& state) {
  const std::string dir = BenchDir();
  WorkerOptions o;
  o.cores = 2;
  o.data_dir = dir;
  auto worker = *Worker::Create(o, nullptr);
  v1::Task task;
  task.mutable_kernel()->set_name("noop");
  constexpr int kTasks = 100000;
  for (auto _ : state) Flood(*worker, task, kTasks, state);
  state.SetItemsProcessed(state.iterations() * kTasks);
  worker.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_WorkerNoopKernel)->UseRealTime()->Unit(benchmark::kMillisecond);

double CpuUs(int who) {
  struct rusage ru;
  getrusage(who, &ru);
  return absl::ToDoubleMicroseconds(absl::DurationFromTimeval(ru.ru_utime) +
                                    absl::DurationFromTimeval(ru.ru_stime));
}

void BM_WorkerExecTrue(benchmark::State& state) {
  const std::string dir = BenchDir();
  WorkerOptions o;
  o.cores = static_cast<int>(state.range(0));
  o.data_dir = dir;
  auto worker = *Worker::Create(o, nullptr);
  v1::Task task;
  task.mutable_exec()->add_argv("/bin/true");
  constexpr int kTasks = 2000;
  const double self0 = CpuUs(RUSAGE_SELF), children0 = CpuUs(RUSAGE_CHILDREN);
  for (auto _ : state) Flood(*worker, task, kTasks, state);
  const double n = static_cast<double>(state.iterations() * kTasks);
  state.SetItemsProcessed(state.iterations() * kTasks);
  state.counters["self_cpu_us_per_task"] = (CpuUs(RUSAGE_SELF) - self0) / n;
  state.counters["child_cpu_us_per_task"] =
      (CpuUs(RUSAGE_CHILDREN) - children0) / n;
  worker.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_WorkerExecTrue)
    ->Arg(2)
    ->Arg(4)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// noop kernel tasks from one remote origin over gRPC on loopback. Args:
// prefetch per core, batches. With credits == cores the credit round trip
// bounds it; prefetch and batching lift that.
void BM_GrpcNoopKernel(benchmark::State& state) {
  const std::string dir = BenchDir();
  WorkerOptions o;
  o.cores = 2;
  o.data_dir = dir;
  o.prefetch_per_core = static_cast<int>(state.range(0));
  auto worker = *Worker::Create(o, nullptr);
  WorkService service(*worker);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  auto stub = v1::Work::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  constexpr int kTasks = 20000;
  for (auto _ : state) {
    grpc::ClientContext ctx;
    auto stream = stub->Open(&ctx);
    v1::WorkFromOrigin m;
    m.mutable_open()->set_slots_wanted(
        static_cast<uint32_t>(o.cores * (1 + o.prefetch_per_core)));
    m.mutable_open()->set_accept_batches(state.range(1) != 0);
    stream->Write(m);
    int sent = 0, received = 0;
    v1::WorkFromWorker in;
    while (received < kTasks && stream->Read(&in)) {
      int credits = 0;
      if (in.has_credits()) credits += static_cast<int>(in.credits().slots());
      if (in.has_result()) ++received;
      if (in.has_batch()) {
        received += in.batch().results_size();
        credits += static_cast<int>(in.batch().credits().slots());
      }
      if (credits > 0 && sent < kTasks) {
        v1::WorkFromOrigin b;
        auto* bundle = b.mutable_bundle();
        bundle->set_job_id("bench");
        for (int i = 0; i < credits && sent < kTasks; ++i, ++sent) {
          auto* t = bundle->add_tasks();
          t->set_index(static_cast<uint64_t>(sent));
          t->mutable_kernel()->set_name("noop");
        }
        stream->Write(b);
      }
    }
    stream->WritesDone();
    while (stream->Read(&in)) {  // Trailing credits; then the status.
    }
    stream->Finish();
  }
  state.SetItemsProcessed(state.iterations() * kTasks);
  server->Shutdown();
  worker.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_GrpcNoopKernel)
    ->Args({0, 0})
    ->Args({0, 1})
    ->Args({64, 1})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// Spawn latency of our Spawn() (clone+vfork to exec), p50 and p99.
void BM_SpawnLatency(benchmark::State& state) {
  std::vector<double> us;
  SpawnSpec spec;
  spec.path = "/bin/true";
  spec.argv = {"true"};
  spec.env = {"PATH=/usr/bin:/bin"};
  spec.cwd = "/";
  spec.stdin_fd = spec.stdout_fd = spec.stderr_fd =
      open("/dev/null", O_RDWR | O_CLOEXEC);
  spec.rlimits = {{RLIMIT_NOFILE, 1024}, {RLIMIT_CORE, 0}};
  for (auto _ : state) {
    const absl::Time t0 = absl::Now();
    auto pid = Spawn(spec);
    us.push_back(absl::ToDoubleMicroseconds(absl::Now() - t0));
    if (!pid.ok()) {
      state.SkipWithError("spawn failed");
      break;
    }
    waitpid(*pid, nullptr, 0);
  }
  close(spec.stdin_fd);
  std::sort(us.begin(), us.end());
  if (!us.empty()) {
    state.counters["p50_us"] = us[us.size() / 2];
    state.counters["p99_us"] = us[us.size() * 99 / 100];
  }
}
BENCHMARK(BM_SpawnLatency)->Iterations(3000)->Unit(benchmark::kMicrosecond);

// The machine's reference: a bare posix_spawn + waitpid loop per thread.
void BM_BarePosixSpawnTrue(benchmark::State& state) {
  char arg0[] = "true";
  char* argv[] = {arg0, nullptr};
  char* envp[] = {nullptr};
  const double children0 = CpuUs(RUSAGE_CHILDREN);
  for (auto _ : state) {
    pid_t pid;
    if (posix_spawn(&pid, "/bin/true", nullptr, nullptr, argv, envp) != 0) {
      state.SkipWithError("posix_spawn failed");
      break;
    }
    waitpid(pid, nullptr, 0);
  }
  state.SetItemsProcessed(state.iterations());
  // Both threads' children, over both threads' spawns: roughly per spawn.
  state.counters["child_cpu_us_per_task"] = benchmark::Counter(
      (CpuUs(RUSAGE_CHILDREN) - children0) /
          static_cast<double>(state.iterations() * state.threads()),
      benchmark::Counter::kAvgThreads);
}
BENCHMARK(BM_BarePosixSpawnTrue)->Threads(2)->UseRealTime();

}  // namespace
}  // namespace peergrid::worker

int main(int argc, char** argv) {
  // As a production node should: Debian's Abseil otherwise tracks lock
  // order on every Mutex acquisition.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
