#include "node/tls/roles.h"

#include <grpcpp/security/auth_metadata_processor.h>

#include <algorithm>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"

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
  // Inline on gRPC's thread: the check reads two properties and a path.
  bool IsBlocking() const override { return false; }

  grpc::Status Process(const InputMetadata& metadata,
                       grpc::AuthContext* context, OutputMetadata* /*consumed*/,
                       OutputMetadata* /*response*/) override {
    auto path = metadata.find(":path");
    const absl::string_view method =
        path == metadata.end()
            ? absl::string_view()
            : absl::string_view(path->second.data(), path->second.size());
    absl::Status allowed = Authorize(PeerOf(*context), method);
    if (allowed.ok()) return grpc::Status::OK;
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        std::string(allowed.message()));
  }
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

std::shared_ptr<grpc::AuthMetadataProcessor> NewRoleCheck() {
  return std::make_shared<RoleCheck>();
}

}  // namespace peergrid::tls
