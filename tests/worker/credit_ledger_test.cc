// The credit protocol's slot accounting, without tasks or threads.
#include "worker/credit_ledger.h"

#include <gtest/gtest.h>

#include <map>

namespace peergrid::worker {
namespace {

// Slots granted per session by one Rebalance().
std::map<uint64_t, uint32_t> Granted(CreditLedger& ledger) {
  std::map<uint64_t, uint32_t> out;
  for (const CreditLedger::Grant& g : ledger.Rebalance()) {
    EXPECT_GT(g.slots, 0u);
    EXPECT_TRUE(out.emplace(g.session, g.slots).second) << "one grant each";
  }
  return out;
}

TEST(CreditLedgerTest, GrantsNoMoreThanDonatedNorWanted) {
  CreditLedger ledger(0);
  ledger.SetDonated(4);
  ledger.Open(1, 3);
  EXPECT_EQ(Granted(ledger), (std::map<uint64_t, uint32_t>{{1, 3}}));
  EXPECT_EQ(ledger.credits(1), 3);
  EXPECT_TRUE(Granted(ledger).empty()) << "the session holds what it wants";
}

TEST(CreditLedgerTest, SharesFreeSlotsMaxMinFairly) {
  CreditLedger ledger(0);
  ledger.SetDonated(6);
  ledger.Open(1, 10);
  ledger.Open(2, 10);
  ledger.Open(3, 1);
  // Session 3 wants one slot; the other five are split as evenly as can be.
  auto granted = Granted(ledger);
  EXPECT_EQ(granted[3], 1u);
  EXPECT_EQ(granted[1] + granted[2], 5u);
  EXPECT_LE(std::max(granted[1], granted[2]) - std::min(granted[1], granted[2]),
            1u);
}

TEST(CreditLedgerTest, UsedCreditsHoldSlotsUntilReturned) {
  CreditLedger ledger(0);
  ledger.SetDonated(2);
  ledger.Open(1, 2);
  Granted(ledger);
  EXPECT_FALSE(ledger.Use(1, 3)) << "more than the credits held";
  EXPECT_EQ(ledger.credits(1), 2);
  ASSERT_TRUE(ledger.Use(1, 2));
  EXPECT_EQ(ledger.credits(1), 0);
  ledger.Open(2, 2);
  EXPECT_TRUE(Granted(ledger).empty()) << "both slots run session 1's task";
  ledger.Return(1, 2);
  // Session 1 still wants 2 and holds none; session 2 holds none too: one each.
  EXPECT_EQ(Granted(ledger), (std::map<uint64_t, uint32_t>{{1, 1}, {2, 1}}));
}

TEST(CreditLedgerTest, PrefetchGrantsBeyondDonatedSlots) {
  CreditLedger ledger(3);
  ledger.SetDonated(2);
  ledger.Open(1, 100);
  EXPECT_EQ(Granted(ledger), (std::map<uint64_t, uint32_t>{{1, 8}}));
}

TEST(CreditLedgerTest, ClosedSessionGetsNothingAndIsForgottenWhenIdle) {
  CreditLedger ledger(0);
  ledger.SetDonated(2);
  ledger.Open(1, 2);
  Granted(ledger);
  ASSERT_TRUE(ledger.Use(1, 1));
  ledger.Close(1);
  EXPECT_EQ(ledger.credits(1), 0) << "unused credits dropped";
  EXPECT_TRUE(ledger.contains(1)) << "its running task still holds a slot";
  ledger.Open(2, 5);
  EXPECT_EQ(Granted(ledger), (std::map<uint64_t, uint32_t>{{2, 1}}));
  ledger.Return(1, 1);
  EXPECT_FALSE(ledger.contains(1));
  EXPECT_EQ(Granted(ledger), (std::map<uint64_t, uint32_t>{{2, 1}}));
}

TEST(CreditLedgerTest, ShrinkingDonationGrantsNothingNew) {
  CreditLedger ledger(0);
  ledger.SetDonated(4);
  ledger.Open(1, 4);
  Granted(ledger);
  ASSERT_TRUE(ledger.Use(1, 4));
  ledger.SetDonated(1);
  ledger.Return(1, 1);
  EXPECT_TRUE(Granted(ledger).empty()) << "3 held, 1 donated";
  ledger.Return(1, 3);
  EXPECT_EQ(Granted(ledger), (std::map<uint64_t, uint32_t>{{1, 1}}));
}

TEST(CreditLedgerTest, StopGrantingEndsGrants) {
  CreditLedger ledger(0);
  ledger.SetDonated(2);
  ledger.StopGranting();
  ledger.Open(1, 2);
  EXPECT_TRUE(Granted(ledger).empty());
}

}  // namespace
}  // namespace peergrid::worker
