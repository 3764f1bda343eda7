#include "common/machine.h"

#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>

namespace peergrid {

int MachineCores() {
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  if (online > 0) return static_cast<int>(online);
  const unsigned hardware = std::thread::hardware_concurrency();
  return hardware > 0 ? static_cast<int>(hardware) : 1;
}

double LoadAverage1m() {
  std::ifstream file("/proc/loadavg");
  double load = 0;
  if (!(file >> load)) return 0;
  return load;
}

uint64_t MemoryAvailableBytes() {
  std::ifstream file("/proc/meminfo");
  std::string key;
  uint64_t value_kib = 0;
  std::string unit;
  while (file >> key >> value_kib >> unit) {
    if (key == "MemAvailable:") return value_kib * 1024;
  }
  return 0;
}

std::string HostName() {
  char buffer[256] = {};
  if (gethostname(buffer, sizeof(buffer) - 1) != 0 || buffer[0] == '\0') {
    return "localhost";
  }
  return buffer;
}

}  // namespace peergrid
