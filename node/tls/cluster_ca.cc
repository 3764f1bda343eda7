#include "node/tls/cluster_ca.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "node/tls/openssl.h"

namespace peergrid::tls {
namespace {

constexpr char kRolePrefix[] = "peergrid:role:";
constexpr int kCaDays = 3650;
// Certificates start a minute early, so that a peer whose clock is a little
// behind does not refuse a certificate issued just now.
constexpr long kBackdateSeconds = 60;

struct GeneralNamesFree {
  void operator()(GENERAL_NAMES* names) const { GENERAL_NAMES_free(names); }
};

std::string CaCertPath(const std::string& dir) { return dir + "/ca.crt"; }
std::string CaKeyPath(const std::string& dir) { return dir + "/ca.key"; }
std::string IssuedPath(const std::string& dir) { return dir + "/issued.txt"; }

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// Writes `data` to `path` with `mode`, through a temporary file renamed over
// it, so that a reader sees the old file or the new one, never a part.
absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view data, mode_t mode) {
  const std::string temp = absl::StrCat(path, ".tmp.", getpid());
  const int fd =
      open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  }
  // open() applies the umask; the mode must be exactly what was asked.
  bool ok = fchmod(fd, mode) == 0;
  size_t written = 0;
  while (ok && written < data.size()) {
    const ssize_t n = write(fd, data.data() + written, data.size() - written);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) written += static_cast<size_t>(n);
  }
  ok = ok && fsync(fd) == 0;
  const int saved = errno;
  ok = close(fd) == 0 && ok;
  if (!ok || rename(temp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(ok ? errno : saved);
    unlink(temp.c_str());
    return absl::InternalError(
        absl::StrCat("cannot write ", path, ": ", reason));
  }
  return absl::OkStatus();
}

// Makes `dir` and any missing parents; `dir` itself gets `mode`.
absl::Status MakeDirectory(const std::string& dir, mode_t mode) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create ", dir, ": ", error.message()));
  }
  if (chmod(dir.c_str(), mode) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        "cannot set the mode of ", dir, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

// A member or user name as a CN: short, and of characters that are safe in
// logs, metrics labels and file names.
absl::Status CheckName(absl::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("--name is required");
  if (name.size() > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("--name is ", name.size(), " characters; at most 64"));
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' &&
        c != '_' && c != '.') {
      return absl::InvalidArgumentError(
          absl::StrCat("--name '", name,
                       "' may hold only letters, digits, '-', '_' and '.'"));
    }
  }
  return absl::OkStatus();
}

// "IP:..." or "DNS:..." for the SAN extension; InvalidArgument for a host
// that is neither an address nor a DNS name.
absl::StatusOr<std::string> SanEntry(absl::string_view host) {
  const std::string text(host);
  unsigned char address[16];
  if (inet_pton(AF_INET, text.c_str(), address) == 1 ||
      inet_pton(AF_INET6, text.c_str(), address) == 1) {
    return absl::StrCat("IP:", text);
  }
  bool valid = !text.empty() && text.size() <= 253;
  for (char c : text) {
    valid = valid && (absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                      c == '-' || c == '.' || c == '*');
  }
  if (!valid) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--host '", host, "' is neither an IP address nor a DNS name"));
  }
  return absl::StrCat("DNS:", text);
}

absl::StatusOr<PKey> NewKey() {
  PKey key(EVP_EC_gen("P-256"));
  if (key == nullptr) return CryptoError("cannot generate an EC P-256 key");
  return key;
}

absl::StatusOr<std::string> KeyPem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr,
                                nullptr)) {
    return CryptoError("cannot encode the key");
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

absl::StatusOr<std::string> CertPem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(bio.get(), cert)) {
    return CryptoError("cannot encode the certificate");
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

// A random, positive 127-bit serial, as RFC 5280 asks (unique, at most 20
// bytes).
absl::Status SetRandomSerial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    return CryptoError("no random bytes for a serial number");
  }
  bytes[0] &= 0x7f;
  bytes[0] |= 0x01;  // Never shorter than 16 bytes in DER: never zero.
  Bignum serial(BN_bin2bn(bytes, sizeof(bytes), nullptr));
  if (serial == nullptr ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert)) ==
          nullptr) {
    return CryptoError("cannot set the serial number");
  }
  return absl::OkStatus();
}

