#include "node/cli/name_flag.h"

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, name, "",
          "node: this node's name in the grid; empty means its TLS "
          "certificate's name, else the host name plus ':PORT' when the "
          "gRPC port is not 7420. ca issue: the "
          "certificate's name, which is the member name of the node (or "
          "the user) that holds it.");
