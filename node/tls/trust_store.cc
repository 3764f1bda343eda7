#include "node/tls/trust_store.h"

#include <dirent.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <sys/stat.h>

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "node/tls/openssl.h"

namespace peergrid::tls {

constexpr Refusal kAllRefusals[] = {
    Refusal::kNoCertificate, Refusal::kUnknownCa, Refusal::kExpired,
    Refusal::kRevoked,       Refusal::kWrongRole, Refusal::kWrongName,
    Refusal::kInvalid};

const char* RefusalLabel(Refusal refusal) {
  switch (refusal) {
    case Refusal::kNoCertificate:
      return "no_certificate";
    case Refusal::kUnknownCa:
      return "unknown_ca";
    case Refusal::kExpired:
      return "expired";
    case Refusal::kRevoked:
      return "revoked";
    case Refusal::kWrongRole:
      return "wrong_role";
    case Refusal::kWrongName:
      return "wrong_name";
    case Refusal::kInvalid:
      return "invalid";
  }
  return "invalid";
}

// The CA and CRLs as read at one time; immutable, shared by the checks that
// started under it.
struct TrustStore::Snapshot {
  Store store;
  bool checks_revocation = false;
};

namespace {

constexpr size_t kMaxCached = 4096;
constexpr absl::Duration kLogEvery = absl::Minutes(1);

// What identifies the files' contents cheaply: each one's inode, size and
// modification time. Both `peergrid ca` and rotation by hand replace files
// (a new inode) or rewrite them (a new mtime).
void AddToFingerprint(const std::string& path, std::string* out) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    absl::StrAppend(out, path, ":missing;");
    return;
  }
  absl::StrAppend(out, path, ":", st.st_ino, ":", st.st_size, ":",
                  st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec, ";");
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The CRL files: `path` itself, or the regular files in it if a directory,
// in name order.
std::vector<std::string> CrlFiles(const std::string& path) {
  if (path.empty()) return {};
  if (!IsDirectory(path)) return {path};
  std::vector<std::string> files;
  if (DIR* dir = opendir(path.c_str())) {
    while (const dirent* entry = readdir(dir)) {
      const std::string name = entry->d_name;
      if (name.empty() || name[0] == '.') continue;
      const std::string full = path + "/" + name;
      struct stat st;
      if (stat(full.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
        files.push_back(full);
      }
    }
    closedir(dir);
  }
  std::sort(files.begin(), files.end());
  return files;
}

Refusal RefusalFor(int verify_error) {
  switch (verify_error) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return Refusal::kExpired;
    case X509_V_ERR_CERT_REVOKED:
      return Refusal::kRevoked;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
      return Refusal::kUnknownCa;
    default:
      return Refusal::kInvalid;
  }
}

std::string NameOf(absl::string_view cert_pem) {
  absl::StatusOr<CertificateInfo> info = ParseCertificate(cert_pem);
  return info.ok() ? info->common_name : std::string();
}

}  // namespace

absl::StatusOr<std::shared_ptr<TrustStore>> TrustStore::Open(
    TrustStoreOptions options) {
  std::shared_ptr<TrustStore> store(new TrustStore(std::move(options)));
  if (absl::Status loaded = store->LoadIfChanged(); !loaded.ok()) {
    return loaded;
  }
  return store;
}

TrustStore::TrustStore(TrustStoreOptions options)
    : options_(std::move(options)) {
  if (options_.registry == nullptr) return;
  auto& family = prometheus::BuildCounter()
                     .Name("peergrid_tls_handshake_failures_total")
                     .Help(
                         "Peers refused for their certificate, at the TLS "
                         "handshake or on a later call, by reason")
                     .Register(*options_.registry);
  for (Refusal refusal : kAllRefusals) {
    counters_[static_cast<int>(refusal)] =
        &family.Add({{"reason", RefusalLabel(refusal)}});
  }
}

TrustStore::~TrustStore() = default;

