// TlsCredentials: the gRPC credentials of a node or a client of the grid,
// built from its certificate, key, the cluster CA and the CRL directory
// (`peergrid ca`, docs/security.md).
//
// Both ends of every connection present a certificate of the cluster CA
// and check the other's (mutual TLS). Beyond the chain, which gRPC checks
// against the CA, a client checks that the server holds a `node`
// certificate and, when it dials a known member, that the certificate is
// that member's: a holder of a `submit` or `read` certificate cannot pose as
// a node. Host names are not checked: a member is known by its name, not by
// the address it happens to have.
//
// The files are watched (gRPC's FileWatcherCertificateProvider): a renewed
// certificate, key or CA is used for new connections within the refresh
// interval, without a restart; connections open keep theirs.
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

namespace grpc {
class ChannelCredentials;
class ServerCredentials;
class AuthContext;
namespace experimental {
class CertificateProviderInterface;
}  // namespace experimental
}  // namespace grpc

namespace peergrid::tls {

// The --tls-* flags of a node or a client.
struct TlsFiles {
  std::string cert;  // PEM certificate issued by `peergrid ca issue`.
  std::string key;   // Its PEM private key.
  std::string ca;    // The cluster CA's certificate.
  std::string crl;   // The CRL directory (`peergrid ca`'s DIR/crl); optional.
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

class TlsCredentials {
 public:
  // Checks the files before anything listens or dials, so that a mistake
  // is named at start (which flag, which file, what is wrong): all three
  // set, readable, the certificate issued by the CA and valid now, the key
  // its own, the CRL directory present if given.
  static absl::StatusOr<std::shared_ptr<const TlsCredentials>> Create(
      const TlsFiles& files, absl::Duration refresh = absl::Seconds(10));

  // For the one gRPC port: requires a client certificate of the cluster CA.
  std::shared_ptr<grpc::ServerCredentials> ServerCredentials() const;
  // For a channel to a node; `peer_name` non-empty: that member only.
  std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(
      const std::string& peer_name = "") const;

  // This holder's certificate, as read at Create.
  const CertificateInfo& identity() const { return identity_; }

 private:
  TlsCredentials(
      TlsFiles files, CertificateInfo identity,
      std::shared_ptr<grpc::experimental::CertificateProviderInterface>
          provider);

  const TlsFiles files_;
  const CertificateInfo identity_;
  const std::shared_ptr<grpc::experimental::CertificateProviderInterface>
      provider_;
};

}  // namespace peergrid::tls

#endif  // PEERGRID_NODE_TLS_CREDENTIALS_H_
