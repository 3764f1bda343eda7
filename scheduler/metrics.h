// The origin's metrics, registered once on the node's registry.
#ifndef PEERGRID_SCHEDULER_METRICS_H_
#define PEERGRID_SCHEDULER_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>

#include "proto/jobs.pb.h"
#include "proto/task.pb.h"

namespace peergrid::scheduler {

class SchedulerMetrics {
 public:
  // With a null registry the metrics go to a private one.
  explicit SchedulerMetrics(prometheus::Registry* registry);

  prometheus::Gauge& jobs(v1::JobState state);
  prometheus::Counter& tasks_finished(v1::TaskOutcome outcome);

  prometheus::Counter* tasks_placed;
  prometheus::Counter* tasks_replaced;
  prometheus::Gauge* tasks_pending;
  prometheus::Gauge* tasks_in_flight;
  prometheus::Histogram* queue_seconds;       // Submit (or requeue) to send.
  prometheus::Histogram* round_trip_seconds;  // Send to result.
  prometheus::Counter* blob_bytes_shipped;
  prometheus::Gauge* work_channels;

 private:
  std::shared_ptr<prometheus::Registry> own_registry_;
  prometheus::Family<prometheus::Gauge>* jobs_family_;
  prometheus::Family<prometheus::Counter>* finished_family_;
};

}  // namespace peergrid::scheduler

#endif  // PEERGRID_SCHEDULER_METRICS_H_
