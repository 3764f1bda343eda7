// TrustStore: the cluster CA and its revocation list, as a node checks its
// peers' certificates against them: at each TLS handshake (both ends), and
// again on each call (RoleCheck), so that a certificate revoked or expired
// while its connection stays open is refused from then on.
//
// The CA file and the CRL (a file, or a directory of them such as
// `peergrid ca`'s DIR/crl) are re-read when they change on disk: checked at
// most once per `recheck` interval, lazily on the next peer check, or at
// once by Reload() (SIGHUP). A CRL must be signed by the CA; one that is
// not, or that does not parse, is refused with a warning and the previous
// list stays in force. generation() counts the changes, so that the owners
// of long-lived channels can re-dial (a fresh handshake) after one.
//
// Every refusal is counted in peergrid_tls_handshake_failures_total{reason}
// (when given a registry) and logged, at most once a minute per peer name.
//
// Thread safety: every method is thread-safe; checks run on gRPC's
// handshake and call threads and never block on disk reads of another.
#ifndef PEERGRID_NODE_TLS_TRUST_STORE_H_
#define PEERGRID_NODE_TLS_TRUST_STORE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "node/tls/cluster_ca.h"

namespace prometheus {
class Counter;
class Registry;
}  // namespace prometheus

namespace peergrid::tls {

// Why a peer's certificate was refused: the metric's `reason` label.
enum class Refusal {
  kNoCertificate,  // "no_certificate": the peer sent none.
  kUnknownCa,      // "unknown_ca": not issued by the cluster CA.
  kExpired,        // "expired": outside its validity (or not yet valid).
  kRevoked,        // "revoked": listed in the CRL.
  kWrongRole,      // "wrong_role": a server that is not a node, or no role.
  kWrongName,      // "wrong_name": not the member that was dialled.
  kInvalid,        // "invalid": does not parse, or any other defect.
};
const char* RefusalLabel(Refusal refusal);

struct TrustStoreOptions {
  std::string ca_path;   // PEM file of the cluster CA's certificate.
  std::string crl_path;  // CRL file or directory; empty: no revocation.
  absl::Duration recheck = absl::Seconds(1);
  // Null: nothing is counted (a command-line client).
  prometheus::Registry* registry = nullptr;
  // Whether refusals are logged (a node: yes; a client reports its error).
  bool log_refusals = true;
};

class TrustStore {
 public:
  // Reads the CA and the CRL; a missing or bad file is an error naming it.
  static absl::StatusOr<std::shared_ptr<TrustStore>> Open(
      TrustStoreOptions options);
  ~TrustStore();

  // Checks a peer's leaf certificate (PEM, as the handshake gives it) for
  // the chain to the CA, validity now and revocation. On failure `refusal`
  // (if not null) says why; the refusal is not yet counted: Refuse() does.
  absl::StatusOr<CertificateInfo> Verify(absl::string_view cert_pem,
                                         Refusal* refusal = nullptr);

  // Verify() for a certificate that already passed a handshake, answered
  // from a cache while neither the files nor the certificate's validity
  // changed: the per-call check. Counts and logs a refusal.
  absl::Status CheckStillValid(absl::string_view cert_pem);

  // Counts and (rate-limited) logs a refused peer.
  void Refuse(Refusal refusal, absl::string_view peer_name,
              absl::string_view why);

  // Re-reads the CA and the CRL now if either changed on disk.
  void Reload();

  // Changes of the CA or the CRL since Open (the check before it reads the
  // files if the recheck interval has passed).
  uint64_t generation();

 private:
  struct Snapshot;
  struct Cached {
    uint64_t generation = 0;
    absl::Time not_after;
    absl::Status status;
    Refusal refusal = Refusal::kInvalid;  // When !status.ok().
    std::string name;
  };

  explicit TrustStore(TrustStoreOptions options);
  // Loads the files into a new Snapshot if their fingerprint changed.
  absl::Status LoadIfChanged();
  void MaybeRecheck();
  std::shared_ptr<const Snapshot> Current() const;

  const TrustStoreOptions options_;
  prometheus::Counter* counters_[7] = {};

  // Serialises the file reads; never held while checking a certificate.
  absl::Mutex load_mu_;
  std::string fingerprint_ ABSL_GUARDED_BY(load_mu_);

  mutable absl::Mutex mu_;
  std::shared_ptr<const Snapshot> snapshot_ ABSL_GUARDED_BY(mu_);
  absl::Time next_recheck_ ABSL_GUARDED_BY(mu_);
  // Per-call verdicts, by the certificate's PEM text (a few per peer).
  absl::flat_hash_map<std::string, Cached> cache_ ABSL_GUARDED_BY(mu_);
  // When each peer's refusal was last logged.
  absl::flat_hash_map<std::string, absl::Time> logged_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> generation_{0};
};

}  // namespace peergrid::tls

#endif  // PEERGRID_NODE_TLS_TRUST_STORE_H_
