#include "worker/options.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace peergrid::worker {

absl::StatusOr<DonateMode> ParseDonateMode(absl::string_view text) {
  if (text == "all") return DonateMode::kAll;
  if (text == "idle") return DonateMode::kIdle;
  return absl::InvalidArgumentError(
      absl::StrCat("--donate must be 'all' or 'idle', not '", text, "'"));
}

absl::Status ParseAcceptKinds(absl::string_view text, WorkerOptions& options) {
  bool exec = false, kernel = false;
  for (absl::string_view kind : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    if (kind == "exec") {
      exec = true;
    } else if (kind == "kernel") {
      kernel = true;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "--accept takes 'exec' and/or 'kernel', not '", kind, "'"));
    }
  }
  if (!exec && !kernel) {
    return absl::InvalidArgumentError("--accept needs exec, kernel or both");
  }
  options.accept_exec = exec;
  options.accept_kernel = kernel;
  return absl::OkStatus();
}

absl::Status ParseSandbox(absl::string_view text, WorkerOptions& options) {
  if (text.empty() || text == "none") {
    options.sandbox_bwrap = false;
  } else if (text == "bwrap") {
    options.sandbox_bwrap = true;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--sandbox must be 'none' or 'bwrap', not '", text, "'"));
  }
  return absl::OkStatus();
}

}  // namespace peergrid::worker
