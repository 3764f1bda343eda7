#include "node/cli/tls_flags.h"

#include <cstdlib>
#include <string>

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, tls_cert, "",
          "This holder's certificate (from 'peergrid ca issue'); with "
          "--tls-key and --tls-ca, every connection is mutual TLS. Clients "
          "default to $PEERGRID_TLS_CERT.");
ABSL_FLAG(std::string, tls_key, "",
          "The certificate's private key. Clients default to "
          "$PEERGRID_TLS_KEY.");
ABSL_FLAG(std::string, tls_ca, "",
          "The cluster CA's certificate (DIR/ca.crt of 'peergrid ca init'; "
          "a bundle of several is trusted whole). A node re-reads it within "
          "a second of a change. Clients default to $PEERGRID_TLS_CA.");
ABSL_FLAG(std::string, tls_crl, "",
          "The CA's CRL, a file or a directory (DIR/crl), to refuse revoked "
          "certificates; a node re-reads it within a second of a change, or "
          "on SIGHUP. Clients default to $PEERGRID_TLS_CRL.");

namespace peergrid::cli {
namespace {

std::string FlagOrEnv(const absl::Flag<std::string>& flag, const char* env) {
  std::string value = absl::GetFlag(flag);
  if (!value.empty()) return value;
  const char* from_env = std::getenv(env);
  return from_env != nullptr ? from_env : "";
}

}  // namespace

tls::TlsFiles NodeTlsFiles() {
  tls::TlsFiles files;
  files.cert = absl::GetFlag(FLAGS_tls_cert);
  files.key = absl::GetFlag(FLAGS_tls_key);
  files.ca = absl::GetFlag(FLAGS_tls_ca);
  files.crl = absl::GetFlag(FLAGS_tls_crl);
  return files;
}

tls::TlsFiles ClientTlsFiles() {
  tls::TlsFiles files;
  files.cert = FlagOrEnv(FLAGS_tls_cert, "PEERGRID_TLS_CERT");
  files.key = FlagOrEnv(FLAGS_tls_key, "PEERGRID_TLS_KEY");
  files.ca = FlagOrEnv(FLAGS_tls_ca, "PEERGRID_TLS_CA");
  files.crl = FlagOrEnv(FLAGS_tls_crl, "PEERGRID_TLS_CRL");
  return files;
}

}  // namespace peergrid::cli
