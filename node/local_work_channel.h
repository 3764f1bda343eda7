// The origin's way to its own node's worker: the same credit protocol as a
// remote work stream, without a network hop. Adapts worker::WorkSession to
// scheduler::WorkChannel; blobs come straight from the job manager.
#ifndef PEERGRID_NODE_LOCAL_WORK_CHANNEL_H_
#define PEERGRID_NODE_LOCAL_WORK_CHANNEL_H_

#include <memory>

#include "scheduler/work_channel.h"

namespace peergrid {

namespace scheduler {
class JobManager;
}
namespace worker {
class Worker;
}

// Opens a session on `worker` for the dispatcher. `worker` and `jobs` must
// outlive the channel.
std::unique_ptr<scheduler::WorkChannel> OpenLocalWorkChannel(
    worker::Worker& worker, scheduler::JobManager& jobs,
    const v1::OpenWork& open,
    std::shared_ptr<scheduler::WorkChannelEvents> events);

}  // namespace peergrid

#endif  // PEERGRID_NODE_LOCAL_WORK_CHANNEL_H_
