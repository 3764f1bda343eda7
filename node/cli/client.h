// What the client subcommands share: the --node flag and a Jobs stub for it.
#ifndef PEERGRID_NODE_CLI_CLIENT_H_
#define PEERGRID_NODE_CLI_CLIENT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "proto/jobs.grpc.pb.h"

namespace peergrid::cli {

// Source file of the client flags, for Command::flag_files (with
// kTlsFlagsFile, node/cli/tls_flags.h).
inline constexpr char kClientFlagsFile[] = "node/cli/client.cc";

// The node to talk to: --node, else $PEERGRID_NODE, else 127.0.0.1:7420.
std::string NodeAddress();

// A stub for the Jobs service at `address`, over mutual TLS when the TLS
// flags or $PEERGRID_TLS_* name the files (InvalidArgument, naming the flag,
// when they are wrong). Calls fail fast with UNAVAILABLE when nothing
// listens there.
absl::StatusOr<std::unique_ptr<v1::Jobs::Stub>> JobsStub(
    const std::string& address);

// Submits `request` to the node at `address`; returns the job id, or a
// message for the user: the node's reason for refusing the job, or why it
// could not be reached.
absl::StatusOr<std::string> SubmitJob(v1::Jobs::Stub& stub,
                                      const std::string& address,
                                      const v1::SubmitRequest& request);

// "cannot reach the node at ADDR: ..." for a failed call, with a hint when
// nothing listens there.
std::string DescribeCallError(const std::string& address,
                              const grpc::Status& status);

}  // namespace peergrid::cli

#endif  // PEERGRID_NODE_CLI_CLIENT_H_
