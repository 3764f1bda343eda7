// `peergrid version`: print the version of this binary.
#include <iostream>

#include "absl/strings/str_cat.h"
#include "common/version.h"
#include "node/cli/command.h"

namespace peergrid::cli {
namespace {

int RunVersion(const Command& command, std::vector<std::string> args) {
  std::vector<std::string> positional;
  int exit_code = kExitOk;
  if (!ParseCommand(command, args, &positional, &exit_code)) return exit_code;
  if (!CheckNoArguments(command, positional)) return kExitUsage;
  std::cout << "peergrid " << Version() << "\n";
  return kExitOk;
}

}  // namespace

const Command& VersionCommand() {
  static const Command* command = new Command{
      "version",
      "print the version of this binary",
      "\n\nPrints 'peergrid VERSION'.",
      {},
      &RunVersion,
  };
  return *command;
}

}  // namespace peergrid::cli
