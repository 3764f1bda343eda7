// The name a call's peer proved with its certificate (mutual TLS: the
// certificate's subject CN), for the services that must check a claimed
// member name against it. Header-only, for the gRPC services and channels
// that already link gRPC; the rest of common/ does not.
//
// Thread safety: a function of its argument.
#ifndef PEERGRID_COMMON_PEER_NAME_H_
#define PEERGRID_COMMON_PEER_NAME_H_

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>

#include <string>

namespace peergrid {

// Empty on a plain connection (loopback or --insecure), where no name is
// proven and a claimed one is taken as it comes.
inline std::string CertificateName(const grpc::AuthContext* context) {
  std::string name;
  if (context == nullptr || !context->IsPeerAuthenticated()) return name;
  for (const grpc::string_ref& value :
       context->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME)) {
    name.assign(value.data(), value.size());
  }
  return name;
}

}  // namespace peergrid

#endif  // PEERGRID_COMMON_PEER_NAME_H_
