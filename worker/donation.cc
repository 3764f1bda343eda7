#include "worker/donation.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/log.h"
#include "common/thread_name.h"

namespace peergrid::worker {

IdlePolicy::Decision IdlePolicy::Update(double foreign) {
  d_.foreign_cores = foreign;
  const int want = std::clamp(
      machine_cores_ -
          static_cast<int>(std::ceil(foreign - options_.tolerance_cores)),
      0, max_donate_);
  const bool busy = foreign >= options_.busy_fraction * machine_cores_;
  if (busy) {
    ++busy_count_;
    idle_count_ = 0;
    if (busy_count_ >= options_.suspend_after_samples) d_.suspend = true;
  } else {
    ++idle_count_;
    busy_count_ = 0;
    if (d_.suspend && idle_count_ >= options_.resume_after_samples) {
      d_.suspend = false;
    }
  }
  if (first_ || want < d_.donate) {
    d_.donate = want;
    raise_count_ = 0;
    first_ = false;
  } else if (want > d_.donate) {
    if (++raise_count_ >= options_.raise_after_samples) {
      d_.donate = want;
      raise_count_ = 0;
    }
  } else {
    raise_count_ = 0;
  }
  Decision out = d_;
  if (out.suspend) out.donate = 0;
  return out;
}

absl::StatusOr<CpuTimes> ReadCpuTimes(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line) || line.rfind("cpu ", 0) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot read ", path));
  }
  std::istringstream fields(line.substr(4));
  uint64_t v[8] = {};
  for (auto& x : v) fields >> x;
  CpuTimes t;
  for (uint64_t x : v) t.total += x;
  t.busy = t.total - v[3] - v[4];
  return t;
}

namespace {
// utime + stime + cutime + cstime of /proc/PID/stat, in clock ticks.
uint64_t ProcTicks(const std::string& pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string s;
  std::getline(in, s);
  const size_t paren = s.rfind(')');
  if (paren == std::string::npos) return 0;
  std::vector<std::string> f =
      absl::StrSplit(s.substr(paren + 2), ' ', absl::SkipEmpty());
  // f[0] is field 3 (state); utime is field 14 -> f[11].
  if (f.size() < 15) return 0;
  uint64_t total = 0;
  for (int i = 11; i <= 14; ++i)
    total += std::strtoull(f[i].c_str(), nullptr, 10);
  return total;
}
}  // namespace

double OwnCpuSeconds(const std::vector<int>& pids) {
  uint64_t ticks = ProcTicks("self");
  for (int pid : pids) ticks += ProcTicks(absl::StrCat(pid));
  return static_cast<double>(ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

IdleDonor::IdleDonor(const IdleOptions& options, int machine_cores,
                     int max_donate, PidsFn pids, ApplyFn apply)
    : options_(options),
      machine_cores_(machine_cores),
      policy_(machine_cores, max_donate, options),
      pids_(std::move(pids)),
      apply_(std::move(apply)) {
  thread_ = std::thread([this] {
    SetCurrentThreadName("pg-donation");
    Loop();
  });
}

IdleDonor::~IdleDonor() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void IdleDonor::Loop() {
  auto prev = ReadCpuTimes(options_.proc_stat_path);
  double prev_own = OwnCpuSeconds(pids_());
  absl::Time prev_time = absl::Now();
  // The first decision comes after a short sample, so that a node starting
  // on a busy machine does not donate for a whole interval.
  absl::Duration wait = std::min(options_.interval, absl::Milliseconds(200));
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stop_), wait)) return;
    }
    wait = options_.interval;
    auto now = ReadCpuTimes(options_.proc_stat_path);
    const double own = OwnCpuSeconds(pids_());
    const absl::Time now_time = absl::Now();
    if (!now.ok() || !prev.ok() || now->total <= prev->total) {
      prev = now;
      continue;
    }
    const double busy_fraction = static_cast<double>(now->busy - prev->busy) /
                                 static_cast<double>(now->total - prev->total);
    const double elapsed = absl::ToDoubleSeconds(now_time - prev_time);
    const double own_cores = elapsed > 0 ? (own - prev_own) / elapsed : 0;
    const double foreign =
        std::max(0.0, busy_fraction * machine_cores_ - own_cores);
    prev = now;
    prev_own = own;
    prev_time = now_time;
    const IdlePolicy::Decision d = policy_.Update(foreign);
    LogDebug("idle donation: foreign %.2f cores, donate %d%s", foreign,
             d.donate, d.suspend ? ", suspended" : "");
    apply_(d);
  }
}

}  // namespace peergrid::worker