absl::Status AddExtension(X509* cert, X509V3_CTX* ctx, int nid,
                          const std::string& value) {
  X509_EXTENSION* ext =
      X509V3_EXT_conf_nid(nullptr, ctx, nid, const_cast<char*>(value.c_str()));
  if (ext == nullptr) {
    return CryptoError(absl::StrCat("bad certificate extension '", value, "'"));
  }
  const int added = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (!added) return CryptoError("cannot add a certificate extension");
  return absl::OkStatus();
}

// A certificate for `key` named `name`, valid `days`, issued by `issuer`
// (null: self-signed) and signed with `signer`, its extensions
// (name -> value) added in order.
absl::StatusOr<Cert> NewCertificate(
    const std::string& name, EVP_PKEY* key, int days, X509* issuer,
    EVP_PKEY* signer,
    const std::vector<std::pair<int, std::string>>& extensions) {
  Cert cert(X509_new());
  if (cert == nullptr || !X509_set_version(cert.get(), 2)) {
    return CryptoError("cannot make a certificate");
  }
  if (absl::Status s = SetRandomSerial(cert.get()); !s.ok()) return s;
  if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), -kBackdateSeconds) ||
      !X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400L * days) ||
      !X509_set_pubkey(cert.get(), key)) {
    return CryptoError("cannot set the certificate's validity or key");
  }
  X509_NAME* subject = X509_get_subject_name(cert.get());
  if (!X509_NAME_add_entry_by_txt(
          subject, "CN", MBSTRING_UTF8,
          reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0)) {
    return CryptoError("cannot set the certificate's name");
  }
  X509* issuer_cert = issuer != nullptr ? issuer : cert.get();
  if (!X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer_cert))) {
    return CryptoError("cannot set the issuer");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer_cert, cert.get(), nullptr, nullptr, 0);
  for (const auto& [nid, value] : extensions) {
    if (absl::Status s = AddExtension(cert.get(), &ctx, nid, value); !s.ok()) {
      return s;
    }
  }
  if (!X509_sign(cert.get(), signer, EVP_sha256())) {
    return CryptoError("cannot sign the certificate");
  }
  return cert;
}

struct LoadedCa {
  Cert cert;
  PKey key;
};

absl::StatusOr<LoadedCa> LoadCa(const std::string& dir) {
  if (!Exists(CaCertPath(dir)) || !Exists(CaKeyPath(dir))) {
    return absl::NotFoundError(
        absl::StrCat("no CA in ", dir,
                     " (make one with 'peergrid ca init --dir=", dir, "')"));
  }
  absl::StatusOr<std::string> cert_pem = ReadFile(CaCertPath(dir));
  if (!cert_pem.ok()) return cert_pem.status();
  absl::StatusOr<std::string> key_pem = ReadFile(CaKeyPath(dir));
  if (!key_pem.ok()) return key_pem.status();
  absl::StatusOr<Cert> cert = ParsePemCert(*cert_pem);
  if (!cert.ok()) {
    return absl::DataLossError(
        absl::StrCat(CaCertPath(dir), ": ", cert.status().message()));
  }
  absl::StatusOr<PKey> key = ParsePemKey(*key_pem);
  if (!key.ok()) {
    return absl::DataLossError(
        absl::StrCat(CaKeyPath(dir), " is not a PEM private key"));
  }
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    ERR_clear_error();
    return absl::DataLossError(
        absl::StrCat(CaKeyPath(dir), " is not the key of ", CaCertPath(dir)));
  }
  return LoadedCa{std::move(*cert), std::move(*key)};
}

