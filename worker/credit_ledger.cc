#include "worker/credit_ledger.h"

#include <algorithm>

namespace peergrid::worker {

CreditLedger::CreditLedger(int prefetch_per_core)
    : prefetch_per_core_(std::max(0, prefetch_per_core)) {}

void CreditLedger::Open(uint64_t session, uint32_t wanted) {
  accounts_[session].wanted = wanted;
}

void CreditLedger::SetWanted(uint64_t session, uint32_t wanted) {
  auto it = accounts_.find(session);
  if (it == accounts_.end() || it->second.closed) return;
  it->second.wanted = wanted;
}

void CreditLedger::Close(uint64_t session) {
  auto it = accounts_.find(session);
  if (it == accounts_.end()) return;
  Account& a = it->second;
  a.closed = true;
  a.wanted = 0;
  a.granted = 0;
  if (a.in_use == 0) accounts_.erase(it);
}

bool CreditLedger::Use(uint64_t session, int slots) {
  auto it = accounts_.find(session);
  if (it == accounts_.end() || it->second.granted < slots) return false;
  it->second.granted -= slots;
  it->second.in_use += slots;
  return true;
}

void CreditLedger::Return(uint64_t session, int slots) {
  auto it = accounts_.find(session);
  if (it == accounts_.end()) return;
  Account& a = it->second;
  a.in_use -= slots;
  if (a.closed && a.in_use <= 0) accounts_.erase(it);
}

int CreditLedger::credits(uint64_t session) const {
  auto it = accounts_.find(session);
  return it == accounts_.end() ? 0 : it->second.granted;
}

std::vector<CreditLedger::Grant> CreditLedger::Rebalance() {
  std::vector<Grant> out;
  if (!granting_) return out;
  int held = 0;
  for (const auto& [id, a] : accounts_) held += a.held();
  int free = donated_ * (1 + prefetch_per_core_) - held;
  while (free > 0) {
    uint64_t best_id = 0;
    Account* best = nullptr;
    for (auto& [id, a] : accounts_) {
      if (a.closed || a.held() >= static_cast<int>(a.wanted)) continue;
      if (best == nullptr || a.held() < best->held() ||
          (a.held() == best->held() && a.last_grant < best->last_grant)) {
        best_id = id;
        best = &a;
      }
    }
    if (best == nullptr) break;
    ++best->granted;
    best->last_grant = ++grant_seq_;
    if (best->pending++ == 0) out.push_back(Grant{best_id, 0});
    --free;
  }
  for (Grant& g : out) {
    Account& a = accounts_[g.session];
    g.slots = static_cast<uint32_t>(a.pending);
    a.pending = 0;
  }
  return out;
}

}  // namespace peergrid::worker
