// Worker::Impl: the sessions of the credit protocol and each task's way
// through this worker: accepted against its session's credits (CreditLedger)
// or refused, its input blobs staged (InputStager), run on the executor
// (kernels on the arena, exec tasks by the ExecRunner), and its result handed
// to the session's sink, which frees its slots for the next grant. Donation
// changes (IdleDonor) resize the ledger and the executor.
//
// Threads: none of its own; callers' threads (session methods), the arena,
// the exec starters, the process reactor and blob fetch completions all run
// through it, under mu_ for sessions and credits.
#include "worker/worker.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "worker/blob_cache.h"
#include "worker/credit_ledger.h"
#include "worker/donation.h"
#include "worker/executor.h"
#include "worker/input_stager.h"
#include "worker/kernel.h"
#include "worker/metrics.h"
#include "worker/process.h"
#include "worker/thread_pool.h"

namespace peergrid::worker {
namespace {

struct SessionCore;

struct TaskRun {
  std::shared_ptr<SessionCore> session;
  std::string job_id;
  v1::Task task;
  int cpus = 1;
  bool exec = false;
  std::atomic<bool> cancelled{false};
  absl::Time started;
  std::vector<BlobRef> pins;
  absl::Mutex mu;
  uint64_t reactor_id ABSL_GUARDED_BY(mu) = 0;
};

using TaskKey = std::pair<std::string, uint64_t>;

struct SessionCore {
  uint64_t id = 0;
  WorkSink* sink = nullptr;
  std::unique_ptr<BlobSource> blob_source;
  std::string origin;
  // Guarded by Worker::Impl::mu_; its slots are in Worker::Impl::credits_.
  bool closed = false;
  absl::flat_hash_map<TaskKey, std::shared_ptr<TaskRun>> tasks;
  // The gate: no sink call starts after Close, Close waits for those begun.
  absl::Mutex gate_mu;
  bool gate_closed ABSL_GUARDED_BY(gate_mu) = false;
  int inflight ABSL_GUARDED_BY(gate_mu) = 0;

  template <typename F>
  void CallSink(F&& f) {
    {
      absl::MutexLock lock(&gate_mu);
      if (gate_closed) return;
      ++inflight;
    }
    f(*sink);
    absl::MutexLock lock(&gate_mu);
    --inflight;
  }
  void CloseGate() {
    absl::MutexLock lock(&gate_mu);
    gate_closed = true;
    gate_mu.Await(absl::Condition(
        +[](int* n) { return *n == 0; }, &inflight));
  }
};

struct Grant {
  std::shared_ptr<SessionCore> session;
  v1::CreditGrant grant;
};

v1::TaskResult Refusal(const v1::Task& task, v1::TaskOutcome outcome,
                       std::string reason) {
  v1::TaskResult r;
  r.set_index(task.index());
  r.set_outcome(outcome);
  r.set_reason(std::move(reason));
  r.set_exit_code(-1);
  return r;
}

}  // namespace

class Worker::Impl {
 public:
  Impl(WorkerOptions options, prometheus::Registry* registry)
      : options_(std::move(options)), credits_(options_.prefetch_per_core) {
    if (registry == nullptr) {
      own_registry_ = std::make_unique<prometheus::Registry>();
      registry = own_registry_.get();
    }
    metrics_ = std::make_unique<WorkerMetrics>(*registry);
    const int hw = std::max(1u, std::thread::hardware_concurrency());
    machine_cores_ = hw;
    max_cores_ = options_.cores > 0 ? options_.cores : hw;
    kernels_ = KernelRegistry::WithBuiltins();
  }