absl::Status TrustStore::LoadIfChanged() {
  absl::MutexLock load_lock(&load_mu_);
  const std::vector<std::string> crl_files = CrlFiles(options_.crl_path);
  std::string fingerprint;
  AddToFingerprint(options_.ca_path, &fingerprint);
  for (const std::string& file : crl_files) {
    AddToFingerprint(file, &fingerprint);
  }
  if (fingerprint == fingerprint_) return absl::OkStatus();
  const bool first = fingerprint_.empty();
  // Once per change, even if the new files are bad: their error is logged
  // once, not every recheck.
  fingerprint_ = fingerprint;

  auto fail = [&](absl::Status status) {
    if (!first) {
      LogWarning("tls: %s; the previous CA and CRL stay in force",
                 status.message());
    }
    return status;
  };
  absl::StatusOr<std::string> ca_pem = ReadFile(options_.ca_path);
  if (!ca_pem.ok()) {
    return fail(absl::InvalidArgumentError(absl::StrCat(
        "--tls-ca=", options_.ca_path, ": ", ca_pem.status().message())));
  }
  auto snapshot = std::make_shared<Snapshot>();
  snapshot->store.reset(X509_STORE_new());
  // Every certificate in the CA file is trusted: a bundle of the old and
  // the new CA is how a CA is rotated.
  Bio bio(BIO_new_mem_buf(ca_pem->data(), static_cast<int>(ca_pem->size())));
  std::vector<Cert> cas;
  while (X509* ca = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    cas.emplace_back(ca);
    X509_STORE_add_cert(snapshot->store.get(), ca);
  }
  ERR_clear_error();
  if (cas.empty()) {
    return fail(absl::InvalidArgumentError(absl::StrCat(
        "--tls-ca=", options_.ca_path, " holds no PEM certificate")));
  }
  if (!options_.crl_path.empty() && crl_files.empty()) {
    return fail(absl::InvalidArgumentError(
        absl::StrCat("--tls-crl=", options_.crl_path,
                     " holds no CRL (peergrid ca init writes one)")));
  }
  for (const std::string& file : crl_files) {
    absl::StatusOr<std::string> pem = ReadFile(file);
    if (!pem.ok()) return fail(pem.status());
    Bio crl_bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())));
    Crl crl(PEM_read_bio_X509_CRL(crl_bio.get(), nullptr, nullptr, nullptr));
    if (crl == nullptr) {
      ERR_clear_error();
      return fail(absl::InvalidArgumentError(
          absl::StrCat("--tls-crl: ", file, " is not a PEM CRL")));
    }
    bool signed_by_ca = false;
    for (const Cert& ca : cas) {
      EVP_PKEY* key = X509_get0_pubkey(ca.get());
      signed_by_ca = signed_by_ca ||
                     (key != nullptr && X509_CRL_verify(crl.get(), key) == 1);
    }
    ERR_clear_error();
    if (!signed_by_ca) {
      return fail(absl::InvalidArgumentError(absl::StrCat(
          "--tls-crl: ", file,
          " is not signed by the CA of --tls-ca=", options_.ca_path)));
    }
    X509_STORE_add_crl(snapshot->store.get(), crl.get());
    snapshot->checks_revocation = true;
  }
  {
    absl::MutexLock lock(&mu_);
    snapshot_ = std::move(snapshot);
    cache_.clear();
  }
  if (!first) {
    generation_.fetch_add(1, std::memory_order_acq_rel);
    LogInfo("tls: re-read the CA (%s) and the CRL (%s)", options_.ca_path,
            options_.crl_path.empty() ? "none" : options_.crl_path);
  }
  return absl::OkStatus();
}

void TrustStore::MaybeRecheck() {
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    if (now < next_recheck_) return;
    next_recheck_ = now + options_.recheck;
  }
  LoadIfChanged().IgnoreError();  // Logged; the old snapshot stays.
}

void TrustStore::Reload() { LoadIfChanged().IgnoreError(); }

