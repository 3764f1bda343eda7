// TrustStore: the CA and CRL a node checks peers against, re-read when they
// change (node/tls/trust_store.h).
#include "node/tls/trust_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace peergrid::tls {
namespace {

using ::testing::HasSubstr;

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

class TrustStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/peergrid_trust_store_test.XXXXXX";
    dir_ = mkdtemp(pattern);
    ASSERT_TRUE(InitCa(Path("ca")).ok());
    ASSERT_TRUE(InitCa(Path("other")).ok());
    Issue("ca", "lab1");
    Issue("ca", "lab2");
    Issue("other", "stranger");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) const {
    return absl::StrCat(dir_, "/", name);
  }
  void Issue(const std::string& ca, const std::string& name) {
    IssueOptions options;
    options.name = name;
    options.role = Role::kNode;
    options.out_prefix = Path(name);
    ASSERT_TRUE(IssueCertificate(Path(ca), options).ok()) << name;
  }
  std::shared_ptr<TrustStore> Open(const std::string& ca_file,
                                   const std::string& crl) {
    TrustStoreOptions options;
    options.ca_path = ca_file;
    options.crl_path = crl;
    options.recheck = absl::ZeroDuration();  // Every check looks at the files.
    options.registry = &registry_;
    options.log_refusals = false;
    absl::StatusOr<std::shared_ptr<TrustStore>> store =
        TrustStore::Open(std::move(options));
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *store : nullptr;
  }
  Refusal RefusalOf(TrustStore& store, const std::string& pem) {
    Refusal refusal = Refusal::kInvalid;
    EXPECT_FALSE(store.Verify(pem, &refusal).ok());
    return refusal;
  }

  std::string dir_;
  prometheus::Registry registry_;
};

TEST_F(TrustStoreTest, NamesWhyEachPeerIsRefused) {
  std::shared_ptr<TrustStore> store = Open(Path("ca/ca.crt"), Path("ca/crl"));
  ASSERT_NE(store, nullptr);
  absl::StatusOr<CertificateInfo> lab1 = store->Verify(Read(Path("lab1.crt")));
  ASSERT_TRUE(lab1.ok()) << lab1.status();
  EXPECT_EQ(lab1->common_name, "lab1");
  EXPECT_EQ(RefusalOf(*store, ""), Refusal::kNoCertificate);
  EXPECT_EQ(RefusalOf(*store, "not a certificate"), Refusal::kInvalid);
  EXPECT_EQ(RefusalOf(*store, Read(Path("stranger.crt"))), Refusal::kUnknownCa);
}

TEST_F(TrustStoreTest, ARevocationCountsFromTheNextCheckWithoutARestart) {
  std::shared_ptr<TrustStore> store = Open(Path("ca/ca.crt"), Path("ca/crl"));
  ASSERT_NE(store, nullptr);
  const std::string lab1 = Read(Path("lab1.crt"));
  ASSERT_TRUE(store->CheckStillValid(lab1).ok());
  const uint64_t before = store->generation();
  ASSERT_TRUE(RevokeCertificates(Path("ca"), "lab1").ok());
  // The connection that checked lab1 before is refused on its next call.
  const absl::Status refused = store->CheckStillValid(lab1);
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(refused.message(), HasSubstr("revoked"));
  EXPECT_GT(store->generation(), before);
  EXPECT_EQ(RefusalOf(*store, lab1), Refusal::kRevoked);
  EXPECT_TRUE(store->Verify(Read(Path("lab2.crt"))).ok());
}

TEST_F(TrustStoreTest, ACrlOfAnotherCaIsRefusedAndTheOldOneStays) {
  // A CRL directory of its own, first holding the grid's CA's list.
  const std::string crl = Path("crl");
  std::filesystem::copy(Path("ca/crl"), crl);
  ASSERT_TRUE(RevokeCertificates(Path("ca"), "lab1").ok());
  std::filesystem::remove_all(crl);
  std::filesystem::copy(Path("ca/crl"), crl);
  std::shared_ptr<TrustStore> store = Open(Path("ca/ca.crt"), crl);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(RefusalOf(*store, Read(Path("lab1.crt"))), Refusal::kRevoked);
  const uint64_t before = store->generation();
  // Replaced by the other CA's (empty) list: not signed by the grid's CA.
  std::filesystem::remove_all(crl);
  std::filesystem::copy(Path("other/crl"), crl);
  store->Reload();
  EXPECT_EQ(store->generation(), before);
  EXPECT_EQ(RefusalOf(*store, Read(Path("lab1.crt"))), Refusal::kRevoked);
}

TEST_F(TrustStoreTest, ACaBundleTrustsEveryCaInItWithTheirCrlsSideBySide) {
  // As during a CA rotation: both CAs trusted, both CRLs in one directory
  // (each CA has a name of its own, so their CRL files do not collide).
  const std::string bundle = Path("bundle.crt");
  std::ofstream(bundle) << Read(Path("ca/ca.crt"))
                        << Read(Path("other/ca.crt"));
  ASSERT_TRUE(RevokeCertificates(Path("ca"), "lab1").ok());
  const std::string crl = Path("both-crl");
  std::filesystem::create_directory(crl);
  for (const char* ca : {"ca", "other"}) {
    for (const auto& file :
         std::filesystem::directory_iterator(Path(ca) + "/crl")) {
      std::filesystem::copy_file(file.path(),
                                 crl + "/" + file.path().filename().string());
    }
  }
  ASSERT_EQ(std::distance(std::filesystem::directory_iterator(crl),
                          std::filesystem::directory_iterator()),
            2);
  std::shared_ptr<TrustStore> store = Open(bundle, crl);
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->Verify(Read(Path("lab2.crt"))).ok());
  EXPECT_TRUE(store->Verify(Read(Path("stranger.crt"))).ok());
  EXPECT_EQ(RefusalOf(*store, Read(Path("lab1.crt"))), Refusal::kRevoked);
}

TEST_F(TrustStoreTest, OpenNamesAMissingOrBadFile) {
  TrustStoreOptions options;
  options.ca_path = Path("nothing.crt");
  absl::StatusOr<std::shared_ptr<TrustStore>> missing =
      TrustStore::Open(options);
  EXPECT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("--tls-ca="));
  options.ca_path = Path("ca/ca.crt");
  options.crl_path = Path("lab1.crt");  // Not a CRL.
  absl::StatusOr<std::shared_ptr<TrustStore>> bad = TrustStore::Open(options);
  EXPECT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("is not a PEM CRL"));
}

}  // namespace
}  // namespace peergrid::tls
