#include "membership/broadcast_queue.h"

#include "gtest/gtest.h"

namespace peergrid {
namespace {

v1::MemberUpdate Update(const std::string& name, uint64_t incarnation) {
  v1::MemberUpdate update;
  update.set_name(name);
  update.set_state(v1::MEMBER_STATE_ALIVE);
  update.set_incarnation(incarnation);
  return update;
}

TEST(BroadcastQueueTest, NewestAndLeastSentFirstUntilLimit) {
  BroadcastQueue queue;
  queue.Push(Update("a", 1));
  queue.Push(Update("b", 1));
  google::protobuf::RepeatedPtrField<v1::MemberUpdate> out;
  queue.Take(2, 1 << 20, &out);
  ASSERT_EQ(out.size(), 2);
  EXPECT_EQ(out[0].name(), "b");
  queue.Push(Update("c", 1));  // Fresh news goes first.
  out.Clear();
  queue.Take(2, 1 << 20, &out);
  ASSERT_EQ(out.size(), 3);
  EXPECT_EQ(out[0].name(), "c");
  out.Clear();
  queue.Take(2, 1 << 20, &out);  // a and b were sent twice: gone.
  ASSERT_EQ(out.size(), 1);
  EXPECT_EQ(out[0].name(), "c");
  EXPECT_TRUE(queue.empty());
}

TEST(BroadcastQueueTest, NewerNewsReplacesOlderAndBudgetIsKept) {
  BroadcastQueue queue;
  for (int i = 0; i < 100; ++i) queue.Push(Update("n" + std::to_string(i), 1));
  queue.Push(Update("n7", 9));
  EXPECT_EQ(queue.size(), 100u);
  google::protobuf::RepeatedPtrField<v1::MemberUpdate> out;
  size_t one = Update("n10", 1).ByteSizeLong();
  queue.Take(5, 10 * one, &out, "n3");
  EXPECT_EQ(out.size(), 10);
  EXPECT_EQ(out[0].name(), "n7");
  EXPECT_EQ(out[0].incarnation(), 9u);
  for (const auto& update : out) EXPECT_NE(update.name(), "n3");
  out.Clear();
  queue.Take(5, 1, &out);  // At least one, whatever the budget.
  EXPECT_EQ(out.size(), 1);
}

}  // namespace
}  // namespace peergrid