std::string CrlPath(const std::string& dir, X509* ca) {
  int ok = 0;
  const unsigned long hash =
      X509_NAME_hash_ex(X509_get_subject_name(ca), nullptr, nullptr, &ok);
  return absl::StrFormat("%s/%08lx.r0", CrlDirectory(dir), hash);
}

// Signs and writes the CA's CRL listing `revoked` (serial -> revocation
// time), valid as long as the CA.
absl::Status WriteCrl(const std::string& dir, const LoadedCa& ca,
                      const std::vector<std::pair<Bignum, time_t>>& revoked) {
  Crl crl(X509_CRL_new());
  if (crl == nullptr || !X509_CRL_set_version(crl.get(), 1) ||
      !X509_CRL_set_issuer_name(crl.get(),
                                X509_get_subject_name(ca.cert.get()))) {
    return CryptoError("cannot make a CRL");
  }
  using Time = std::unique_ptr<ASN1_TIME, Deleter<ASN1_TIME, ASN1_TIME_free>>;
  Time now(X509_gmtime_adj(nullptr, -kBackdateSeconds));
  if (now == nullptr || !X509_CRL_set1_lastUpdate(crl.get(), now.get()) ||
      !X509_CRL_set1_nextUpdate(crl.get(), X509_get0_notAfter(ca.cert.get()))) {
    return CryptoError("cannot set the CRL's dates");
  }
  for (const auto& [serial, when] : revoked) {
    X509_REVOKED* entry = X509_REVOKED_new();
    Time date(ASN1_TIME_set(nullptr, when));
    ASN1_INTEGER* number = BN_to_ASN1_INTEGER(serial.get(), nullptr);
    const bool ok = entry != nullptr && date != nullptr && number != nullptr &&
                    X509_REVOKED_set_serialNumber(entry, number) &&
                    X509_REVOKED_set_revocationDate(entry, date.get());
    ASN1_INTEGER_free(number);
    if (!ok || !X509_CRL_add0_revoked(crl.get(), entry)) {
      X509_REVOKED_free(entry);
      return CryptoError("cannot add a revoked certificate to the CRL");
    }
  }
  if (!X509_CRL_sort(crl.get()) ||
      !X509_CRL_sign(crl.get(), ca.key.get(), EVP_sha256())) {
    return CryptoError("cannot sign the CRL");
  }
  Bio bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509_CRL(bio.get(), crl.get())) {
    return CryptoError("cannot encode the CRL");
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  if (absl::Status s = MakeDirectory(CrlDirectory(dir), 0755); !s.ok())
    return s;
  return WriteFileAtomically(CrlPath(dir, ca.cert.get()),
                             absl::string_view(data, static_cast<size_t>(size)),
                             0644);
}

// The revoked entries of the CA's current CRL.
absl::StatusOr<std::vector<std::pair<Bignum, time_t>>> ReadRevoked(
    const std::string& dir, const LoadedCa& ca) {
  std::vector<std::pair<Bignum, time_t>> out;
  absl::StatusOr<std::string> pem = ReadFile(CrlPath(dir, ca.cert.get()));
  if (!pem.ok()) return out;  // None written yet: nothing revoked.
  Bio bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())));
  Crl crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
  if (crl == nullptr) {
    ERR_clear_error();
    return absl::DataLossError(
        absl::StrCat(CrlPath(dir, ca.cert.get()), " is not a PEM CRL"));
  }
  STACK_OF(X509_REVOKED)* entries = X509_CRL_get_REVOKED(crl.get());
  for (int i = 0; i < sk_X509_REVOKED_num(entries); ++i) {
    const X509_REVOKED* entry = sk_X509_REVOKED_value(entries, i);
    Bignum serial(
        ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(entry), nullptr));
    struct tm when;
    time_t seconds = time(nullptr);
    if (ASN1_TIME_to_tm(X509_REVOKED_get0_revocationDate(entry), &when)) {
      seconds = timegm(&when);
    }
    out.emplace_back(std::move(serial), seconds);
  }
  return out;
}

