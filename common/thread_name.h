// Names the calling thread, so that `top -H`, `ps -L`, perf and gdb show
// which part of the node burns CPU (every thread is "peergrid" otherwise).
#ifndef PEERGRID_COMMON_THREAD_NAME_H_
#define PEERGRID_COMMON_THREAD_NAME_H_

#include "absl/strings/string_view.h"

namespace peergrid {

// Linux keeps at most 15 characters; longer names are cut. Best effort:
// failure is ignored (a name is a debugging aid, never a reason to stop).
void SetCurrentThreadName(absl::string_view name);

}  // namespace peergrid

#endif  // PEERGRID_COMMON_THREAD_NAME_H_
