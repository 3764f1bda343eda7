// Which calls each certificate role may make: the one place the grid's
// roles are decided (docs/security.md). Installed on the gRPC port as an
// AuthMetadataProcessor (RoleCheck), so that handlers never look at
// certificates; they learn the caller's name, where they need it (a job's
// submitter), from PeerOf() (credentials.h).
//
//   node    every method: gossip, work, blobs, and the Jobs service
//   submit  the Jobs service: submit, watch, cancel (its own jobs: checked
//           by the Jobs handler, which knows who submitted what), list,
//           get, cluster status
//   read    ListJobs, GetJob, Watch, ClusterStatus
//
// Thread safety: functions of their arguments; RoleCheck is thread-safe.
#ifndef PEERGRID_NODE_TLS_ROLES_H_
#define PEERGRID_NODE_TLS_ROLES_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "node/tls/credentials.h"

namespace grpc {
class AuthMetadataProcessor;
}

namespace peergrid::tls {

// OK, or PermissionDenied naming the role and the method. `method` is the
// call's path, "/peergrid.v1.Jobs/Submit". A peer without a role (not a
// certificate of `peergrid ca`) may call nothing.
absl::Status Authorize(const PeerIdentity& peer, absl::string_view method);

// Whether `peer` may cancel a job `submitter` submitted: a `submit`
// certificate only its own jobs (PermissionDenied naming both); a node any;
// on a grid without TLS (no role, no name) anyone.
absl::Status MayCancel(const PeerIdentity& peer, absl::string_view job_id,
                       absl::string_view submitter);

// For every call on a server, before its handler runs: the caller's
// certificate is still valid (not revoked or expired since the handshake:
// UNAUTHENTICATED), then Authorize().
std::shared_ptr<grpc::AuthMetadataProcessor> NewRoleCheck(
    std::shared_ptr<TrustStore> trust);

}  // namespace peergrid::tls

#endif  // PEERGRID_NODE_TLS_ROLES_H_
