#include "node/cli/command.h"

#include <algorithm>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace peergrid::cli {
namespace {

bool Owns(const Command& command, const absl::CommandLineFlag& flag) {
  return std::any_of(command.flag_files.begin(), command.flag_files.end(),
                     [&](const std::string& file) {
                       return absl::EndsWith(flag.Filename(), file);
                     });
}

std::string UserName(absl::string_view absl_name) {
  return absl::StrReplaceAll(absl_name, {{"_", "-"}});
}

// Wraps `text` at 72 columns, each line indented by `indent` spaces.
std::string Wrap(absl::string_view text, int indent) {
  std::string out(static_cast<size_t>(indent), ' ');
  size_t column = static_cast<size_t>(indent);
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (column > static_cast<size_t>(indent) && column + 1 + word.size() > 78) {
      absl::StrAppend(&out, "\n",
                      std::string(static_cast<size_t>(indent), ' '));
      column = static_cast<size_t>(indent);
    } else if (column > static_cast<size_t>(indent)) {
      out += ' ';
      ++column;
    }
    absl::StrAppend(&out, word);
    column += word.size();
  }
  return out;
}

void PrintHelp(const Command& command) {
  std::cout << "Usage: peergrid " << command.name << " " << command.usage
            << "\n";
  std::vector<const absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (Owns(command, *flag)) flags.push_back(flag);
  }
  std::sort(flags.begin(), flags.end(),
            [](const auto* a, const auto* b) { return a->Name() < b->Name(); });
  if (!flags.empty()) std::cout << "\nFlags:\n";
  for (const absl::CommandLineFlag* flag : flags) {
    std::cout << "  --" << UserName(flag->Name());
    const std::string default_value = flag->DefaultValue();
    if (!flag->IsOfType<bool>()) {
      std::cout << "=" << (default_value.empty() ? "\"\"" : default_value);
    }
    std::cout << "\n" << Wrap(flag->Help(), 6) << "\n";
  }
  std::cout << "  --help\n      Show this help and exit.\n";
}

// The flag's name as absl knows it: "--data-dir=x" -> "data_dir".
std::string AbslName(absl::string_view arg) {
  arg.remove_prefix(arg.size() > 1 && arg[1] == '-' ? 2 : 1);
  const size_t equals = arg.find('=');
  if (equals != absl::string_view::npos) arg = arg.substr(0, equals);
  return absl::StrReplaceAll(arg, {{"-", "_"}});
}

}  // namespace

void PrintError(const Command& command, const std::string& message) {
  std::cerr << "peergrid " << command.name << ": " << message << "\n";
}

bool CheckNoArguments(const Command& command,
                      const std::vector<std::string>& positional) {
  if (positional.empty()) return true;
  PrintError(command,
             absl::StrCat("unexpected argument '", positional[0],
                          "' (see 'peergrid ", command.name, " --help')"));
  return false;
}

bool ParseCommand(const Command& command, const std::vector<std::string>& args,
                  std::vector<std::string>* positional, int* exit_code) {
  const auto usage_error = [&](const std::string& message) {
    PrintError(command, absl::StrCat(message, " (see 'peergrid ", command.name,
                                     " --help')"));
    *exit_code = command.usage_exit_code;
    return false;
  };
  positional->clear();
  std::vector<absl::CommandLineFlag*> lists_seen;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    for (const auto& [alias, full] : command.aliases) {
      if (arg == alias) arg = full;
    }
    if (arg == "--") {
      positional->insert(positional->end(), args.begin() + i + 1, args.end());
      break;
    }
    if (arg == "-" || arg.size() < 2 || arg[0] != '-') {
      if (command.flags_end_at_first_argument) {
        positional->insert(positional->end(), args.begin() + i, args.end());
        break;
      }
      positional->push_back(arg);
      continue;
    }
    if (arg == "--help" || arg == "-h" || arg == "-help") {
      PrintHelp(command);
      *exit_code = kExitOk;
      return false;
    }
    std::string name = AbslName(arg);
    const size_t equals = arg.find('=');
    std::string value;
    bool has_value = equals != std::string::npos;
    if (has_value) value = arg.substr(equals + 1);

    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr && absl::StartsWith(name, "no") && !has_value) {
      // --nofoo turns a boolean flag off.
      flag = absl::FindCommandLineFlag(name.substr(2));
      if (flag == nullptr || !flag->IsOfType<bool>()) {
        flag = nullptr;
      } else {
        value = "false";
        has_value = true;
      }
    }
    if (flag == nullptr || !Owns(command, *flag)) {
      return usage_error(absl::StrCat("unknown flag '", arg, "'"));
    }
    if (!has_value) {
      if (flag->IsOfType<bool>()) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];  // "--node ADDR" as well as "--node=ADDR".
      } else {
        return usage_error(absl::StrCat("flag '", arg, "' needs a value"));
      }
    }
    if (flag->IsOfType<std::vector<std::string>>()) {
      // A repeated list flag adds to the list (--ship=a --ship=b).
      if (std::find(lists_seen.begin(), lists_seen.end(), flag) !=
          lists_seen.end()) {
        const std::string current = flag->CurrentValue();
        if (!current.empty()) value = absl::StrCat(current, ",", value);
      } else {
        lists_seen.push_back(flag);
      }
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return usage_error(absl::StrCat("bad value '", value, "' for --",
                                      UserName(name), ": ", error));
    }
  }
  return true;
}

}  // namespace peergrid::cli
