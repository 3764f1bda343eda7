#include "common/thread_name.h"

#include <pthread.h>

#include <string>

namespace peergrid {

void SetCurrentThreadName(absl::string_view name) {
  constexpr size_t kMaxLength = 15;  // The kernel's limit, without the NUL.
  const std::string truncated(name.substr(0, kMaxLength));
  pthread_setname_np(pthread_self(), truncated.c_str());
}

}  // namespace peergrid
