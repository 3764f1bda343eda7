// Idle donation (--donate=idle): sample /proc/stat every interval, work out
// how many cores the machine's other processes use, and donate the rest,
// with hysteresis; ask to suspend exec tasks while the owner stays busy.
#ifndef PEERGRID_WORKER_DONATION_H_
#define PEERGRID_WORKER_DONATION_H_

#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "worker/options.h"

namespace peergrid::worker {

// Pure policy over a series of foreign-load samples (cores in use by other
// processes). Not thread-safe; owned by one thread.
class IdlePolicy {
 public:
  struct Decision {
    int donate = 0;
    bool suspend = false;
    double foreign_cores = 0;
  };
  IdlePolicy(int machine_cores, int max_donate, const IdleOptions& options)
      : machine_cores_(machine_cores),
        max_donate_(max_donate),
        options_(options) {}
  Decision Update(double foreign_cores);

 private:
  const int machine_cores_;
  const int max_donate_;
  const IdleOptions options_;
  bool first_ = true;
  Decision d_;
  int raise_count_ = 0, busy_count_ = 0, idle_count_ = 0;
};

struct CpuTimes {
  uint64_t total = 0;  // Jiffies, all CPUs.
  uint64_t busy = 0;   // total - idle - iowait.
};
// Parses the aggregate "cpu" line of /proc/stat.
absl::StatusOr<CpuTimes> ReadCpuTimes(const std::string& path);
// CPU seconds used by this process, its reaped children, and `pids` (live
// children) with their reaped children.
double OwnCpuSeconds(const std::vector<int>& pids);

// The sampling thread. Calls `apply` on its own thread after each sample.
class IdleDonor {
 public:
  using PidsFn = std::function<std::vector<int>()>;
  using ApplyFn = std::function<void(const IdlePolicy::Decision&)>;
  IdleDonor(const IdleOptions& options, int machine_cores, int max_donate,
            PidsFn pids, ApplyFn apply);
  ~IdleDonor();  // Stops the thread.

 private:
  void Loop();
  const IdleOptions options_;
  const int machine_cores_;
  IdlePolicy policy_;
  PidsFn pids_;
  ApplyFn apply_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace peergrid::worker

#endif  // PEERGRID_WORKER_DONATION_H_
