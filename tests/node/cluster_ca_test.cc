// `peergrid ca`: the grid's certificate authority, run as an operator would,
// its certificates read back with libcrypto.
#include "node/tls/cluster_ca.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/subprocess.h"

namespace peergrid::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

// The serials (lower-case hex) a PEM CRL file lists, read with libcrypto.
std::vector<std::string> CrlSerials(const std::string& path) {
  std::vector<std::string> out;
  FILE* file = fopen(path.c_str(), "r");
  if (file == nullptr) return out;
  X509_CRL* crl = PEM_read_X509_CRL(file, nullptr, nullptr, nullptr);
  fclose(file);
  if (crl == nullptr) return out;
  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl);
  for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i) {
    BIGNUM* serial = ASN1_INTEGER_to_BN(
        X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, i)),
        nullptr);
    char* hex = BN_bn2hex(serial);
    out.push_back(absl::AsciiStrToLower(hex));
    OPENSSL_free(hex);
    BN_free(serial);
  }
  X509_CRL_free(crl);
  return out;
}

class ClusterCaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/peergrid_ca_test.XXXXXX";
    root_ = mkdtemp(pattern);
    ca_ = root_ + "/ca";
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  CommandResult Ca(std::vector<std::string> args) {
    args.insert(args.begin(), {PeergridBinary(), "ca"});
    absl::StatusOr<CommandResult> result = RunCommand(args, absl::Seconds(20));
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : CommandResult{};
  }
  void Init() {
    CommandResult made = Ca({"init", "--dir=" + ca_});
    ASSERT_EQ(made.status.exit_code, 0) << made.err;
  }
  static std::string Read(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }
  static mode_t Mode(const std::string& path) {
    struct stat st;
    EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 0777;
  }

  std::string root_;
  std::string ca_;
};

TEST_F(ClusterCaTest, InitMakesASelfSignedCaWithAPrivateKey) {
  Init();
  EXPECT_EQ(Mode(ca_ + "/ca.key"), 0600u);
  absl::StatusOr<tls::CertificateInfo> ca =
      tls::ReadCertificateFile(ca_ + "/ca.crt");
  ASSERT_TRUE(ca.ok()) << ca.status();
  EXPECT_TRUE(ca->is_ca);
  EXPECT_EQ(ca->common_name, ca->issuer_common_name);
  EXPECT_GT(ca->not_after, absl::Now() + absl::Hours(24 * 3640));
  EXPECT_TRUE(
      tls::VerifyCertificate(Read(ca_ + "/ca.crt"), Read(ca_ + "/ca.crt"))
          .ok());
  // An empty CRL is there from the start, for nodes to load.
  EXPECT_FALSE(std::filesystem::is_empty(tls::CrlDirectory(ca_)));
}

TEST_F(ClusterCaTest, InitRefusesToReplaceACa) {
  Init();
  const std::string key = Read(ca_ + "/ca.key");
  CommandResult again = Ca({"init", "--dir=" + ca_});
  EXPECT_EQ(again.status.exit_code, 1);
  EXPECT_THAT(again.err, HasSubstr("already holds a CA"));
  EXPECT_EQ(Read(ca_ + "/ca.key"), key);
}

TEST_F(ClusterCaTest, IssuedCertificateCarriesNameRoleAndHosts) {
  Init();
  const std::string out = root_ + "/n1";
  CommandResult issued =
      Ca({"issue", "--dir=" + ca_, "--name=n1", "--role=node",
          "--host=10.99.0.1,n1.lab,::1", "--days=30", "--out=" + out});
  ASSERT_EQ(issued.status.exit_code, 0) << issued.err;
  EXPECT_EQ(Mode(out + ".key"), 0600u);
  absl::StatusOr<tls::CertificateInfo> cert =
      tls::ReadCertificateFile(out + ".crt");
  ASSERT_TRUE(cert.ok()) << cert.status();
  EXPECT_EQ(cert->common_name, "n1");
  EXPECT_FALSE(cert->is_ca);
  ASSERT_TRUE(cert->role.has_value());
  EXPECT_EQ(*cert->role, tls::Role::kNode);
  EXPECT_THAT(cert->dns_names, UnorderedElementsAre("n1.lab"));
  EXPECT_THAT(cert->ip_addresses, UnorderedElementsAre("10.99.0.1", "::1"));
  EXPECT_LT(cert->not_after, absl::Now() + absl::Hours(24 * 31));
  EXPECT_GT(cert->not_after, absl::Now() + absl::Hours(24 * 29));
  EXPECT_TRUE(
      tls::VerifyCertificate(Read(out + ".crt"), Read(ca_ + "/ca.crt")).ok());
}

