#include "common/address.h"

#include <gtest/gtest.h>

namespace peergrid {
namespace {

TEST(ParseHostPortTest, AcceptsHostAndPort) {
  absl::StatusOr<HostPort> parsed = ParseHostPort("127.0.0.2:7420");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->host, "127.0.0.2");
  EXPECT_EQ(parsed->port, 7420);
  EXPECT_EQ(parsed->ToString(), "127.0.0.2:7420");
}

TEST(ParseHostPortTest, AcceptsBracketedIpv6) {
  absl::StatusOr<HostPort> parsed = ParseHostPort("[::1]:0");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->host, "::1");
  EXPECT_EQ(parsed->port, 0);
  EXPECT_EQ(parsed->ToString(), "[::1]:0");
}

TEST(ParseHostPortTest, RejectsMalformedAddressesNamingThem) {
  for (const char* bad : {"", "127.0.0.1", ":7420", "host:", "host:65536",
                          "host:-1", "host:12ab", "::1:7420", "[::1]7420"}) {
    absl::StatusOr<HostPort> parsed = ParseHostPort(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
    EXPECT_NE(parsed.status().message().find(std::string("'") + bad + "'"),
              std::string::npos)
        << parsed.status();
  }
}

TEST(IsLoopbackHostTest, KnowsLoopbackFromOtherAddresses) {
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("127.3.2.1"));
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_FALSE(IsLoopbackHost("0.0.0.0"));
  EXPECT_FALSE(IsLoopbackHost("10.1.2.3"));
  EXPECT_FALSE(IsLoopbackHost("::"));
  EXPECT_FALSE(IsLoopbackHost("example.org"));
}

TEST(IsWildcardHostTest, KnowsWildcards) {
  EXPECT_TRUE(IsWildcardHost("0.0.0.0"));
  EXPECT_TRUE(IsWildcardHost("::"));
  EXPECT_FALSE(IsWildcardHost("127.0.0.1"));
  EXPECT_FALSE(IsWildcardHost("localhost"));
}

}  // namespace
}  // namespace peergrid
