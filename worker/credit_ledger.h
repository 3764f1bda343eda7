// CreditLedger: the slot accounting of the credit protocol (docs/worker.md).
//
// For each open work session it counts the slots the session holds (credits
// granted and not yet used, plus slots of its accepted, unfinished tasks)
// against the slots the worker donates, and shares the free slots max-min
// fairly among sessions that want more: the session holding fewest gets the
// next one, ties to the one granted longest ago.
//
// It knows nothing of tasks, sinks or threads: the Worker calls it under its
// own mutex and delivers the grants it returns.
//
// Thread safety: none; the owner serialises every call.
#ifndef PEERGRID_WORKER_CREDIT_LEDGER_H_
#define PEERGRID_WORKER_CREDIT_LEDGER_H_

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace peergrid::worker {

class CreditLedger {
 public:
  // Up to `prefetch_per_core` credits per donated slot may be granted beyond
  // the donated slots themselves (they queue in the executor).
  explicit CreditLedger(int prefetch_per_core);

  // Slots newly granted to one session by Rebalance().
  struct Grant {
    uint64_t session = 0;
    uint32_t slots = 0;
  };

  void Open(uint64_t session, uint32_t wanted);
  // The slots the session could fill at once.
  void SetWanted(uint64_t session, uint32_t wanted);
  // No more grants, and its unused credits are dropped. Its tasks' slots
  // stay held until Return(); the account is forgotten once none are held.
  void Close(uint64_t session);
  // Uses `slots` credits for an accepted task; false, using none, when the
  // session has fewer.
  bool Use(uint64_t session, int slots);
  // A finished task's slots are free again.
  void Return(uint64_t session, int slots);
  // Credits granted to the session and not yet used (0 if unknown).
  int credits(uint64_t session) const;
  // True while the session has an account (open, or closed with tasks).
  bool contains(uint64_t session) const { return accounts_.contains(session); }

  void SetDonated(int slots) { donated_ = slots; }
  int donated() const { return donated_; }
  // For a graceful leave: Rebalance() grants nothing from now on.
  void StopGranting() { granting_ = false; }

  // Grants free slots to sessions that want more; one Grant per session
  // that got any.
  std::vector<Grant> Rebalance();

 private:
  struct Account {
    uint32_t wanted = 0;
    int granted = 0;  // Credits given and not yet used.
    int in_use = 0;   // Slots of accepted, unfinished tasks.
    uint64_t last_grant = 0;
    int pending = 0;  // Granted by the Rebalance() in progress.
    bool closed = false;
    int held() const { return granted + in_use; }
  };

  const int prefetch_per_core_;
  int donated_ = 0;
  bool granting_ = true;
  uint64_t grant_seq_ = 0;
  absl::flat_hash_map<uint64_t, Account> accounts_;
};

}  // namespace peergrid::worker

#endif  // PEERGRID_WORKER_CREDIT_LEDGER_H_
