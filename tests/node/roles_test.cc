// The grid's roles: which certificate may call which method.
#include "node/tls/roles.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace peergrid::tls {
namespace {

using ::testing::HasSubstr;

PeerIdentity Peer(std::optional<Role> role) {
  return PeerIdentity{"alice", role};
}

TEST(RolesTest, EachRoleMayCallItsMethodsOnly) {
  struct Case {
    std::optional<Role> role;
    const char* method;
    bool allowed;
  };
  const Case cases[] = {
      {Role::kNode, "/peergrid.v1.Membership/PushPull", true},
      {Role::kNode, "/peergrid.v1.Work/Open", true},
      {Role::kNode, "/peergrid.v1.Work/FetchBlob", true},
      {Role::kNode, "/peergrid.v1.Jobs/Submit", true},
      {Role::kSubmit, "/peergrid.v1.Jobs/Submit", true},
      {Role::kSubmit, "/peergrid.v1.Jobs/Cancel", true},
      {Role::kSubmit, "/peergrid.v1.Jobs/Watch", true},
      {Role::kSubmit, "/peergrid.v1.Jobs/ClusterStatus", true},
      {Role::kSubmit, "/peergrid.v1.Membership/SendPing", false},
      {Role::kSubmit, "/peergrid.v1.Work/Open", false},
      {Role::kSubmit, "/peergrid.v1.Work/FetchBlob", false},
      {Role::kRead, "/peergrid.v1.Jobs/ListJobs", true},
      {Role::kRead, "/peergrid.v1.Jobs/GetJob", true},
      {Role::kRead, "/peergrid.v1.Jobs/Watch", true},
      {Role::kRead, "/peergrid.v1.Jobs/ClusterStatus", true},
      {Role::kRead, "/peergrid.v1.Jobs/Submit", false},
      {Role::kRead, "/peergrid.v1.Jobs/Cancel", false},
      {Role::kRead, "/peergrid.v1.Jobs/WatchX", false},
      {Role::kRead, "/peergrid.v1.Work/Open", false},
      {Role::kRead, "", false},
      {std::nullopt, "/peergrid.v1.Jobs/ListJobs", false},
  };
  for (const Case& c : cases) {
    const absl::Status status = Authorize(Peer(c.role), c.method);
    EXPECT_EQ(status.ok(), c.allowed)
        << (c.role ? RoleName(*c.role) : "none") << " " << c.method;
    if (!c.allowed) {
      EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
    }
  }
}

TEST(RolesTest, RefusalNamesTheRoleAndTheMethod) {
  const absl::Status status =
      Authorize(Peer(Role::kRead), "/peergrid.v1.Jobs/Submit");
  EXPECT_THAT(status.message(), HasSubstr("role 'read'"));
  EXPECT_THAT(status.message(), HasSubstr("/peergrid.v1.Jobs/Submit"));
  EXPECT_THAT(
      Authorize(Peer(std::nullopt), "/peergrid.v1.Jobs/GetJob").message(),
      HasSubstr("no peergrid role"));
}

TEST(RolesTest, ASubmitterCancelsOnlyItsOwnJobs) {
  PeerIdentity alice{"alice", Role::kSubmit};
  EXPECT_TRUE(MayCancel(alice, "j1", "alice").ok());
  const absl::Status other = MayCancel(alice, "j1", "carol");
  EXPECT_EQ(other.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(other.message(), HasSubstr("submitted by 'carol'"));
  // A node cancels any job; so does anyone on a grid without TLS.
  EXPECT_TRUE(MayCancel(PeerIdentity{"node-0", Role::kNode}, "j1", "carol").ok());
  EXPECT_TRUE(MayCancel(PeerIdentity{}, "j1", "").ok());
}

}  // namespace
}  // namespace peergrid::tls
