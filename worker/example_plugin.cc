// An example kernel plugin, loaded with --plugin=PATH.so (see
// docs/worker.md). It registers two kernels:
//   reverse: the argument reversed.
//   wordcount: the number of whitespace-separated words of the argument.
#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "worker/kernel.h"

namespace {

absl::StatusOr<std::string> Reverse(const peergrid::worker::KernelContext& c) {
  std::string s(c.argument());
  std::reverse(s.begin(), s.end());
  return s;
}

absl::StatusOr<std::string> WordCount(
    const peergrid::worker::KernelContext& c) {
  std::vector<absl::string_view> words =
      absl::StrSplit(c.argument(), absl::ByAnyChar(" \t\n"), absl::SkipEmpty());
  return absl::StrCat(words.size());
}

}  // namespace

extern "C" int peergrid_register_kernels(
    peergrid::worker::KernelRegistry* registry) {
  if (!registry->Register("reverse", Reverse).ok()) return 1;
  if (!registry->Register("wordcount", WordCount).ok()) return 2;
  return 0;
}
