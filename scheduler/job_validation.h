// Checks a submitted job before anything runs, so that a user learns of a
// mistake at once, with the task it is in, instead of from a failed run.
#ifndef PEERGRID_SCHEDULER_JOB_VALIDATION_H_
#define PEERGRID_SCHEDULER_JOB_VALIDATION_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "proto/jobs.pb.h"

namespace peergrid::scheduler {

struct JobLimits {
  size_t max_tasks = 10'000'000;
  // A job's name is shown in listings and logs: a line, not a payload.
  size_t max_name_bytes = 1024;
  uint32_t max_task_cpus = 1024;
  uint64_t max_task_memory_bytes = 1ull << 40;
  int64_t max_timeout_ms = 7LL * 24 * 3600 * 1000;  // A week.
  // Whether a kernel of this name exists (on the origin's registry).
  std::function<bool(const std::string&)> kernel_known;
};

// Fills in what a job may leave unset: task indexes when none is set
// (0, 1, 2, ...), and each task's cpus and timeout from the job defaults.
void NormalizeJob(v1::Job& job);

// InvalidArgument naming the first problem: no tasks, a name too long, a
// task of no kind, an
// empty command, an unknown kernel, duplicate or out-of-range indexes,
// absurd cpus, memory or timeouts, an input naming a blob the job does not
// carry, a blob whose content does not match its SHA-256.
absl::Status ValidateJob(const v1::Job& job, const JobLimits& limits);

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(const std::string& data);

}  // namespace peergrid::scheduler

#endif  // PEERGRID_SCHEDULER_JOB_VALIDATION_H_
