#include "worker/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "proto/task.pb.h"

namespace peergrid::worker {

struct WorkerMetrics::Families {
  prometheus::Family<prometheus::Counter>* finished;
  prometheus::Family<prometheus::Histogram>* duration;
  prometheus::Family<prometheus::Counter>* refused;
  // Children resolved once: [exec][outcome].
  prometheus::Counter* finished_by[2][7] = {};
  prometheus::Histogram* duration_by[2] = {};
};

namespace {

prometheus::Gauge* Gauge(prometheus::Registry& r, const std::string& name,
                         const std::string& help) {
  return &prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}
prometheus::Counter* Counter(prometheus::Registry& r, const std::string& name,
                             const std::string& help) {
  return &prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
}

std::string OutcomeLabel(v1::TaskOutcome outcome) {
  switch (outcome) {
    case v1::TASK_OUTCOME_SUCCEEDED:
      return "succeeded";
    case v1::TASK_OUTCOME_FAILED:
      return "failed";
    case v1::TASK_OUTCOME_TIMED_OUT:
      return "timed_out";
    case v1::TASK_OUTCOME_LIMIT_EXCEEDED:
      return "limit_exceeded";
    case v1::TASK_OUTCOME_CANCELLED:
      return "cancelled";
    case v1::TASK_OUTCOME_REJECTED:
      return "rejected";
    default:
      return "unspecified";
  }
}

}  // namespace

WorkerMetrics::WorkerMetrics(prometheus::Registry& r)
    : f_(std::make_unique<Families>()) {
  cores_donated = Gauge(r, "peergrid_worker_cores_donated",
                        "Cores (task slots) this worker donates right now.");
  cores_busy = Gauge(r, "peergrid_worker_cores_busy",
                     "Task slots held by running tasks.");
  tasks_running = Gauge(r, "peergrid_worker_tasks_running",
                        "Tasks running on this worker.");
  tasks_queued = Gauge(r, "peergrid_worker_tasks_queued",
                       "Accepted tasks waiting for inputs or slots.");
  tasks_suspended =
      Gauge(r, "peergrid_worker_tasks_suspended",
            "Exec tasks stopped because the owner needs the CPU.");
  streams = Gauge(r, "peergrid_worker_streams",
                  "Open work streams (origins, remote or in process).");
  spawn_latency =
      &prometheus::BuildHistogram()
           .Name("peergrid_worker_spawn_latency_seconds")
           .Help("Time to start an exec task's process (clone to exec).")
           .Register(r)
           .Add({}, prometheus::Histogram::BucketBoundaries{
                        25e-6, 50e-6, 100e-6, 200e-6, 400e-6, 800e-6, 1.6e-3,
                        3.2e-3, 6.4e-3, 12.8e-3, 25.6e-3, 0.1});
  blob_cache_bytes = Gauge(r, "peergrid_worker_blob_cache_bytes",
                           "Bytes of blobs held in the on-disk cache.");
  blob_cache_hits = Counter(r, "peergrid_worker_blob_cache_hits_total",
                            "Blob lookups served from the cache.");
  blob_cache_misses = Counter(r, "peergrid_worker_blob_cache_misses_total",
                              "Blob lookups that needed a fetch.");
  blob_fetched_bytes = Counter(r, "peergrid_worker_blob_fetched_bytes_total",
                               "Blob bytes fetched from origins.");
  blob_corrupt = Counter(r, "peergrid_worker_blob_corrupt_total",
                         "Blobs refused because their SHA-256 did not match.");
  f_->finished =
      &prometheus::BuildCounter()
           .Name("peergrid_worker_tasks_finished_total")
           .Help("Tasks finished on this worker by kind and outcome.")
           .Register(r);
  f_->duration = &prometheus::BuildHistogram()
                      .Name("peergrid_worker_task_duration_seconds")
                      .Help("Wall time of tasks from start to result, by kind.")
                      .Register(r);
  f_->refused = &prometheus::BuildCounter()
                     .Name("peergrid_worker_tasks_refused_total")
                     .Help("Tasks refused before running, by reason.")
                     .Register(r);
  static const prometheus::Histogram::BucketBoundaries kBuckets{
      1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 0.5, 1, 5, 30, 120, 600, 3600};
  for (int exec = 0; exec < 2; ++exec) {
    const std::string kind = exec ? "exec" : "kernel";
    for (int o = 0; o < 7; ++o) {
      f_->finished_by[exec][o] = &f_->finished->Add(
          {{"kind", kind},
           {"outcome", OutcomeLabel(static_cast<v1::TaskOutcome>(o))}});
    }
    f_->duration_by[exec] = &f_->duration->Add({{"kind", kind}}, kBuckets);
  }
}

WorkerMetrics::~WorkerMetrics() = default;

void WorkerMetrics::TaskFinished(bool exec, v1::TaskOutcome outcome,
                                 double seconds) {
  const int o = outcome >= 0 && outcome < 7 ? static_cast<int>(outcome) : 0;
  f_->finished_by[exec ? 1 : 0][o]->Increment();
  f_->duration_by[exec ? 1 : 0]->Observe(seconds);
}

void WorkerMetrics::TaskRefused(const std::string& reason) {
  f_->refused->Add({{"reason", reason}}).Increment();
}

}  // namespace peergrid::worker
