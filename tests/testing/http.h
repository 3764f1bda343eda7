// A minimal HTTP/1.0 GET for tests that read a node's /metrics, and raw
// bytes for tests that send a port what it does not expect.
#ifndef PEERGRID_TESTS_TESTING_HTTP_H_
#define PEERGRID_TESTS_TESTING_HTTP_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace peergrid::testing {

struct HttpResponse {
  int status = 0;
  std::string body;
};

// GETs http://ADDRESS/PATH (ADDRESS is IPv4 HOST:PORT) within `timeout`.
absl::StatusOr<HttpResponse> HttpGet(const std::string& address,
                                     const std::string& path,
                                     absl::Duration timeout = absl::Seconds(5));

// Connects to ADDRESS (IPv4 HOST:PORT), writes `bytes`, and returns what
// the peer sent back until it closed the connection or `timeout` passed.
absl::StatusOr<std::string> SendRaw(const std::string& address,
                                    const std::string& bytes,
                                    absl::Duration timeout = absl::Seconds(5));

}  // namespace peergrid::testing

#endif  // PEERGRID_TESTS_TESTING_HTTP_H_