absl::Time ToTime(const ASN1_TIME* time) {
  struct tm when;
  if (time == nullptr || !ASN1_TIME_to_tm(time, &when)) return absl::Time();
  return absl::FromTimeT(timegm(&when));
}

std::string SerialHex(const ASN1_INTEGER* serial) {
  Bignum number(ASN1_INTEGER_to_BN(serial, nullptr));
  if (number == nullptr) return "";
  char* hex = BN_bn2hex(number.get());
  std::string out = absl::AsciiStrToLower(hex);
  OPENSSL_free(hex);
  return out;
}

}  // namespace

absl::StatusOr<Role> ParseRole(absl::string_view text) {
  if (text == "node") return Role::kNode;
  if (text == "submit") return Role::kSubmit;
  if (text == "read") return Role::kRead;
  return absl::InvalidArgumentError(absl::StrCat(
      "--role must be 'node', 'submit' or 'read', not '", text, "'"));
}

const char* RoleName(Role role) {
  switch (role) {
    case Role::kNode:
      return "node";
    case Role::kSubmit:
      return "submit";
    case Role::kRead:
      return "read";
  }
  return "unknown";
}

std::string RoleUri(Role role) {
  return absl::StrCat(kRolePrefix, RoleName(role));
}

std::string CrlDirectory(const std::string& dir) { return dir + "/crl"; }

