// What an origin takes from the wire: a Submit (the job's protobuf, from a
// client) and then results for its tasks (WorkResult, from a worker that
// may lie), through the JobManager's whole life of a job: submit, place,
// accept results, read, cancel, lose the worker.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "proto/jobs.pb.h"
#include "proto/work.pb.h"
#include "scheduler/job_manager.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using peergrid::scheduler::JobManager;
  peergrid::fuzz::FuzzInput input(data, size);
  peergrid::v1::SubmitRequest request;
  if (!request.ParseFromString(input.Piece())) return 0;
  // One manager per input: jobs that never finish would pile up otherwise.
  auto jobs = std::make_unique<JobManager>(
      peergrid::scheduler::JobManagerOptions(), nullptr);
  absl::StatusOr<std::string> id = jobs->Submit(request.job(), "fuzz");
  if (!id.ok()) return 0;
  const peergrid::scheduler::ChannelId channel = 1 + input.Byte();
  jobs->Take(1 + input.Byte(), channel, "worker");
  while (!input.empty()) {
    peergrid::v1::WorkResult result;
    if (!result.ParseFromString(input.Piece())) continue;
    if (input.Byte() & 1) result.set_job_id(*id);
    jobs->AcceptResult(channel, "worker", std::move(result));
  }
  (void)jobs->Read(*id, input.Byte(), 16);
  (void)jobs->ReadBlob(std::string(64, 'a'), "worker");
  if (data[0] & 1) (void)jobs->Cancel(*id);
  jobs->ChannelLost(channel, "worker", "fuzz");
  return 0;
}
