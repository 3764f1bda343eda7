// A job in JSON, as `peergrid submit` reads it from a user's file: parsed
// with protobuf's JSON util, then normalised and validated as the origin
// does. Nothing may crash; every refusal is a status.
#include <google/protobuf/util/json_util.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "proto/jobs.pb.h"
#include "scheduler/job_validation.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  peergrid::v1::Job job;
  if (!google::protobuf::util::JsonStringToMessage(text, &job).ok()) return 0;
  peergrid::scheduler::NormalizeJob(job);
  (void)peergrid::scheduler::ValidateJob(job, peergrid::scheduler::JobLimits());
  return 0;
}
