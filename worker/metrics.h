// The worker's Prometheus metrics, registered on an injected registry.
// Names are prefixed peergrid_worker_; labels are bounded (kind, outcome,
// reason from fixed sets). Thread-safe (prometheus-cpp metrics are).
#ifndef PEERGRID_WORKER_METRICS_H_
#define PEERGRID_WORKER_METRICS_H_

#include <memory>
#include <string>

namespace prometheus {
class Registry;
class Counter;
class Gauge;
class Histogram;
}  // namespace prometheus

namespace peergrid::v1 {
enum TaskOutcome : int;
}

namespace peergrid::worker {

class WorkerMetrics {
 public:
  // Registers on `registry`, which must outlive this object.
  explicit WorkerMetrics(prometheus::Registry& registry);
  ~WorkerMetrics();

  prometheus::Gauge* cores_donated = nullptr;
  prometheus::Gauge* cores_busy = nullptr;
  prometheus::Gauge* tasks_running = nullptr;
  prometheus::Gauge* tasks_queued = nullptr;
  prometheus::Gauge* tasks_suspended = nullptr;
  prometheus::Gauge* streams = nullptr;
  prometheus::Histogram* spawn_latency = nullptr;
  prometheus::Gauge* blob_cache_bytes = nullptr;
  prometheus::Counter* blob_cache_hits = nullptr;
  prometheus::Counter* blob_cache_misses = nullptr;
  prometheus::Counter* blob_fetched_bytes = nullptr;
  prometheus::Counter* blob_corrupt = nullptr;

  // kind: "exec" or "kernel".
  void TaskFinished(bool exec, peergrid::v1::TaskOutcome outcome,
                    double seconds);
  // reason: one of "no_credit", "too_many_cpus", "invalid".
  void TaskRefused(const std::string& reason);

 private:
  struct Families;
  std::unique_ptr<Families> f_;
};

}  // namespace peergrid::worker

#endif  // PEERGRID_WORKER_METRICS_H_
