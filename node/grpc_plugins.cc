// The gRPC plugins a node links: gRPC's own list less the load balancers,
// resolvers and filters of service meshes (xDS, grpclb, RLS, ring hash,
// priority, weighted target, outlier detection, fault injection, the fake
// resolver). Peers dial each other by HOST:PORT with pick_first, so those
// plugins never run; registered, they still cost every node their
// start-up and 1.5 MB of code (PEERGRID_STATIC_DEPS links this file).
//
// How: gRPC builds its configuration once, in grpc_init(), by calling
// grpc_core::BuildCoreConfiguration. In a static link, the definition here
// is found first, so the archive member that defines gRPC's own (and,
// through it, every plugin above) is never pulled into the binary.
//
// The list is gRPC 1.51's src/core/plugin_registry/grpc_plugin_registry.cc,
// in its order, with the plugins above left out. The Register functions are
// gRPC internals: another gRPC version may rename or add some, so this file
// is compiled only against 1.51, and any other version falls back to
// gRPC's own list.
#include <grpcpp/version_info.h>

#if GRPC_CPP_VERSION_MAJOR == 1 && GRPC_CPP_VERSION_MINOR == 51

// Only the names are needed: the builder is passed by pointer, never used.
namespace grpc_core {
class CoreConfiguration {
 public:
  class Builder;
};
using Builder = CoreConfiguration::Builder;

void BuildClientChannelConfiguration(Builder* builder);
void RegisterAresDnsResolver(Builder* builder);
void RegisterBuiltins(Builder* builder);
void RegisterChannelIdleFilters(Builder* builder);
void RegisterClientAuthorityFilter(Builder* builder);
void RegisterDeadlineFilter(Builder* builder);
void RegisterHttpConnectHandshaker(Builder* builder);
void RegisterHttpFilters(Builder* builder);
void RegisterHttpProxyMapper(Builder* builder);
void RegisterMessageSizeFilter(Builder* builder);
void RegisterNativeDnsResolver(Builder* builder);
void RegisterPickFirstLbPolicy(Builder* builder);
void RegisterResourceQuota(Builder* builder);
void RegisterRoundRobinLbPolicy(Builder* builder);
void RegisterSecurityFilters(Builder* builder);
void RegisterServiceConfigChannelArgFilter(Builder* builder);
void RegisterSockaddrResolver(Builder* builder);
void RegisterTCPConnectHandshaker(Builder* builder);
void SecurityRegisterHandshakerFactories(Builder* builder);
}  // namespace grpc_core

namespace grpc_event_engine::experimental {
void RegisterEventEngineChannelArgPreconditioning(
    grpc_core::CoreConfiguration::Builder* builder);
}  // namespace grpc_event_engine::experimental

namespace grpc_core {

void BuildCoreConfiguration(Builder* builder) {
  grpc_event_engine::experimental::RegisterEventEngineChannelArgPreconditioning(
      builder);
  RegisterHttpConnectHandshaker(builder);
  RegisterTCPConnectHandshaker(builder);
  RegisterPickFirstLbPolicy(builder);
  RegisterRoundRobinLbPolicy(builder);
  BuildClientChannelConfiguration(builder);
  SecurityRegisterHandshakerFactories(builder);
  RegisterClientAuthorityFilter(builder);
  RegisterChannelIdleFilters(builder);
  RegisterHttpFilters(builder);
  RegisterDeadlineFilter(builder);
  RegisterMessageSizeFilter(builder);
  RegisterServiceConfigChannelArgFilter(builder);
  RegisterResourceQuota(builder);
  RegisterAresDnsResolver(builder);
  RegisterNativeDnsResolver(builder);
  RegisterSockaddrResolver(builder);
  RegisterHttpProxyMapper(builder);
  RegisterSecurityFilters(builder);
  RegisterBuiltins(builder);
}

}  // namespace grpc_core

#endif  // gRPC 1.51
