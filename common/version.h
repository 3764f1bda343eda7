// The version of this build, from the top-level CMake project().
#ifndef PEERGRID_COMMON_VERSION_H_
#define PEERGRID_COMMON_VERSION_H_

namespace peergrid {

const char* Version();

}  // namespace peergrid

#endif  // PEERGRID_COMMON_VERSION_H_
