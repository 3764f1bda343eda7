// The parsers of flag values and of names a user or a peer hands a node:
// addresses, donation modes, task kinds, sandboxes, log levels, roles, and
// certificates (PEM, as a peer's arrives from the TLS handshake).
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/address.h"
#include "common/log.h"
#include "node/tls/cluster_ca.h"
#include "worker/options.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)peergrid::ParseHostPort(text);
  (void)peergrid::ParseLogLevel(text);
  (void)peergrid::worker::ParseDonateMode(text);
  peergrid::worker::WorkerOptions options;
  (void)peergrid::worker::ParseAcceptKinds(text, options);
  (void)peergrid::worker::ParseSandbox(text, options);
  (void)peergrid::tls::ParseRole(text);
  (void)peergrid::tls::ParseCertificate(text);
  return 0;
}
