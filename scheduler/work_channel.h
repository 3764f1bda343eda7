// One stream of work from this origin to one worker, as the dispatcher sees
// it: remote workers through gRPC (grpc_work_channel.h), the origin's own
// worker in process. Both speak the credit protocol of proto/work.proto.
#ifndef PEERGRID_SCHEDULER_WORK_CHANNEL_H_
#define PEERGRID_SCHEDULER_WORK_CHANNEL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "proto/work.pb.h"

namespace peergrid::scheduler {

// What a channel reports. Called from any thread, possibly concurrently and
// possibly from inside a WorkChannel method; must not block. After
// OnClosed() nothing more is called.
class WorkChannelEvents {
 public:
  virtual ~WorkChannelEvents() = default;
  virtual void OnCredits(uint32_t slots) = 0;
  virtual void OnResult(v1::WorkResult result) = 0;
  virtual void OnClosed(const absl::Status& status) = 0;
};

// Thread-safe; no method blocks.
class WorkChannel {
 public:
  virtual ~WorkChannel() = default;
  // Slots this origin could fill on the worker now (running + ready).
  virtual void SetDemand(uint32_t slots) = 0;
  // Tasks sent against credits received.
  virtual void Submit(v1::Bundle bundle) = 0;
  virtual void Cancel(v1::CancelWork cancel) = 0;
  // Ends the stream; the worker stops its tasks. OnClosed follows (maybe
  // already on this thread).
  virtual void Close() = 0;
};

struct WorkerEndpoint {
  std::string name;
  std::string address;
};

// Opens a channel to `worker`. `events` stays alive as long as the channel
// holds it. Never fails: a worker that cannot be reached shows as OnClosed.
using WorkChannelFactory = std::function<std::unique_ptr<WorkChannel>(
    const WorkerEndpoint& worker, const v1::OpenWork& open,
    std::shared_ptr<WorkChannelEvents> events)>;

}  // namespace peergrid::scheduler

#endif  // PEERGRID_SCHEDULER_WORK_CHANNEL_H_
