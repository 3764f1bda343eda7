// TlsCredentials: the gRPC credentials of a node or a client of the grid,
// built from its certificate, key, the cluster CA and its CRL (`peergrid
// ca`, docs/security.md).
//
// Both ends of every connection present a certificate of the cluster CA
// and check the other's (mutual TLS) against the TrustStore: the chain,
// validity and revocation. Beyond that, a client checks that the server holds a
// `node` certificate and, when it dials a known member, that the certificate is
// that member's: a holder of a `submit` or `read` certificate cannot pose as
// a node. Host names are not checked: a member is known by its name, not by
// the address it happens to have.
//
// The certificate and key are watched (gRPC's FileWatcherCertificateProvider):
// a renewed pair is used for new connections within the refresh interval,
// without a restart; connections open keep theirs. The CA and the CRL are
// the TrustStore's (trust_store.h): re-read within a second of a change,
// and applied to every later handshake and every later call.
//
// Thread safety: immutable after Create; every method is thread-safe.
#ifndef PEERGRID_NODE_TLS_CREDENTIALS_H_
#define PEERGRID_NODE_TLS_CREDENTIALS_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "node/tls/cluster_ca.h"
#include "node/tls/trust_store.h"

namespace grpc {
class ChannelCredentials;
class ServerCredentials;
class AuthContext;
namespace experimental {
class CertificateProviderInterface;
}  // namespace experimental
}  // namespace grpc
namespace prometheus {
class Registry;
}  // namespace prometheus

namespace peergrid::tls {

// The --tls-* flags of a node or a client.
struct TlsFiles {
  std::string cert;  // PEM certificate issued by `peergrid ca issue`.
  std::string key;   // Its PEM private key.
  std::string ca;    // The cluster CA's certificate.
  std::string crl;   // A CRL file or directory (`peergrid ca`'s DIR/crl).
  // True when any of cert, key, ca is set: then all three must be.
  bool configured() const;
};

// The authenticated peer of a call: its certificate's name and role. Both
// empty on a connection without TLS.
struct PeerIdentity {
  std::string name;
  std::optional<Role> role;
};
PeerIdentity PeerOf(const grpc::AuthContext& context);

struct TlsOptions {
  // How often the certificate and key files are looked at.
  absl::Duration refresh = absl::Seconds(10);
  // How often, at most, the CA and CRL files are looked at.
  absl::Duration recheck = absl::Seconds(1);
  // Where refused peers are counted (a node's registry); null: nowhere.
  prometheus::Registry* registry = nullptr;
  bool log_refusals = true;
};

class TlsCredentials {
 public:
  // Checks the files before anything listens or dials, so that a mistake
  // is named at start (which flag, which file, what is wrong): all three
  // set, readable, the certificate issued by the CA and valid now, the key
  // its own, the CRL (if given) signed by the CA.
  static absl::StatusOr<std::shared_ptr<const TlsCredentials>> Create(
      const TlsFiles& files, const TlsOptions& options = {});

  // For the one gRPC port: requires a client certificate of the cluster CA.
  std::shared_ptr<grpc::ServerCredentials> ServerCredentials() const;
  // For a channel to a node; `peer_name` non-empty: that member only.
  std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(
      const std::string& peer_name = "") const;

  // This holder's certificate, as read at Create.
  const CertificateInfo& identity() const { return identity_; }
  // The CA and CRL that peers are checked against.
  const std::shared_ptr<TrustStore>& trust() const { return trust_; }

 private:
  TlsCredentials(
      CertificateInfo identity,
      std::shared_ptr<grpc::experimental::CertificateProviderInterface>
          provider,
      std::shared_ptr<TrustStore> trust);

  const CertificateInfo identity_;
  const std::shared_ptr<grpc::experimental::CertificateProviderInterface>
      provider_;
  const std::shared_ptr<TrustStore> trust_;
};

}  // namespace peergrid::tls

#endif  // PEERGRID_NODE_TLS_CREDENTIALS_H_
