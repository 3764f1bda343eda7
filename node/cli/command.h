// The `peergrid` subcommands and the flag handling they share.
//
// absl flags are process-wide, so each subcommand defines its flags in its
// own source file and accepts only the flags of the files it names: `peergrid
// status --cores=2` is refused instead of silently ignored. Users type flags
// with hyphens (--data-dir), as the product's CLI contract spells them; absl
// names them with underscores, and ParseCommand translates. Flags are parsed
// here rather than by absl::ParseCommandLine so that every command chooses
// its own exit status for usage errors.
#ifndef PEERGRID_NODE_CLI_COMMAND_H_
#define PEERGRID_NODE_CLI_COMMAND_H_

#include <string>
#include <utility>
#include <vector>

namespace peergrid::cli {

// Exit statuses shared by every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

struct Command {
  const char* name;     // "node"
  const char* summary;  // One line for `peergrid --help`.
  const char* usage;    // Synopsis and description for `--help`.
  // Source files (path suffixes) whose flags this command accepts.
  std::vector<std::string> flag_files;
  int (*run)(const Command& command, std::vector<std::string> args);
  // Short spellings, e.g. {"-k", "--keep-order"}.
  std::vector<std::pair<std::string, std::string>> aliases = {};
  // Exit status for a bad flag or argument.
  int usage_exit_code = kExitUsage;
  // Whether flags stop at the first argument that is not one, so that a
  // command line after it keeps its own flags (`peergrid run echo -n {}`).
  bool flags_end_at_first_argument = false;
  // Whether the command handles SIGINT and SIGTERM itself (by sigwait or
  // StopSignals). main() then blocks them before anything starts a thread,
  // so that no gRPC thread takes one and kills the process.
  bool handles_stop_signals = false;
};

// Parses the flags in `args` (everything after the subcommand's name) for
// `command`: "--flag=value", "--flag value", "--bool", "--nobool"; after
// "--" everything is positional. On --help prints the command's help and
// returns false with kExitOk in `exit_code`; on a flag error prints it and
// returns false with the command's usage exit status. Otherwise returns true
// with the positional arguments, in order, in `positional`.
bool ParseCommand(const Command& command, const std::vector<std::string>& args,
                  std::vector<std::string>* positional, int* exit_code);

// For commands that take no arguments: prints the error and returns false
// when `positional` is not empty.
bool CheckNoArguments(const Command& command,
                      const std::vector<std::string>& positional);

// Prints "peergrid NAME: message" to stderr.
void PrintError(const Command& command, const std::string& message);

// The subcommands.
const Command& NodeCommand();
const Command& RunCommand();
const Command& SubmitCommand();
const Command& WaitCommand();
const Command& JobsCommand();
const Command& CancelCommand();
const Command& StatusCommand();
const Command& VersionCommand();
const Command& CaCommand();

}  // namespace peergrid::cli

#endif  // PEERGRID_NODE_CLI_COMMAND_H_
