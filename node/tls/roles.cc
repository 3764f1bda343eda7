#include "node/tls/roles.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_metadata_processor.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace peergrid::tls {
namespace {

constexpr absl::string_view kJobsService = "/peergrid.v1.Jobs/";

bool ReadOnlyJobsMethod(absl::string_view method) {
  static constexpr absl::string_view kReads[] = {"ListJobs", "GetJob", "Watch",
                                                 "ClusterStatus"};
  if (!absl::ConsumePrefix(&method, kJobsService)) return false;
  return std::find(std::begin(kReads), std::end(kReads), method) !=
         std::end(kReads);
}

class RoleCheck : public grpc::AuthMetadataProcessor {
 public:
  explicit RoleCheck(std::shared_ptr<TrustStore> trust)
      : trust_(std::move(trust)) {}

  // Inline on gRPC's thread: the check reads properties, a path and (but
  // for the first call of a peer after each CRL change) a cached verdict.
  bool IsBlocking() const override { return false; }

  grpc::Status Process(const InputMetadata& metadata,
                       grpc::AuthContext* context, OutputMetadata* /*consumed*/,
                       OutputMetadata* /*response*/) override {
    auto path = metadata.find(":path");
    const absl::string_view method =
        path == metadata.end()
            ? absl::string_view()
            : absl::string_view(path->second.data(), path->second.size());
    // The handshake checked the certificate; this catches one revoked or
    // expired since, on a connection that stayed open.
    std::vector<grpc::string_ref> pem =
        context->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
    absl::Status valid = trust_->CheckStillValid(
        pem.empty()
            ? absl::string_view()
            : absl::string_view(pem.front().data(), pem.front().size()));
    if (!valid.ok()) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          std::string(valid.message()));
    }
    absl::Status allowed = Authorize(PeerOf(*context), method);
    if (allowed.ok()) return grpc::Status::OK;
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        std::string(allowed.message()));
  }

 private:
  const std::shared_ptr<TrustStore> trust_;
};

}  // namespace

absl::Status Authorize(const PeerIdentity& peer, absl::string_view method) {
  if (!peer.role.has_value()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "certificate '", peer.name,
        "' carries no peergrid role; issue it with 'peergrid ca issue "
        "--role=...'"));
  }
  bool allowed = false;
  switch (*peer.role) {
    case Role::kNode:
      allowed = true;
      break;
    case Role::kSubmit:
      allowed = absl::StartsWith(method, kJobsService);
      break;
    case Role::kRead:
      allowed = ReadOnlyJobsMethod(method);
      break;
  }
  if (allowed) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat("role '", RoleName(*peer.role), "' of '", peer.name,
                   "' may not call ", method.empty() ? "?" : method));
}

absl::Status MayCancel(const PeerIdentity& peer, absl::string_view job_id,
                       absl::string_view submitter) {
  if (peer.role != Role::kSubmit || peer.name == submitter) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat(
      "role 'submit' of '", peer.name, "' may cancel only its own jobs; job ",
      job_id, " was submitted by '", submitter.empty() ? "?" : submitter, "'"));
}

std::shared_ptr<grpc::AuthMetadataProcessor> NewRoleCheck(
    std::shared_ptr<TrustStore> trust) {
  return std::make_shared<RoleCheck>(std::move(trust));
}

}  // namespace peergrid::tls