  absl::Status Init() {
    if (options_.data_dir.empty()) {
      return absl::InvalidArgumentError("worker needs a data directory");
    }
    if (!options_.accept_exec && !options_.accept_kernel) {
      return absl::InvalidArgumentError("worker accepts no kind of task");
    }
    for (const std::string& plugin : options_.plugins) {
      if (auto s = LoadKernelPlugin(plugin, *kernels_); !s.ok()) return s;
    }
    auto cache = BlobCache::Open(options_.data_dir + "/blobs",
                                 options_.blob_cache_bytes);
    if (!cache.ok()) return cache.status();
    blobs_ = std::move(*cache);
    stager_ = std::make_unique<InputStager>(*blobs_, *metrics_);
    reactor_ = std::make_unique<ProcessReactor>();
    // Exec tasks start on a few threads of their own: a spawn blocks its
    // thread until the child execs, and neither the arena (whose idle TBB
    // workers spin) nor the reactor (which must keep reaping) should wait.
    starters_ = std::make_unique<ThreadPool>(std::clamp(max_cores_, 1, 4),
                                             "pg-exec-start");
    ThreadPool* starters = starters_.get();
    executor_ = std::make_unique<Executor>(
        max_cores_, [starters](absl::AnyInvocable<void()> fn) {
          starters->Post(std::move(fn));
        });
    if (options_.accept_exec) {
      ExecRunnerOptions eo;
      eo.work_root = options_.data_dir + "/work";
      eo.exec_user = options_.exec_user;
      eo.bwrap = options_.sandbox_bwrap;
      eo.limits = options_.limits;
      prometheus::Histogram* spawn = metrics_->spawn_latency;
      eo.on_spawned = [spawn](absl::Duration d) {
        spawn->Observe(absl::ToDoubleSeconds(d));
      };
      auto runner = ExecRunner::Create(std::move(eo), *reactor_);
      if (!runner.ok()) return runner.status();
      exec_ = std::move(*runner);
    }
    metrics_->blob_cache_bytes->Set(static_cast<double>(blobs_->stats().bytes));
    if (options_.donate == DonateMode::kIdle) {
      executor_->SetLimit(0);
      donor_ = std::make_unique<IdleDonor>(
          options_.idle, machine_cores_, max_cores_,
          [this] {
            std::vector<pid_t> p = reactor_->Pids();
            return std::vector<int>(p.begin(), p.end());
          },
          [this](const IdlePolicy::Decision& d) {
            ApplyDonation(d.donate, d.suspend);
          });
    } else {
      absl::MutexLock lock(&mu_);
      credits_.SetDonated(max_cores_);
    }
    metrics_->cores_donated->Set(cores_donated());
    return absl::OkStatus();
  }

  ~Impl() {
    donor_.reset();
    if (executor_ == nullptr || reactor_ == nullptr) return;  // Init failed.
    executor_->SetLimit(max_cores_);  // Let queued, cancelled tasks drain.
    reactor_->ResumeAll();
    CancelAll();
    {
      absl::MutexLock lock(&mu_);
      credits_.StopGranting();
      mu_.Await(absl::Condition(
          +[](int* n) { return *n == 0; }, &outstanding_));
    }
    exec_.reset();
    reactor_.reset();
    executor_.reset();
    starters_.reset();
  }

  // ---- Sessions -----------------------------------------------------------

  std::shared_ptr<SessionCore> Open(const v1::OpenWork& open, WorkSink& sink,
                                    std::unique_ptr<BlobSource> source) {
    auto s = std::make_shared<SessionCore>();
    s->sink = &sink;
    s->blob_source = std::move(source);
    s->origin = open.origin();
    std::vector<Grant> grants;
    {
      absl::MutexLock lock(&mu_);
      s->id = ++next_session_;
      sessions_[s->id] = s;
      credits_.Open(s->id, open.slots_wanted());
      grants = RebalanceLocked();
      metrics_->streams->Set(static_cast<double>(open_sessions_++ + 1));
    }
    Deliver(grants);
    return s;
  }

  void SetDemand(const std::shared_ptr<SessionCore>& s, uint32_t wanted) {
    std::vector<Grant> grants;
    {
      absl::MutexLock lock(&mu_);
      if (s->closed) return;
      credits_.SetWanted(s->id, wanted);
      grants = RebalanceLocked();
    }
    Deliver(grants);
  }

