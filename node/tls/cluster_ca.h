// ClusterCa: a grid's own certificate authority, kept in one directory, as
// `peergrid ca init|issue|revoke` manages it (docs/security.md).
//
// The directory holds
//   ca.crt        the CA's self-signed certificate (EC P-256, 10 years)
//   ca.key        its private key, mode 0600
//   issued.txt    one line per certificate issued: serial, name, role, expiry
//   crl/          the revocation list, as the hashed file (<hash>.r0) that
//                 gRPC's CRL directory option reads: pass it as --tls-crl
//
// Certificates it issues carry the member or user name as subject CN, and
// the role as the subject alternative name URI `peergrid:role:ROLE`, beside
// any DNS or IP names given. All crypto is OpenSSL's libcrypto.
//
// Thread safety: functions only; two processes managing the same directory
// at once may lose an issued.txt line (an operator's tool, run by hand).
#ifndef PEERGRID_NODE_TLS_CLUSTER_CA_H_
#define PEERGRID_NODE_TLS_CLUSTER_CA_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace peergrid::tls {

// What a certificate's holder may do (checked by the node on every call).
enum class Role { kNode, kSubmit, kRead };

// "node", "submit" or "read".
absl::StatusOr<Role> ParseRole(absl::string_view text);
const char* RoleName(Role role);
// The SAN URI that carries the role: "peergrid:role:node".
std::string RoleUri(Role role);

struct IssueOptions {
  std::string name;  // Subject CN: the member name, or the user's.
  Role role = Role::kNode;
  // DNS names and IP addresses (v4 or v6) to add as subject alternative
  // names; for a node, the addresses it listens and advertises on.
  std::vector<std::string> hosts;
  int days = 365;
  // Writes PREFIX.crt and PREFIX.key (mode 0600), replacing them atomically
  // if they exist, so that a node watching them picks up the new pair.
  std::string out_prefix;
};

// Creates the CA in `dir` (made if missing); AlreadyExists if it holds one.
absl::Status InitCa(const std::string& dir);

// Issues a certificate signed by the CA in `dir`.
absl::Status IssueCertificate(const std::string& dir,
                              const IssueOptions& options);

// Revokes every unexpired certificate issued under `name` and rewrites the
// CRL; returns how many were revoked (NotFound if none was issued).
absl::StatusOr<int> RevokeCertificates(const std::string& dir,
                                       const std::string& name);

// The CRL directory of the CA in `dir` (for --tls-crl).
std::string CrlDirectory(const std::string& dir);

// What a certificate says, as a node reads it.
struct CertificateInfo {
  std::string common_name;
  std::string issuer_common_name;
  std::optional<Role> role;  // None if it carries no peergrid role.
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  std::string serial_hex;
  absl::Time not_before;
  absl::Time not_after;
  bool is_ca = false;
};

// Parses the first certificate of PEM text.
absl::StatusOr<CertificateInfo> ParseCertificate(absl::string_view pem);
absl::StatusOr<CertificateInfo> ReadCertificateFile(const std::string& path);

// Whether the certificate in `cert_pem` is signed by the CA certificate in
// `ca_pem` and valid now (InvalidArgument or FailedPrecondition naming why
// not); checks no CRL.
absl::Status VerifyCertificate(absl::string_view cert_pem,
                               absl::string_view ca_pem);

// Whether `key_pem` is the private key of the certificate in `cert_pem`.
absl::Status CheckKeyPair(absl::string_view cert_pem,
                          absl::string_view key_pem);

}  // namespace peergrid::tls

#endif  // PEERGRID_NODE_TLS_CLUSTER_CA_H_
