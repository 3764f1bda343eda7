#include "common/version.h"

namespace peergrid {

const char* Version() { return PEERGRID_VERSION; }

}  // namespace peergrid
