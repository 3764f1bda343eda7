// `peergrid ca init|issue|revoke`: the grid's own certificate authority
// (node/tls/cluster_ca.h, docs/security.md).
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "node/cli/command.h"
#include "node/cli/name_flag.h"
#include "node/tls/cluster_ca.h"

ABSL_FLAG(std::string, dir, "",
          "The CA's directory: ca.crt, ca.key (mode 0600), issued.txt and "
          "the CRL directory crl/.");
ABSL_FLAG(std::string, role, "node",
          "issue: what the holder may do: 'node' (a member of the grid: "
          "everything), 'submit' (run, watch and cancel its own jobs) or "
          "'read' (list, get and watch jobs, cluster status).");
ABSL_FLAG(std::vector<std::string>, host, {},
          "issue: DNS names and IP addresses the certificate is valid for, "
          "comma-separated; for a node, every address it listens and "
          "advertises on.");
ABSL_FLAG(int, days, 365, "issue: days the certificate is valid.");
ABSL_FLAG(std::string, out, "",
          "issue: writes OUT.crt and OUT.key (mode 0600), replacing them "
          "atomically: a node watching them picks up the new pair.");

namespace peergrid::cli {
namespace {

int RunCa(const Command& command, std::vector<std::string> args) {
  std::vector<std::string> positional;
  int exit_code = kExitOk;
  if (!ParseCommand(command, args, &positional, &exit_code)) return exit_code;
  const std::string action = positional.empty() ? "" : positional[0];
  const std::string dir = absl::GetFlag(FLAGS_dir);
  const size_t want_arguments = action == "revoke" ? 2 : 1;
  if (action != "init" && action != "issue" && action != "revoke") {
    PrintError(command, action.empty()
                            ? "needs init, issue or revoke (see --help)"
                            : absl::StrCat("unknown action '", action,
                                           "': init, issue or revoke"));
    return kExitUsage;
  }
  if (positional.size() != want_arguments) {
    PrintError(command, action == "revoke"
                            ? "revoke takes the certificate's NAME"
                            : absl::StrCat(action, " takes no arguments"));
    return kExitUsage;
  }
  if (dir.empty()) {
    PrintError(command, "--dir is required");
    return kExitUsage;
  }
  if (action == "init") {
    if (absl::Status s = tls::InitCa(dir); !s.ok()) {
      PrintError(command, std::string(s.message()));
      return kExitFailure;
    }
    std::cout << "CA made in " << dir << ": give " << dir
              << "/ca.crt to every node and client as --tls-ca, and "
              << tls::CrlDirectory(dir)
              << " as --tls-crl; keep ca.key on this machine only.\n";
    return kExitOk;
  }
  if (action == "revoke") {
    absl::StatusOr<int> revoked = tls::RevokeCertificates(dir, positional[1]);
    if (!revoked.ok()) {
      PrintError(command, std::string(revoked.status().message()));
      return revoked.status().code() == absl::StatusCode::kInvalidArgument
                 ? kExitUsage
                 : kExitFailure;
    }
    std::cout << "revoked " << *revoked << " certificate(s) named '"
              << positional[1] << "'; copy " << tls::CrlDirectory(dir)
              << " to every node's --tls-crl (or point --tls-crl at it):\n"
              << "nodes re-read it within a second, or at once on SIGHUP, and\n"
              << "refuse the revoked certificate on every later call.\n";
    return kExitOk;
  }
  tls::IssueOptions options;
  options.name = absl::GetFlag(FLAGS_name);
  absl::StatusOr<tls::Role> role = tls::ParseRole(absl::GetFlag(FLAGS_role));
  if (!role.ok()) {
    PrintError(command, std::string(role.status().message()));
    return kExitUsage;
  }
  options.role = *role;
  options.hosts = absl::GetFlag(FLAGS_host);
  options.days = absl::GetFlag(FLAGS_days);
  options.out_prefix = absl::GetFlag(FLAGS_out);
  if (absl::Status s = tls::IssueCertificate(dir, options); !s.ok()) {
    PrintError(command, std::string(s.message()));
    return s.code() == absl::StatusCode::kInvalidArgument ? kExitUsage
                                                          : kExitFailure;
  }
  std::cout << "issued " << options.out_prefix << ".crt and "
            << options.out_prefix << ".key for '" << options.name << "' (role "
            << tls::RoleName(options.role) << ", " << options.days
            << " days)\n";
  return kExitOk;
}

}  // namespace

const Command& CaCommand() {
  static const Command* command = new Command{
      "ca",
      "make the grid's certificate authority and issue certificates",
      "init|issue|revoke --dir=DIR [flags] [NAME]\n\n"
      "  ca init --dir=DIR\n"
      "      Makes a new CA (EC P-256, 10 years) in DIR. Refuses a DIR that\n"
      "      already holds one.\n"
      "  ca issue --dir=DIR --name=NAME --role=node|submit|read\n"
      "          [--host=HOST,...] [--days=N] --out=PREFIX\n"
      "      Issues PREFIX.crt and PREFIX.key for NAME, signed by the CA.\n"
      "      A node's NAME is its member name.\n"
      "  ca revoke --dir=DIR NAME\n"
      "      Revokes NAME's certificates: adds them to the CRL in DIR/crl.",
      {"node/cli/ca_command.cc", kNameFlagFile},
      &RunCa,
  };
  return *command;
}

}  // namespace peergrid::cli