  void Submit(const std::shared_ptr<SessionCore>& s, v1::Bundle bundle) {
    std::vector<v1::WorkResult> refused;
    std::vector<std::shared_ptr<TaskRun>> accepted;
    {
      absl::MutexLock lock(&mu_);
      for (v1::Task& task : *bundle.mutable_tasks()) {
        const int cpus = std::max<int>(1, static_cast<int>(task.cpus()));
        const char* metric = "invalid";
        std::string reason =
            s->closed ? std::string("work stream is closed") : Validate(task);
        if (!reason.empty()) {
          // Refused below.
        } else if (s->tasks.contains(TaskKey(bundle.job_id(), task.index()))) {
          reason = absl::StrCat("task ", task.index(), " of job ",
                                bundle.job_id(), " is already running here");
        } else if (!credits_.Use(s->id, cpus)) {
          metric = "no_credit";
          reason = absl::StrCat("no credit: task needs ", cpus,
                                " slot(s), the stream has ",
                                credits_.credits(s->id), " credit(s)");
        }
        if (!reason.empty()) {
          metrics_->TaskRefused(metric);
          v1::WorkResult wr;
          wr.set_job_id(bundle.job_id());
          *wr.mutable_result() =
              Refusal(task, v1::TASK_OUTCOME_REJECTED, std::move(reason));
          wr.mutable_result()->set_node(options_.node_name);
          refused.push_back(std::move(wr));
          continue;
        }
        auto run = std::make_shared<TaskRun>();
        run->session = s;
        run->job_id = bundle.job_id();
        run->cpus = cpus;
        run->exec = task.has_exec();
        run->task = std::move(task);
        s->tasks[TaskKey(run->job_id, run->task.index())] = run;
        accepted.push_back(std::move(run));
      }
      outstanding_ += static_cast<int>(accepted.size());
    }
    UpdateGauges();
    for (auto& wr : refused) {
      s->CallSink([&](WorkSink& sink) { sink.OnResult(std::move(wr)); });
    }
    for (auto& run : accepted) Prepare(std::move(run));
  }

  void Cancel(const std::shared_ptr<SessionCore>& s,
              const v1::CancelWork& cancel) {
    std::vector<std::shared_ptr<TaskRun>> runs;
    {
      absl::MutexLock lock(&mu_);
      if (cancel.job_id().empty()) {
        for (auto& [key, run] : s->tasks) runs.push_back(run);
      } else if (cancel.task_indexes().empty()) {
        for (auto& [key, run] : s->tasks) {
          if (key.first == cancel.job_id()) runs.push_back(run);
        }
      } else {
        for (uint64_t index : cancel.task_indexes()) {
          auto it = s->tasks.find(TaskKey(cancel.job_id(), index));
          if (it != s->tasks.end()) runs.push_back(it->second);
        }
      }
    }
    CancelRuns(runs);
  }

  void Close(const std::shared_ptr<SessionCore>& s) {
    std::vector<std::shared_ptr<TaskRun>> runs;
    std::vector<Grant> grants;
    {
      absl::MutexLock lock(&mu_);
      if (s->closed) return;
      s->closed = true;
      credits_.Close(s->id);
      for (auto& [key, run] : s->tasks) runs.push_back(run);
      metrics_->streams->Set(static_cast<double>(--open_sessions_));
      if (s->tasks.empty()) sessions_.erase(s->id);
      grants = RebalanceLocked();
    }
    CancelRuns(runs);
    if (s->blob_source) s->blob_source->CancelAll();
    s->CloseGate();
    Deliver(grants);
  }

  void CancelAll() {
    std::vector<std::shared_ptr<TaskRun>> runs;
    std::vector<std::shared_ptr<SessionCore>> sessions;
    {
      absl::MutexLock lock(&mu_);
      for (auto& [id, s] : sessions_) {
        sessions.push_back(s);
        for (auto& [key, run] : s->tasks) runs.push_back(run);
      }
    }
    CancelRuns(runs);
    for (auto& s : sessions) {
      if (s->blob_source) s->blob_source->CancelAll();
    }
  }

  // ---- Donation -------------------------------------------------------------

  void ApplyDonation(int donate, bool suspend) {
    std::vector<Grant> grants;
    bool changed;
    {
      absl::MutexLock lock(&mu_);
      changed = credits_.donated() != donate;
      credits_.SetDonated(donate);
      suspended_ = suspend;
      grants = RebalanceLocked();
    }
    executor_->SetLimit(donate);
    if (suspend) {
      reactor_->SuspendAll();
    } else {
      reactor_->ResumeAll();
    }
    metrics_->cores_donated->Set(donate);
    metrics_->tasks_suspended->Set(suspend ? reactor_->watched() : 0);
    if (changed) NotifyLoadListener();
    Deliver(grants);
  }

  void SetLoadListener(std::function<void()> listener) {
    absl::MutexLock lock(&listener_mu_);
    listener_ = std::move(listener);
  }

  // Called under listener_mu_, so that SetLoadListener(nullptr) returns only
  // once no call is in progress: the listener's owner may then go away.
  void NotifyLoadListener() {
    absl::MutexLock lock(&listener_mu_);
    if (listener_) listener_();
  }

  void StopGranting() {
    absl::MutexLock lock(&mu_);
    credits_.StopGranting();
  }

