#include "node/process_metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace peergrid {
namespace {

prometheus::MetricFamily Single(const char* name, const char* help,
                                prometheus::MetricType type, double value) {
  prometheus::MetricFamily family;
  family.name = name;
  family.help = help;
  family.type = type;
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family.metric.push_back(metric);
  return family;
}

int CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  int count = 0;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count - 1;  // The directory stream's own descriptor.
}

}  // namespace

std::vector<prometheus::MetricFamily> ProcessMetrics::Collect() const {
  const double page_bytes = static_cast<double>(sysconf(_SC_PAGESIZE));
  const double ticks_per_second = static_cast<double>(sysconf(_SC_CLK_TCK));

  double resident_pages = 0;
  {
    std::ifstream statm("/proc/self/statm");
    double size_pages = 0;
    statm >> size_pages >> resident_pages;
  }
  double cpu_ticks = 0;
  double threads = 0;
  {
    // Fields after the parenthesised command name, which may hold spaces.
    std::ifstream stat_file("/proc/self/stat");
    std::string stat((std::istreambuf_iterator<char>(stat_file)),
                     std::istreambuf_iterator<char>());
    const size_t close = stat.rfind(')');
    if (close != std::string::npos) {
      std::istringstream fields(stat.substr(close + 2));
      std::string field;
      // Field 3 (state) is index 0 here; utime is field 14, stime 15,
      // num_threads 20.
      for (int index = 0; fields >> field; ++index) {
        if (index == 11 || index == 12) cpu_ticks += std::stod(field);
        if (index == 17) {
          threads = std::stod(field);
          break;
        }
      }
    }
  }

  return {
      Single("peergrid_process_resident_memory_bytes",
             "Resident memory of the node process in bytes.",
             prometheus::MetricType::Gauge, resident_pages * page_bytes),
      Single("peergrid_process_cpu_seconds_total",
             "User and system CPU time spent by the node process in seconds.",
             prometheus::MetricType::Counter, cpu_ticks / ticks_per_second),
      Single("peergrid_process_threads", "Threads of the node process.",
             prometheus::MetricType::Gauge, threads),
      Single("peergrid_process_open_fds",
             "Open file descriptors of the node process.",
             prometheus::MetricType::Gauge, CountOpenFds()),
  };
}

}  // namespace peergrid
