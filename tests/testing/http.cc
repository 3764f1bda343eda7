#include "tests/testing/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/address.h"

namespace peergrid::testing {

namespace {

// A connected socket with `timeout` on reads and writes, or an error.
absl::StatusOr<int> Connect(const std::string& address,
                            absl::Duration timeout) {
  absl::StatusOr<HostPort> host_port = ParseHostPort(address);
  if (!host_port.ok()) return host_port.status();
  sockaddr_in target{};
  target.sin_family = AF_INET;
  target.sin_port = htons(host_port->port);
  if (inet_pton(AF_INET, host_port->host.c_str(), &target.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("not IPv4: ", address));
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(strerror(errno));
  const timeval tv = absl::ToTimeval(timeout);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&target), sizeof(target)) != 0) {
    const std::string error = strerror(errno);
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("connect ", address, ": ", error));
  }
  return fd;
}

// Writes all of `bytes`, then reads until the peer closes (or the socket's
// timeout passes, which ends the read too).
absl::StatusOr<std::string> Exchange(int fd, const std::string& bytes) {
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n =
        write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // The peer may close before reading it all.
    written += static_cast<size_t>(n);
  }
  std::string raw;
  char buffer[65536];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof(buffer))) > 0) {
    raw.append(buffer, static_cast<size_t>(n));
  }
  if (n < 0 && errno != EAGAIN && errno != ECONNRESET) {
    return absl::UnavailableError(absl::StrCat("read: ", strerror(errno)));
  }
  return raw;
}

}  // namespace

absl::StatusOr<std::string> SendRaw(const std::string& address,
                                    const std::string& bytes,
                                    absl::Duration timeout) {
  absl::StatusOr<int> fd = Connect(address, timeout);
  if (!fd.ok()) return fd.status();
  absl::StatusOr<std::string> raw = Exchange(*fd, bytes);
  close(*fd);
  return raw;
}

absl::StatusOr<HttpResponse> HttpGet(const std::string& address,
                                     const std::string& path,
                                     absl::Duration timeout) {
  absl::StatusOr<int> fd = Connect(address, timeout);
  if (!fd.ok()) return fd.status();
  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: ", address, "\r\n\r\n");
  absl::StatusOr<std::string> raw = Exchange(*fd, request);
  close(*fd);
  if (!raw.ok()) return raw.status();
  // "HTTP/1.1 200 OK\r\n...\r\n\r\nbody"
  const size_t space = raw->find(' ');
  const size_t header_end = raw->find("\r\n\r\n");
  HttpResponse response;
  if (space == std::string::npos || header_end == std::string::npos ||
      !absl::SimpleAtoi(raw->substr(space + 1, 3), &response.status)) {
    return absl::DataLossError(absl::StrCat("not an HTTP response: ", *raw));
  }
  response.body = raw->substr(header_end + 4);
  return response;
}

}  // namespace peergrid::testing