  int cores_donated() const {
    absl::MutexLock lock(&mu_);
    return credits_.donated();
  }
  int max_cores() const { return max_cores_; }
  Executor& executor() { return *executor_; }
  KernelRegistry& kernels() { return *kernels_; }
  bool suspended() const {
    absl::MutexLock lock(&mu_);
    return suspended_;
  }
  int sessions() const {
    absl::MutexLock lock(&mu_);
    return open_sessions_;
  }
  int outstanding() const {
    absl::MutexLock lock(&mu_);
    return outstanding_;
  }

 private:
  std::string Validate(const v1::Task& task)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const int cpus = std::max<int>(1, static_cast<int>(task.cpus()));
    if (cpus > max_cores_) {
      return absl::StrCat("task asks for ", cpus, " cpus; this worker has ",
                          max_cores_);
    }
    if (task.timeout_ms() < 0) return "negative timeout_ms";
    if (task.has_kernel()) {
      if (!options_.accept_kernel) return "this worker does not run kernels";
      if (kernels_->Find(task.kernel().name()) == nullptr) {
        return absl::StrCat(
            "unknown kernel '", task.kernel().name(),
            "' (known: ", absl::StrJoin(kernels_->Names(), ", "), ")");
      }
      const std::string& sha = task.kernel().input_blob_sha256();
      if (!sha.empty() && !BlobCache::IsValidSha256(sha)) {
        return absl::StrCat("bad input blob SHA-256 '", sha, "'");
      }
      return "";
    }
    if (task.has_exec()) {
      if (!options_.accept_exec || exec_ == nullptr) {
        return "this worker does not run exec tasks (--accept=kernel)";
      }
      if (task.exec().argv_size() == 0 || task.exec().argv(0).empty()) {
        return "exec task has an empty command line";
      }
      for (const auto& in : task.exec().inputs()) {
        if (!BlobCache::IsValidSha256(in.blob_sha256())) {
          return absl::StrCat("bad input blob SHA-256 '", in.blob_sha256(),
                              "' for '", in.path(), "'");
        }
      }
      return "";
    }
    return "task is neither exec nor kernel";
  }

