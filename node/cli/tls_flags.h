// --tls-cert, --tls-key, --tls-ca and --tls-crl, shared by `peergrid node`
// and every client subcommand (absl flags are process-wide).
#ifndef PEERGRID_NODE_CLI_TLS_FLAGS_H_
#define PEERGRID_NODE_CLI_TLS_FLAGS_H_

#include "node/tls/credentials.h"

namespace peergrid::cli {

// Source file of the TLS flags, for Command::flag_files.
inline constexpr char kTlsFlagsFile[] = "node/cli/tls_flags.cc";

// The node's TLS files: the flags as given.
tls::TlsFiles NodeTlsFiles();
// A client's: each flag, else $PEERGRID_TLS_CERT, $PEERGRID_TLS_KEY,
// $PEERGRID_TLS_CA, $PEERGRID_TLS_CRL.
tls::TlsFiles ClientTlsFiles();

}  // namespace peergrid::cli

#endif  // PEERGRID_NODE_CLI_TLS_FLAGS_H_