TEST_F(ClusterCaTest, CertificateOfAnotherCaDoesNotVerify) {
  Init();
  const std::string other = root_ + "/other";
  ASSERT_EQ(Ca({"init", "--dir=" + other}).status.exit_code, 0);
  ASSERT_EQ(Ca({"issue", "--dir=" + other, "--name=intruder", "--role=node",
                "--out=" + root_ + "/intruder"})
                .status.exit_code,
            0);
  absl::Status verified = tls::VerifyCertificate(Read(root_ + "/intruder.crt"),
                                                 Read(ca_ + "/ca.crt"));
  EXPECT_EQ(verified.code(), absl::StatusCode::kFailedPrecondition) << verified;
}

TEST_F(ClusterCaTest, RolesAreReadBack) {
  Init();
  for (const char* role : {"submit", "read"}) {
    const std::string out = absl::StrCat(root_, "/", role);
    ASSERT_EQ(Ca({"issue", "--dir=" + ca_, absl::StrCat("--name=alice-", role),
                  absl::StrCat("--role=", role), "--out=" + out})
                  .status.exit_code,
              0);
    absl::StatusOr<tls::CertificateInfo> cert =
        tls::ReadCertificateFile(out + ".crt");
    ASSERT_TRUE(cert.ok() && cert->role.has_value());
    EXPECT_STREQ(tls::RoleName(*cert->role), role);
  }
}

TEST_F(ClusterCaTest, BadIssueRequestsGetAClearError) {
  Init();
  struct Case {
    std::vector<std::string> flags;
    const char* error;
  };
  const std::vector<Case> cases = {
      {{"--role=node", "--out=x"}, "--name is required"},
      {{"--name=a/b", "--out=x"}, "may hold only"},
      {{"--name=" + std::string(65, 'a'), "--out=x"}, "at most 64"},
      {{"--name=a", "--role=admin", "--out=x"}, "--role must be"},
      {{"--name=a", "--host=bad host", "--out=x"}, "neither an IP"},
      {{"--name=a", "--host=a,DNS:evil", "--out=x"}, "neither an IP"},
      {{"--name=a", "--days=0", "--out=x"}, "--days must be"},
      {{"--name=a", "--days=5000", "--out=x"}, "--days must be"},
      {{"--name=a"}, "--out is required"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"issue", "--dir=" + ca_};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    CommandResult result = Ca(args);
    EXPECT_EQ(result.status.exit_code, 2) << c.flags.front();
    EXPECT_THAT(result.err, HasSubstr(c.error)) << c.flags.front();
  }
  CommandResult no_ca = Ca({"issue", "--dir=" + root_ + "/none", "--name=a",
                            "--out=" + root_ + "/a"});
  EXPECT_EQ(no_ca.status.exit_code, 1);
  EXPECT_THAT(no_ca.err, HasSubstr("peergrid ca init"));
  EXPECT_EQ(Ca({"sign", "--dir=" + ca_}).status.exit_code, 2);
  EXPECT_EQ(Ca({"init"}).status.exit_code, 2);
}

TEST_F(ClusterCaTest, RevokeListsTheCertificateInTheCrl) {
  Init();
  ASSERT_EQ(Ca({"issue", "--dir=" + ca_, "--name=n2", "--out=" + root_ + "/n2"})
                .status.exit_code,
            0);
  absl::StatusOr<tls::CertificateInfo> cert =
      tls::ReadCertificateFile(root_ + "/n2.crt");
  ASSERT_TRUE(cert.ok());
  CommandResult revoked = Ca({"revoke", "--dir=" + ca_, "n2"});
  ASSERT_EQ(revoked.status.exit_code, 0) << revoked.err;
  EXPECT_THAT(revoked.out, HasSubstr("revoked 1"));
  // The CRL, as gRPC's CRL directory reads it, lists the serial.
  std::string crl_files;
  for (const auto& entry :
       std::filesystem::directory_iterator(tls::CrlDirectory(ca_))) {
    crl_files += entry.path().filename().string();
    EXPECT_THAT(CrlSerials(entry.path().string()),
                ::testing::Contains(cert->serial_hex));
  }
  EXPECT_THAT(crl_files, ::testing::MatchesRegex("[0-9a-f]{8}\\.r0"));
  CommandResult twice = Ca({"revoke", "--dir=" + ca_, "n2"});
  EXPECT_EQ(twice.status.exit_code, 1);
  EXPECT_THAT(twice.err, HasSubstr("no unrevoked"));
}

}  // namespace
}  // namespace peergrid::testing