  // Turns the ledger's grants into messages for the sessions' sinks.
  std::vector<Grant> RebalanceLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<Grant> out;
    for (const CreditLedger::Grant& g : credits_.Rebalance()) {
      Grant grant;
      grant.session = sessions_[g.session];
      grant.grant.set_slots(g.slots);
      grant.grant.set_donated(static_cast<uint32_t>(credits_.donated()));
      out.push_back(std::move(grant));
    }
    return out;
  }

  void Deliver(std::vector<Grant>& grants) {
    for (Grant& g : grants) {
      g.session->CallSink([&](WorkSink& sink) { sink.OnCredits(g.grant); });
    }
  }

  void CancelRuns(const std::vector<std::shared_ptr<TaskRun>>& runs) {
    for (const auto& run : runs) {
      run->cancelled.store(true);
      uint64_t id;
      {
        absl::MutexLock lock(&run->mu);
        id = run->reactor_id;
      }
      if (id != 0) reactor_->Kill(id);
    }
  }

  // Pins cached inputs, fetches the others, then starts the task.
  void Prepare(std::shared_ptr<TaskRun> run) {
    std::vector<std::string> shas;
    if (run->task.has_kernel()) {
      if (!run->task.kernel().input_blob_sha256().empty()) {
        shas.push_back(run->task.kernel().input_blob_sha256());
      }
    } else {
      for (const auto& in : run->task.exec().inputs()) {
        if (std::find(shas.begin(), shas.end(), in.blob_sha256()) ==
            shas.end()) {
          shas.push_back(in.blob_sha256());
        }
      }
    }
    if (shas.empty()) {
      Start(std::move(run));
      return;
    }
    const std::shared_ptr<SessionCore>& s = run->session;
    // Aliases the session, so that its source lives while fetches run.
    std::shared_ptr<BlobSource> source =
        s->blob_source ? std::shared_ptr<BlobSource>(s, s->blob_source.get())
                       : nullptr;
    std::string origin = s->origin;
    stager_->Stage(std::move(shas), std::move(source), std::move(origin),
                   [this, run](absl::StatusOr<std::vector<BlobRef>> pins) {
                     if (!pins.ok()) {
                       Finish(run,
                              Refusal(run->task, v1::TASK_OUTCOME_REJECTED,
                                      std::string(pins.status().message())));
                       return;
                     }
                     run->pins = std::move(*pins);
                     Start(run);
                   });
  }

  void Start(std::shared_ptr<TaskRun> run) {
    const bool exec = run->exec;
    executor_->Submit(
        run->cpus,
        [this, run](SlotLease& lease) mutable {
          run->started = absl::Now();
          if (run->cancelled.load()) {
            Finish(run,
                   Refusal(run->task, v1::TASK_OUTCOME_CANCELLED, "cancelled"));
            return;
          }
          const int64_t timeout_ms = run->task.timeout_ms() > 0
                                         ? run->task.timeout_ms()
                                         : options_.default_timeout_ms;
          const absl::Duration timeout = timeout_ms > 0
                                             ? absl::Milliseconds(timeout_ms)
                                             : absl::InfiniteDuration();
          if (run->exec) {
            RunExec(run, lease.Detach(), timeout);
          } else {
            // The slot is given back before Finish, as for exec tasks, so
            // that the gauges Finish sets no longer count this task.
            Slots slots = lease.Detach();
            v1::TaskResult result = RunKernel(*run, timeout);
            slots.Release();
            Finish(run, std::move(result));
          }
        },
        /*posted=*/exec);
  }

  void RunExec(const std::shared_ptr<TaskRun>& run, Slots slots,
               absl::Duration timeout) {
    absl::flat_hash_map<std::string, std::string> paths;
    for (const BlobRef& ref : run->pins) paths[ref.sha256()] = ref.path();
    const uint64_t id = exec_->Run(
        run->task, timeout, paths,
        [this, run, slots = std::move(slots)](v1::TaskResult r) mutable {
          slots.Release();
          Finish(run, std::move(r));
        });
    if (id != 0) {
      absl::MutexLock lock(&run->mu);
      run->reactor_id = id;
    }
    if (id != 0 && run->cancelled.load()) reactor_->Kill(id);
  }

  v1::TaskResult RunKernel(const TaskRun& run, absl::Duration timeout) {
    const v1::KernelSpec& k = run.task.kernel();
    const KernelFn* fn = kernels_->Find(k.name());
    const absl::Time deadline = timeout == absl::InfiniteDuration()
                                    ? absl::InfiniteFuture()
                                    : run.started + timeout;
    std::string input;
    if (!k.input_blob_sha256().empty() && !run.pins.empty()) {
      input = run.pins.front().path();
    }
    KernelContext ctx(k.argument(), std::move(input), &run.cancelled, deadline);
    absl::StatusOr<std::string> out = (*fn)(ctx);
    v1::TaskResult r;
    r.set_index(run.task.index());
    const absl::Time end = absl::Now();
    r.set_wall_us(absl::ToInt64Microseconds(end - run.started));
    if (run.cancelled.load()) {
      r.set_outcome(v1::TASK_OUTCOME_CANCELLED);
      r.set_reason("cancelled");
    } else if (end > deadline) {
      r.set_outcome(v1::TASK_OUTCOME_TIMED_OUT);
      r.set_reason(absl::StrCat("kernel exceeded its timeout of ",
                                absl::FormatDuration(timeout)));
    } else if (!out.ok()) {
      r.set_outcome(v1::TASK_OUTCOME_FAILED);
      r.set_reason(std::string(out.status().message()));
    } else {
      r.set_outcome(v1::TASK_OUTCOME_SUCCEEDED);
      r.set_output(std::move(*out));
    }
    return r;
  }

  void Finish(const std::shared_ptr<TaskRun>& run, v1::TaskResult result) {
    result.set_index(run->task.index());
    result.set_node(options_.node_name);
    const absl::Time now = absl::Now();
    const double seconds = run->started == absl::Time()
                               ? 0
                               : absl::ToDoubleSeconds(now - run->started);
    metrics_->TaskFinished(run->exec, result.outcome(), seconds);
    run->pins.clear();
    std::shared_ptr<SessionCore> s = run->session;
    std::vector<Grant> grants;
    {
      absl::MutexLock lock(&mu_);
      credits_.Return(s->id, run->cpus);
      auto it = s->tasks.find(TaskKey(run->job_id, run->task.index()));
      if (it != s->tasks.end() && it->second == run) s->tasks.erase(it);
      if (s->closed && s->tasks.empty()) sessions_.erase(s->id);
      grants = RebalanceLocked();
    }
    v1::WorkResult wr;
    wr.set_job_id(run->job_id);
    *wr.mutable_result() = std::move(result);
    {
      absl::MutexLock lock(&mu_);
      --outstanding_;
    }
    UpdateGauges();
    s->CallSink([&](WorkSink& sink) { sink.OnResult(std::move(wr)); });
    Deliver(grants);
  }

  void UpdateGauges() {
    const Executor::Stats st = executor_->stats();
    metrics_->cores_busy->Set(st.used);
    metrics_->tasks_running->Set(st.running);
    int outstanding;
    {
      absl::MutexLock lock(&mu_);
      outstanding = outstanding_;
    }
    metrics_->tasks_queued->Set(std::max(0, outstanding - st.running));
    NotifyLoadListener();
  }

  WorkerOptions options_;
  std::unique_ptr<prometheus::Registry> own_registry_;
  std::unique_ptr<WorkerMetrics> metrics_;
  std::unique_ptr<KernelRegistry> kernels_;
  std::unique_ptr<BlobCache> blobs_;
  int machine_cores_ = 1;
  int max_cores_ = 1;
  // Destroyed in reverse: exec runner, reactor, executor, starters.
  std::unique_ptr<ThreadPool> starters_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<ProcessReactor> reactor_;
  std::unique_ptr<ExecRunner> exec_;

  std::unique_ptr<InputStager> stager_;

  mutable absl::Mutex mu_;
  CreditLedger credits_ ABSL_GUARDED_BY(mu_);
  bool suspended_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<uint64_t, std::shared_ptr<SessionCore>> sessions_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_session_ ABSL_GUARDED_BY(mu_) = 0;
  int open_sessions_ ABSL_GUARDED_BY(mu_) = 0;
  int outstanding_ ABSL_GUARDED_BY(mu_) = 0;

  absl::Mutex listener_mu_;
  std::function<void()> listener_ ABSL_GUARDED_BY(listener_mu_);

  std::unique_ptr<IdleDonor> donor_;  // Destroyed first.
};

