// `peergrid status`: one line per member of the grid, as a node sees it.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "node/cli/client.h"
#include "node/cli/command.h"
#include "node/cli/tls_flags.h"

namespace peergrid::cli {
namespace {

constexpr auto kCallTimeout = std::chrono::seconds(5);

const char* StateName(v1::MemberState state) {
  switch (state) {
    case v1::MEMBER_STATE_ALIVE:
      return "alive";
    case v1::MEMBER_STATE_SUSPECT:
      return "suspect";
    case v1::MEMBER_STATE_DEAD:
      return "dead";
    case v1::MEMBER_STATE_LEFT:
      return "left";
    default:
      return "unknown";
  }
}

std::string HeardAgo(const v1::MemberStatus& member, bool is_self) {
  if (is_self) return "self";
  const int64_t ms = member.last_heard_ms_ago();
  if (ms < 1000) return absl::StrCat(ms, "ms");
  if (ms < 120'000) return absl::StrFormat("%.1fs", ms / 1000.0);
  return absl::StrCat(ms / 60'000, "m");
}

int RunStatus(const Command& command, std::vector<std::string> args) {
  std::vector<std::string> positional;
  int exit_code = kExitOk;
  if (!ParseCommand(command, args, &positional, &exit_code)) return exit_code;
  if (!CheckNoArguments(command, positional)) return kExitUsage;
  const std::string address = NodeAddress();
  absl::StatusOr<std::unique_ptr<v1::Jobs::Stub>> made = JobsStub(address);
  if (!made.ok()) {
    PrintError(command, std::string(made.status().message()));
    return kExitUsage;
  }
  std::unique_ptr<v1::Jobs::Stub> stub = *std::move(made);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
  v1::ClusterStatusResponse response;
  grpc::Status status =
      stub->ClusterStatus(&context, v1::ClusterStatusRequest(), &response);
  if (!status.ok()) {
    PrintError(command, DescribeCallError(address, status));
    return kExitFailure;
  }

  const char* format = "%-20s %-22s %-8s %6s %6s %8s %6s %-10s %s\n";
  std::cout << absl::StrFormat(format, "NAME", "ADDRESS", "STATE", "CORES",
                               "FREE", "RUNNING", "LOAD", "VERSION", "HEARD");
  for (const v1::MemberStatus& member : response.members()) {
    const v1::Advertisement& ad = member.advertisement();
    std::cout << absl::StrFormat(
        format, ad.name(), ad.grpc_address(), StateName(member.state()),
        absl::StrFormat("%g", ad.cores_donated()),
        absl::StrFormat("%g", ad.cores_free()),
        absl::StrCat(ad.tasks_running()),
        absl::StrFormat("%.2f", ad.load_average()), ad.version(),
        HeardAgo(member, ad.name() == response.self()));
  }
  return kExitOk;
}

}  // namespace

const Command& StatusCommand() {
  static const Command* command = new Command{
      "status",
      "list the members of the grid as a node sees them",
      "[--node=HOST:PORT]\n\n"
      "Asks a node for its view of the grid and prints one line per member:\n"
      "name, address, state (alive, suspect, dead, left), cores donated,\n"
      "cores free, tasks running, load average, version, and how long ago\n"
      "the node last heard from it. Exits 1 if the node cannot be reached.",
      {kClientFlagsFile, kTlsFlagsFile},
      &RunStatus,
  };
  return *command;
}

}  // namespace peergrid::cli
