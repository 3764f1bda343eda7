// The one binary, `peergrid`, and its subcommands.
#include <pthread.h>
#include <signal.h>

#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "common/version.h"
#include "node/cli/command.h"

namespace peergrid::cli {
namespace {

const std::vector<const Command*>& Commands() {
  static const auto* commands = new std::vector<const Command*>{
      &NodeCommand(),   &RunCommand(),  &SubmitCommand(),
      &WaitCommand(),   &JobsCommand(), &CancelCommand(),
      &StatusCommand(), &CaCommand(),   &VersionCommand()};
  return *commands;
}

void PrintUsage(std::ostream& out) {
  out << "peergrid " << Version()
      << ": a peer-to-peer compute-sharing grid\n\n"
         "Usage: peergrid COMMAND [flags] [args]\n\nCommands:\n";
  for (const Command* command : Commands()) {
    out << absl::StrFormat("  %-10s %s\n", command->name, command->summary);
  }
  out << "\nRun 'peergrid COMMAND --help' for a command's flags.\n";
}

int Main(int argc, char** argv) {
  if (argc < 2) {
    PrintUsage(std::cerr);
    return kExitUsage;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    PrintUsage(std::cout);
    return kExitOk;
  }
  for (const Command* command : Commands()) {
    if (name == command->name) {
      if (command->handles_stop_signals) {
        sigset_t stop_signals;
        sigemptyset(&stop_signals);
        sigaddset(&stop_signals, SIGINT);
        sigaddset(&stop_signals, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
      }
      return command->run(*command,
                          std::vector<std::string>(argv + 2, argv + argc));
    }
  }
  std::cerr << "peergrid: unknown command '" << name
            << "' (see 'peergrid --help')\n";
  return kExitUsage;
}

}  // namespace
}  // namespace peergrid::cli

int main(int argc, char** argv) {
  // Debian's Abseil checks lock order on every mutex acquisition, which
  // costs the node's hot paths dearly; the test suites keep the checks on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return peergrid::cli::Main(argc, argv);
}
