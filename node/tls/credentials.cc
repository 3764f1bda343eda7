#include "node/tls/credentials.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "node/tls/openssl.h"

namespace peergrid::tls {
namespace {

absl::StatusOr<std::string> ReadFlagFile(const char* flag,
                                         const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, "=", path, ": ", text.status().message()));
  }
  return text;
}

// Checks the peer's certificate at each handshake against the TrustStore
// (chain to the cluster CA, validity, CRL): gRPC's own chain check is off,
// so that every refusal is ours to count and name. A client further
// requires a node's certificate, and the dialled member's if it named one.
class PeerVerifier : public grpc::experimental::ExternalCertificateVerifier {
 public:
  enum class Side { kServer, kClient };
  PeerVerifier(std::shared_ptr<TrustStore> trust, Side side,
               std::string peer_name)
      : trust_(std::move(trust)),
        side_(side),
        peer_name_(std::move(peer_name)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> /*callback*/,
              grpc::Status* sync_status) override {
    const grpc::string_ref pem = request->peer_cert();
    Refusal refusal = Refusal::kInvalid;
    absl::StatusOr<CertificateInfo> peer =
        trust_->Verify(absl::string_view(pem.data(), pem.size()), &refusal);
    absl::Status verdict = peer.status();
    if (peer.ok() && side_ == Side::kClient) {
      if (peer->role != Role::kNode) {
        refusal = Refusal::kWrongRole;
        verdict = absl::UnauthenticatedError(
            absl::StrCat("the server's certificate '", peer->common_name,
                         "' is not a node's (no ", RoleUri(Role::kNode), ")"));
      } else if (!peer_name_.empty() && peer->common_name != peer_name_) {
        refusal = Refusal::kWrongName;
        verdict = absl::UnauthenticatedError(absl::StrCat(
            "dialled member '", peer_name_,
            "' but the server's certificate is '", peer->common_name, "'"));
      }
    }
    if (verdict.ok()) {
      *sync_status = grpc::Status::OK;
    } else {
      trust_->Refuse(refusal, peer.ok() ? peer->common_name : "",
                     verdict.message());
      *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                  std::string(verdict.message()));
    }
    return true;  // Done synchronously.
  }

  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {
  }

 private:
  const std::shared_ptr<TrustStore> trust_;
  const Side side_;
  const std::string peer_name_;
};

}  // namespace

bool TlsFiles::configured() const {
  return !cert.empty() || !key.empty() || !ca.empty();
}

PeerIdentity PeerOf(const grpc::AuthContext& context) {
  PeerIdentity peer;
  for (const grpc::string_ref& value :
       context.FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME)) {
    peer.name.assign(value.data(), value.size());
  }
  for (const grpc::string_ref& value :
       context.FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME)) {
    absl::string_view uri(value.data(), value.size());
    if (absl::ConsumePrefix(&uri, "peergrid:role:")) {
      absl::StatusOr<Role> role = ParseRole(uri);
      if (role.ok()) peer.role = *role;
    }
  }
  return peer;
}

absl::StatusOr<std::shared_ptr<const TlsCredentials>> TlsCredentials::Create(
    const TlsFiles& files, const TlsOptions& options) {
  if (files.cert.empty() || files.key.empty() || files.ca.empty()) {
    return absl::InvalidArgumentError(
        "TLS needs all three of --tls-cert, --tls-key and --tls-ca");
  }
  absl::StatusOr<std::string> cert = ReadFlagFile("--tls-cert", files.cert);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadFlagFile("--tls-key", files.key);
  if (!key.ok()) return key.status();
  absl::StatusOr<std::string> ca = ReadFlagFile("--tls-ca", files.ca);
  if (!ca.ok()) return ca.status();
  absl::StatusOr<CertificateInfo> identity = ParseCertificate(*cert);
  if (!identity.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls-cert=", files.cert, ": ", identity.status().message()));
  }
  if (absl::Status verified = VerifyCertificate(*cert, *ca); !verified.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-cert=", files.cert, " against --tls-ca=", files.ca,
                     ": ", verified.message()));
  }
  if (absl::Status paired = CheckKeyPair(*cert, *key); !paired.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-key=", files.key, ": ", paired.message(),
                     " (--tls-cert=", files.cert, ")"));
  }
  TrustStoreOptions trust_options;
  trust_options.ca_path = files.ca;
  trust_options.crl_path = files.crl;
  trust_options.recheck = options.recheck;
  trust_options.registry = options.registry;
  trust_options.log_refusals = options.log_refusals;
  absl::StatusOr<std::shared_ptr<TrustStore>> trust =
      TrustStore::Open(std::move(trust_options));
  if (!trust.ok()) return trust.status();
  const unsigned int seconds = static_cast<unsigned int>(
      std::max<int64_t>(1, absl::ToInt64Seconds(options.refresh)));
  auto provider =
      std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
          files.key, files.cert, files.ca, seconds);
  return std::shared_ptr<const TlsCredentials>(new TlsCredentials(
      *std::move(identity), std::move(provider), *std::move(trust)));
}

TlsCredentials::TlsCredentials(
    CertificateInfo identity,
    std::shared_ptr<grpc::experimental::CertificateProviderInterface> provider,
    std::shared_ptr<TrustStore> trust)
    : identity_(std::move(identity)),
      provider_(std::move(provider)),
      trust_(std::move(trust)) {}

std::shared_ptr<grpc::ServerCredentials> TlsCredentials::ServerCredentials()
    const {
  grpc::experimental::TlsServerCredentialsOptions options(provider_);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  // The certificate is asked for but checked by PeerVerifier, which also
  // sees (and counts) a peer that sends none.
  options.set_cert_request_type(
      GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
  options.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<PeerVerifier>(
          trust_, PeerVerifier::Side::kServer, ""));
  return grpc::experimental::TlsServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> TlsCredentials::ChannelCredentials(
    const std::string& peer_name) const {
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(provider_);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(false);  // PeerVerifier checks the chain.
  options.set_check_call_host(false);
  options.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<PeerVerifier>(
          trust_, PeerVerifier::Side::kClient, peer_name));
  return grpc::experimental::TlsCredentials(options);
}

}  // namespace peergrid::tls
