// HOST:PORT addresses as given on the command line and gossiped to peers.
#ifndef PEERGRID_COMMON_ADDRESS_H_
#define PEERGRID_COMMON_ADDRESS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace peergrid {

struct HostPort {
  std::string host;  // A name, an IPv4 address, or an IPv6 address without [].
  uint16_t port = 0;

  // "host:port", with brackets around an IPv6 host.
  std::string ToString() const;
};

// Parses "HOST:PORT" or "[IPV6]:PORT". The port must be 0 to 65535; the
// error names the offending text.
absl::StatusOr<HostPort> ParseHostPort(absl::string_view text);

// True for "localhost", 127.0.0.0/8 and ::1: addresses only this machine
// can reach, where peergrid may listen without TLS.
bool IsLoopbackHost(absl::string_view host);

// True for 0.0.0.0 and ::, which listen on every interface but cannot be
// dialled by peers.
bool IsWildcardHost(absl::string_view host);

}  // namespace peergrid

#endif  // PEERGRID_COMMON_ADDRESS_H_