namespace {

class SessionHandle : public WorkSession {
 public:
  SessionHandle(Worker::Impl& impl, std::shared_ptr<SessionCore> core)
      : impl_(impl), core_(std::move(core)) {}
  ~SessionHandle() override { Close(); }
  void SetDemand(uint32_t wanted) override { impl_.SetDemand(core_, wanted); }
  void Submit(v1::Bundle bundle) override {
    impl_.Submit(core_, std::move(bundle));
  }
  void Cancel(const v1::CancelWork& cancel) override {
    impl_.Cancel(core_, cancel);
  }
  void Close() override { impl_.Close(core_); }

 private:
  Worker::Impl& impl_;
  std::shared_ptr<SessionCore> core_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Worker>> Worker::Create(
    WorkerOptions options, prometheus::Registry* registry) {
  auto impl = std::make_unique<Impl>(std::move(options), registry);
  if (auto s = impl->Init(); !s.ok()) return s;
  return std::unique_ptr<Worker>(new Worker(std::move(impl)));
}

Worker::Worker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Worker::~Worker() = default;

std::unique_ptr<WorkSession> Worker::OpenSession(
    const v1::OpenWork& open, WorkSink& sink,
    std::unique_ptr<BlobSource> blobs) {
  return std::make_unique<SessionHandle>(
      *impl_, impl_->Open(open, sink, std::move(blobs)));
}

int Worker::cores_donated() const { return impl_->cores_donated(); }
int Worker::cores_busy() const { return impl_->executor().stats().used; }
int Worker::cores_free() const {
  return std::max(0, cores_donated() - cores_busy());
}
int Worker::max_cores() const { return impl_->max_cores(); }
void Worker::SetLoadListener(std::function<void()> listener) {
  impl_->SetLoadListener(std::move(listener));
}
void Worker::CancelAll() { impl_->CancelAll(); }
void Worker::StopGranting() { impl_->StopGranting(); }
KernelRegistry& Worker::kernels() { return impl_->kernels(); }

Worker::Stats Worker::stats() const {
  const Executor::Stats e = impl_->executor().stats();
  Stats s;
  s.donated = impl_->cores_donated();
  s.busy = e.used;
  s.running = e.running;
  s.queued = std::max(0, impl_->outstanding() - e.running);
  s.peak_running = e.peak_running;
  s.peak_busy = e.peak_used;
  s.sessions = impl_->sessions();
  s.suspended = impl_->suspended();
  return s;
}

void Worker::ResetPeak() { impl_->executor().ResetPeak(); }

void Worker::SetDonatedForTest(int cores, bool suspend) {
  impl_->ApplyDonation(cores, suspend);
}

}  // namespace peergrid::worker
