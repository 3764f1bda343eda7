// --name, shared by `peergrid node` (the member name) and `peergrid ca
// issue` (the certificate's subject name, which is a node's member name):
// absl flags are process-wide, so one flag serves both commands.
#ifndef PEERGRID_NODE_CLI_NAME_FLAG_H_
#define PEERGRID_NODE_CLI_NAME_FLAG_H_

#include <string>

#include "absl/flags/declare.h"

ABSL_DECLARE_FLAG(std::string, name);

namespace peergrid::cli {

// Source file of --name, for Command::flag_files.
inline constexpr char kNameFlagFile[] = "node/cli/name_flag.cc";

}  // namespace peergrid::cli

#endif  // PEERGRID_NODE_CLI_NAME_FLAG_H_
