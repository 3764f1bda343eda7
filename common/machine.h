// Facts about this machine that a node advertises, read from /proc.
// Each call reads afresh; all are thread-safe and cheap (one small file).
#ifndef PEERGRID_COMMON_MACHINE_H_
#define PEERGRID_COMMON_MACHINE_H_

#include <cstdint>
#include <string>

namespace peergrid {

// Online CPUs (at least 1).
int MachineCores();
// 1-minute load average, or 0 if /proc/loadavg cannot be read.
double LoadAverage1m();
// MemAvailable from /proc/meminfo in bytes, or 0 if unknown.
uint64_t MemoryAvailableBytes();
// The host name, or "localhost" if it cannot be read.
std::string HostName();

}  // namespace peergrid

#endif  // PEERGRID_COMMON_MACHINE_H_
