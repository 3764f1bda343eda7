#include "scheduler/metrics.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"

namespace peergrid::scheduler {
namespace {

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005,
      0.01,    0.02,   0.05,   0.1,    0.2,   0.5,   1,
      2,       5,      10,     30,     60,    300,   1800};
  return *buckets;
}

// "JOB_STATE_RUNNING" -> "running".
std::string EnumLabel(const std::string& name, const char* prefix) {
  return absl::AsciiStrToLower(absl::StrReplaceAll(name, {{prefix, ""}}));
}

}  // namespace

SchedulerMetrics::SchedulerMetrics(prometheus::Registry* registry) {
  if (registry == nullptr) {
    own_registry_ = std::make_shared<prometheus::Registry>();
    registry = own_registry_.get();
  }
  jobs_family_ = &prometheus::BuildGauge()
                      .Name("peergrid_origin_jobs")
                      .Help("Jobs kept at this origin, by state.")
                      .Register(*registry);
  finished_family_ =
      &prometheus::BuildCounter()
           .Name("peergrid_origin_tasks_finished_total")
           .Help("Tasks of this origin's jobs that ended, by outcome.")
           .Register(*registry);
  for (int state = v1::JobState_MIN; state <= v1::JobState_MAX; ++state) {
    if (state != v1::JOB_STATE_UNSPECIFIED) {
      jobs(static_cast<v1::JobState>(state));
    }
  }
  tasks_placed = &prometheus::BuildCounter()
                      .Name("peergrid_origin_tasks_placed_total")
                      .Help("Task attempts sent to workers by this origin.")
                      .Register(*registry)
                      .Add({});
  tasks_replaced =
      &prometheus::BuildCounter()
           .Name("peergrid_origin_tasks_replaced_total")
           .Help(
               "Tasks sent back to pending because their worker was lost "
               "or could not take them.")
           .Register(*registry)
           .Add({});
  tasks_pending = &prometheus::BuildGauge()
                       .Name("peergrid_origin_tasks_pending")
                       .Help("Tasks at this origin waiting for a worker.")
                       .Register(*registry)
                       .Add({});
  tasks_in_flight = &prometheus::BuildGauge()
                         .Name("peergrid_origin_tasks_in_flight")
                         .Help("Tasks this origin has sent and awaits.")
                         .Register(*registry)
                         .Add({});
  queue_seconds =
      &prometheus::BuildHistogram()
           .Name("peergrid_origin_placement_seconds")
           .Help("Time a task waited at the origin before it was sent.")
           .Register(*registry)
           .Add({}, LatencyBuckets());
  round_trip_seconds =
      &prometheus::BuildHistogram()
           .Name("peergrid_origin_result_round_trip_seconds")
           .Help("Time from sending a task to accepting its result.")
           .Register(*registry)
           .Add({}, LatencyBuckets());
  blob_bytes_shipped =
      &prometheus::BuildCounter()
           .Name("peergrid_origin_blob_bytes_shipped_total")
           .Help("Bytes of blobs this origin served to workers.")
           .Register(*registry)
           .Add({});
  work_channels = &prometheus::BuildGauge()
                       .Name("peergrid_origin_work_channels")
                       .Help("Open work streams from this origin to workers.")
                       .Register(*registry)
                       .Add({});
}

prometheus::Gauge& SchedulerMetrics::jobs(v1::JobState state) {
  return jobs_family_->Add(
      {{"state", EnumLabel(v1::JobState_Name(state), "JOB_STATE_")}});
}

prometheus::Counter& SchedulerMetrics::tasks_finished(v1::TaskOutcome outcome) {
  return finished_family_->Add(
      {{"outcome", EnumLabel(v1::TaskOutcome_Name(outcome), "TASK_OUTCOME_")}});
}

}  // namespace peergrid::scheduler