absl::Status InitCa(const std::string& dir) {
  if (dir.empty()) return absl::InvalidArgumentError("--dir is required");
  if (Exists(CaCertPath(dir)) || Exists(CaKeyPath(dir))) {
    return absl::AlreadyExistsError(absl::StrCat(
        dir,
        " already holds a CA; remove ca.crt and ca.key to make a new one "
        "(every certificate it issued then stops being trusted)"));
  }
  if (absl::Status s = MakeDirectory(dir, 0700); !s.ok()) return s;
  absl::StatusOr<PKey> key = NewKey();
  if (!key.ok()) return key.status();
  // A name of its own: during a CA rotation two CAs are trusted side by
  // side, and their CRLs, named by a hash of the CA's name, share a
  // directory.
  unsigned char tag[4];
  if (RAND_bytes(tag, sizeof(tag)) != 1) {
    return CryptoError("no random bytes for the CA's name");
  }
  const std::string ca_name = absl::StrFormat(
      "peergrid cluster CA %02x%02x%02x%02x", tag[0], tag[1], tag[2], tag[3]);
  absl::StatusOr<Cert> cert = NewCertificate(
      ca_name, key->get(), kCaDays, nullptr, key->get(),
      {{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
       {NID_key_usage, "critical,keyCertSign,cRLSign"},
       {NID_subject_key_identifier, "hash"}});
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key_pem = KeyPem(key->get());
  if (!key_pem.ok()) return key_pem.status();
  absl::StatusOr<std::string> cert_pem = CertPem(cert->get());
  if (!cert_pem.ok()) return cert_pem.status();
  // The key first: a directory with a certificate and no key is no CA.
  if (absl::Status s = WriteFileAtomically(CaKeyPath(dir), *key_pem, 0600);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = WriteFileAtomically(CaCertPath(dir), *cert_pem, 0644);
      !s.ok()) {
    return s;
  }
  LoadedCa ca{std::move(*cert), std::move(*key)};
  return WriteCrl(dir, ca, {});
}

absl::Status IssueCertificate(const std::string& dir,
                              const IssueOptions& options) {
  if (absl::Status s = CheckName(options.name); !s.ok()) return s;
  if (options.out_prefix.empty()) {
    return absl::InvalidArgumentError("--out is required");
  }
  if (options.days < 1 || options.days > kCaDays) {
    return absl::InvalidArgumentError(
        absl::StrCat("--days must be 1 to ", kCaDays, ", not ", options.days));
  }
  std::vector<std::string> san = {absl::StrCat("URI:", RoleUri(options.role))};
  for (const std::string& host : options.hosts) {
    absl::StatusOr<std::string> entry = SanEntry(host);
    if (!entry.ok()) return entry.status();
    san.push_back(*std::move(entry));
  }
  absl::StatusOr<LoadedCa> ca = LoadCa(dir);
  if (!ca.ok()) return ca.status();
  const int ca_days_left = static_cast<int>(
      (ToTime(X509_get0_notAfter(ca->cert.get())) - absl::Now()) /
      absl::Hours(24));
  if (options.days > ca_days_left) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--days=", options.days, " outlives the CA, which expires in ",
        ca_days_left, " days"));
  }
  absl::StatusOr<PKey> key = NewKey();
  if (!key.ok()) return key.status();
  // Every role's certificate serves both ends: a node is a server and a
  // client of its peers, and a client's certificate is checked as a client.
  absl::StatusOr<Cert> cert = NewCertificate(
      options.name, key->get(), options.days, ca->cert.get(), ca->key.get(),
      {{NID_basic_constraints, "critical,CA:FALSE"},
       {NID_key_usage, "critical,digitalSignature"},
       {NID_ext_key_usage, "serverAuth,clientAuth"},
       {NID_subject_key_identifier, "hash"},
       {NID_authority_key_identifier, "keyid:always"},
       {NID_subject_alt_name, absl::StrJoin(san, ",")}});
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key_pem = KeyPem(key->get());
  if (!key_pem.ok()) return key_pem.status();
  absl::StatusOr<std::string> cert_pem = CertPem(cert->get());
  if (!cert_pem.ok()) return cert_pem.status();
  if (absl::Status s =
          WriteFileAtomically(options.out_prefix + ".key", *key_pem, 0600);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          WriteFileAtomically(options.out_prefix + ".crt", *cert_pem, 0644);
      !s.ok()) {
    return s;
  }
  std::ofstream issued(IssuedPath(dir), std::ios::app);
  issued << SerialHex(X509_get0_serialNumber(cert->get())) << '\t'
         << options.name << '\t' << RoleName(options.role) << '\t'
         << absl::ToUnixSeconds(ToTime(X509_get0_notAfter(cert->get())))
         << '\n';
  if (!issued.flush()) {
    return absl::InternalError(
        absl::StrCat("issued the certificate, but cannot record it in ",
                     IssuedPath(dir), ": it cannot be revoked by name"));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> RevokeCertificates(const std::string& dir,
                                       const std::string& name) {
  if (absl::Status s = CheckName(name); !s.ok()) return s;
  absl::StatusOr<LoadedCa> ca = LoadCa(dir);
  if (!ca.ok()) return ca.status();
  absl::StatusOr<std::vector<std::pair<Bignum, time_t>>> revoked =
      ReadRevoked(dir, *ca);
  if (!revoked.ok()) return revoked.status();
  absl::StatusOr<std::string> issued = ReadFile(IssuedPath(dir));
  int count = 0;
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  for (absl::string_view line :
       absl::StrSplit(issued.ok() ? *issued : "", '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, '\t');
    int64_t expires = 0;
    if (fields.size() != 4 || fields[1] != name ||
        !absl::SimpleAtoi(fields[3], &expires) || expires < now) {
      continue;
    }
    BIGNUM* raw = nullptr;
    if (!BN_hex2bn(&raw, std::string(fields[0]).c_str())) continue;
    Bignum serial(raw);
    bool listed = false;
    for (const auto& [known, when] : *revoked) {
      listed = listed || BN_cmp(known.get(), serial.get()) == 0;
    }
    if (listed) continue;
    revoked->emplace_back(std::move(serial), time(nullptr));
    ++count;
  }
  if (count == 0) {
    return absl::NotFoundError(
        absl::StrCat("no unrevoked, unexpired certificate named '", name,
                     "' in ", IssuedPath(dir)));
  }
  if (absl::Status s = WriteCrl(dir, *ca, *revoked); !s.ok()) return s;
  return count;
}

absl::StatusOr<CertificateInfo> ParseCertificate(absl::string_view pem) {
  absl::StatusOr<Cert> cert = ParsePemCert(pem);
  if (!cert.ok()) return cert.status();
  CertificateInfo info;
  auto common_name = [](X509_NAME* name) {
    const int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (index < 0) return std::string();
    const ASN1_STRING* data =
        X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
    return std::string(
        reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
        static_cast<size_t>(ASN1_STRING_length(data)));
  };
  info.common_name = common_name(X509_get_subject_name(cert->get()));
  info.issuer_common_name = common_name(X509_get_issuer_name(cert->get()));
  std::unique_ptr<GENERAL_NAMES, GeneralNamesFree> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(
          cert->get(), NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names.get());
       ++i) {
    const GENERAL_NAME* entry = sk_GENERAL_NAME_value(names.get(), i);
    if (entry->type == GEN_URI || entry->type == GEN_DNS) {
      const ASN1_IA5STRING* text = entry->d.ia5;
      std::string value(
          reinterpret_cast<const char*>(ASN1_STRING_get0_data(text)),
          static_cast<size_t>(ASN1_STRING_length(text)));
      if (entry->type == GEN_DNS) {
        info.dns_names.push_back(std::move(value));
      } else if (absl::StartsWith(value, kRolePrefix)) {
        absl::StatusOr<Role> role =
            ParseRole(absl::string_view(value).substr(strlen(kRolePrefix)));
        if (role.ok()) info.role = *role;
      }
    } else if (entry->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* bytes = entry->d.iPAddress;
      char text[INET6_ADDRSTRLEN] = {};
      const int family = ASN1_STRING_length(bytes) == 4 ? AF_INET : AF_INET6;
      if (inet_ntop(family, ASN1_STRING_get0_data(bytes), text, sizeof(text))) {
        info.ip_addresses.push_back(text);
      }
    }
  }
  info.serial_hex = SerialHex(X509_get0_serialNumber(cert->get()));
  info.not_before = ToTime(X509_get0_notBefore(cert->get()));
  info.not_after = ToTime(X509_get0_notAfter(cert->get()));
  info.is_ca = X509_check_ca(cert->get()) > 0;
  return info;
}

absl::StatusOr<CertificateInfo> ReadCertificateFile(const std::string& path) {
  absl::StatusOr<std::string> pem = ReadFile(path);
  if (!pem.ok()) return pem.status();
  absl::StatusOr<CertificateInfo> info = ParseCertificate(*pem);
  if (!info.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", info.status().message()));
  }
  return info;
}

absl::Status VerifyCertificate(absl::string_view cert_pem,
                               absl::string_view ca_pem) {
  absl::StatusOr<Cert> cert = ParsePemCert(cert_pem);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<Cert> ca = ParsePemCert(ca_pem);
  if (!ca.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("CA: ", ca.status().message()));
  }
  Store store(X509_STORE_new());
  StoreCtx ctx(X509_STORE_CTX_new());
  if (store == nullptr || ctx == nullptr ||
      !X509_STORE_add_cert(store.get(), ca->get()) ||
      !X509_STORE_CTX_init(ctx.get(), store.get(), cert->get(), nullptr)) {
    return CryptoError("cannot set up verification");
  }
  if (X509_verify_cert(ctx.get()) != 1) {
    const int error = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return absl::FailedPreconditionError(absl::StrCat(
        "certificate not valid: ", X509_verify_cert_error_string(error)));
  }
  return absl::OkStatus();
}

absl::Status CheckKeyPair(absl::string_view cert_pem,
                          absl::string_view key_pem) {
  absl::StatusOr<Cert> cert = ParsePemCert(cert_pem);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<PKey> key = ParsePemKey(key_pem);
  if (!key.ok()) return key.status();
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("not the key of the certificate");
  }
  return absl::OkStatus();
}

}  // namespace peergrid::tls
