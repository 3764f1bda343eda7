// Process metrics read from /proc/self at scrape time: resident memory, CPU
// seconds, threads and open file descriptors.
//
// prometheus-cpp 1.0 has no process collector, so this Collectable builds the
// families on every Collect(). Collect() is called on the exposer's threads;
// it reads /proc and holds no state, so it is thread-safe.
#ifndef PEERGRID_NODE_PROCESS_METRICS_H_
#define PEERGRID_NODE_PROCESS_METRICS_H_

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <vector>

namespace peergrid {

class ProcessMetrics : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override;
};

}  // namespace peergrid

#endif  // PEERGRID_NODE_PROCESS_METRICS_H_