uint64_t TrustStore::generation() {
  MaybeRecheck();
  return generation_.load(std::memory_order_acquire);
}

std::shared_ptr<const TrustStore::Snapshot> TrustStore::Current() const {
  absl::MutexLock lock(&mu_);
  return snapshot_;
}

absl::StatusOr<CertificateInfo> TrustStore::Verify(absl::string_view cert_pem,
                                                   Refusal* refusal) {
  Refusal ignored;
  if (refusal == nullptr) refusal = &ignored;
  if (cert_pem.empty()) {
    *refusal = Refusal::kNoCertificate;
    return absl::UnauthenticatedError(
        "no client certificate: every peer of a TLS grid presents one of "
        "the cluster CA (--tls-cert, --tls-key)");
  }
  MaybeRecheck();
  absl::StatusOr<Cert> cert = ParsePemCert(cert_pem);
  if (!cert.ok()) {
    *refusal = Refusal::kInvalid;
    return absl::UnauthenticatedError("the certificate does not parse");
  }
  std::shared_ptr<const Snapshot> snapshot = Current();
  StoreCtx ctx(X509_STORE_CTX_new());
  if (ctx == nullptr || !X509_STORE_CTX_init(ctx.get(), snapshot->store.get(),
                                             cert->get(), nullptr)) {
    *refusal = Refusal::kInvalid;
    return CryptoError("cannot set up certificate verification");
  }
  if (snapshot->checks_revocation) {
    X509_STORE_CTX_set_flags(ctx.get(), X509_V_FLAG_CRL_CHECK);
  }
  absl::StatusOr<CertificateInfo> info = ParseCertificate(cert_pem);
  const std::string name = info.ok() ? info->common_name : std::string();
  if (X509_verify_cert(ctx.get()) != 1) {
    const int error = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    *refusal = RefusalFor(error);
    return absl::UnauthenticatedError(
        absl::StrCat("certificate '", name,
                     "' refused: ", X509_verify_cert_error_string(error)));
  }
  if (!info.ok()) {
    *refusal = Refusal::kInvalid;
    return absl::UnauthenticatedError(info.status().message());
  }
  return info;
}

absl::Status TrustStore::CheckStillValid(absl::string_view cert_pem) {
  const uint64_t current = generation();
  const absl::Time now = absl::Now();
  Cached verdict;
  bool cached = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = cache_.find(cert_pem);
    if (it != cache_.end() && it->second.generation == current &&
        (!it->second.status.ok() || now < it->second.not_after)) {
      verdict = it->second;
      cached = true;
    }
  }
  if (!cached) {
    absl::StatusOr<CertificateInfo> info = Verify(cert_pem, &verdict.refusal);
    verdict.generation = current;
    verdict.status = info.status();
    verdict.not_after = info.ok() ? info->not_after : absl::InfinitePast();
    verdict.name = info.ok() ? info->common_name : NameOf(cert_pem);
    absl::MutexLock lock(&mu_);
    if (cache_.size() >= kMaxCached) cache_.clear();
    cache_[std::string(cert_pem)] = verdict;
  }
  if (!verdict.status.ok()) {
    Refuse(verdict.refusal, verdict.name, verdict.status.message());
  }
  return verdict.status;
}

void TrustStore::Refuse(Refusal refusal, absl::string_view peer_name,
                        absl::string_view why) {
  if (prometheus::Counter* counter = counters_[static_cast<int>(refusal)]) {
    counter->Increment();
  }
  if (!options_.log_refusals) return;
  const std::string key =
      peer_name.empty() ? std::string("(no name)") : std::string(peer_name);
  const absl::Time now = absl::Now();
  {
    absl::MutexLock lock(&mu_);
    if (logged_.size() >= kMaxCached) logged_.clear();
    absl::Time& last = logged_[key];
    if (now - last < kLogEvery) return;
    last = now;
  }
  LogWarning("tls: refused peer %s (%s): %s", key, RefusalLabel(refusal), why);
}

}  // namespace peergrid::tls
