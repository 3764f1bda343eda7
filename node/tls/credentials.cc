#include "node/tls/credentials.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace peergrid::tls {
namespace {

absl::StatusOr<std::string> ReadFlagFile(const char* flag,
                                         const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, "=", path, ": cannot read it: ", std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Checks, after the chain (which gRPC verified against the cluster CA), that
// the server holds a node certificate, and the expected member's if named.
class NodeCertificateVerifier
    : public grpc::experimental::ExternalCertificateVerifier {
 public:
  explicit NodeCertificateVerifier(std::string peer_name)
      : peer_name_(std::move(peer_name)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> /*callback*/,
              grpc::Status* sync_status) override {
    const std::string name(request->common_name().data(),
                           request->common_name().size());
    const std::string node_uri = RoleUri(Role::kNode);
    bool is_node = false;
    for (const grpc::string_ref& uri : request->uri_names()) {
      is_node = is_node || std::string(uri.data(), uri.size()) == node_uri;
    }
    if (!is_node) {
      *sync_status =
          grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                       absl::StrCat("the server's certificate '", name,
                                    "' is not a node's (no ", node_uri, ")"));
    } else if (!peer_name_.empty() && name != peer_name_) {
      *sync_status = grpc::Status(
          grpc::StatusCode::UNAUTHENTICATED,
          absl::StrCat("dialled member '", peer_name_,
                       "' but the server's certificate is '", name, "'"));
    } else {
      *sync_status = grpc::Status::OK;
    }
    return true;  // Done synchronously.
  }

  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {
  }

 private:
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
    const TlsFiles& files, absl::Duration refresh) {
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
  if (!files.crl.empty()) {
    struct stat st;
    if (stat(files.crl.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--tls-crl=", files.crl,
          " is not a directory: pass the CA's crl/ directory, which holds "
          "the hashed CRL file that 'peergrid ca' writes"));
    }
  }
  const unsigned int seconds = static_cast<unsigned int>(
      std::max<int64_t>(1, absl::ToInt64Seconds(refresh)));
  auto provider =
      std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
          files.key, files.cert, files.ca, seconds);
  return std::shared_ptr<const TlsCredentials>(
      new TlsCredentials(files, *std::move(identity), std::move(provider)));
}

TlsCredentials::TlsCredentials(
    TlsFiles files, CertificateInfo identity,
    std::shared_ptr<grpc::experimental::CertificateProviderInterface> provider)
    : files_(std::move(files)),
      identity_(std::move(identity)),
      provider_(std::move(provider)) {}

std::shared_ptr<grpc::ServerCredentials> TlsCredentials::ServerCredentials()
    const {
  grpc::experimental::TlsServerCredentialsOptions options(provider_);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  if (!files_.crl.empty()) options.set_crl_directory(files_.crl);
  return grpc::experimental::TlsServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> TlsCredentials::ChannelCredentials(
    const std::string& peer_name) const {
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(provider_);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(true);
  options.set_check_call_host(false);
  options.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<
          NodeCertificateVerifier>(peer_name));
  if (!files_.crl.empty()) options.set_crl_directory(files_.crl);
  return grpc::experimental::TlsCredentials(options);
}

}  // namespace peergrid::tls
