#include "worker/executor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "tests/worker/test_util.h"

namespace peergrid::worker {
namespace {

using testing::Eventually;

TEST(ExecutorTest, RunsEveryTask) {
  Executor ex(2);
  std::atomic<int> done{0};
  for (int i = 0; i < 10000; ++i) {
    ex.Submit(1, [&](SlotLease&) { done.fetch_add(1); });
  }
  EXPECT_TRUE(
      Eventually([&] { return done.load() == 10000; }, absl::Seconds(10)));
  EXPECT_TRUE(
      Eventually([&] { return ex.stats().used == 0; }, absl::Seconds(1)));
}

// Tasks that stay busy for a while: running never exceeds slots, and the
// pool really runs `slots` of them at once.
TEST(ExecutorTest, RunningNeverExceedsSlots) {
  for (int slots : {1, 2, 3}) {
    Executor ex(slots);
    std::atomic<int> now{0}, peak{0}, done{0};
    // On a loaded machine the pool's threads may come up late: tasks wait
    // (up to a shared deadline) until `slots` of them ran at once.
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    for (int i = 0; i < 60; ++i) {
      ex.Submit(1, [&, slots](SlotLease&) {
        const int n = now.fetch_add(1) + 1;
        int p = peak.load();
        while (n > p && !peak.compare_exchange_weak(p, n)) {
        }
        while (peak.load() < slots && absl::Now() < give_up) {
          absl::SleepFor(absl::Microseconds(200));
        }
        absl::SleepFor(absl::Milliseconds(2));  // The work itself.
        now.fetch_sub(1);
        done.fetch_add(1);
      });
    }
    ASSERT_TRUE(
        Eventually([&] { return done.load() == 60; }, absl::Seconds(20)));
    EXPECT_LE(peak.load(), slots);
    EXPECT_EQ(ex.stats().peak_running, slots) << "slots " << slots;
    EXPECT_LE(ex.stats().peak_used, slots);
  }
}

// An arena wider than the machine (2 cores here) still runs that many
// tasks at once: each waits until all four are running.
TEST(ExecutorTest, ArenaWiderThanMachineRunsAllSlots) {
  constexpr int kSlots = 8;
  Executor ex(kSlots);
  std::atomic<int> started{0}, all_met{0};
  for (int i = 0; i < kSlots; ++i) {
    ex.Submit(1, [&](SlotLease&) {
      started.fetch_add(1);
      if (Eventually([&] { return started.load() == kSlots; },
                     absl::Seconds(10))) {
        all_met.fetch_add(1);
      }
    });
  }
  EXPECT_TRUE(
      Eventually([&] { return all_met.load() == kSlots; }, absl::Seconds(15)));
}

TEST(ExecutorTest, MultiCpuTasksHoldSeveralSlots) {
  Executor ex(4);
  std::atomic<int> used_now{0}, peak{0}, done{0};
  for (int i = 0; i < 40; ++i) {
    const int cpus = 1 + i % 3;
    ex.Submit(cpus, [&, cpus](SlotLease& lease) {
      EXPECT_EQ(lease.cpus(), cpus);
      const int n = used_now.fetch_add(cpus) + cpus;
      int p = peak.load();
      while (n > p && !peak.compare_exchange_weak(p, n)) {
      }
      absl::SleepFor(absl::Milliseconds(1));
      used_now.fetch_sub(cpus);
      done.fetch_add(1);
    });
  }
  ASSERT_TRUE(Eventually([&] { return done.load() == 40; }, absl::Seconds(20)));
  EXPECT_LE(peak.load(), 4);
  // More cpus than the executor has: clamped, not stuck.
  std::atomic<bool> big{false};
  ex.Submit(99, [&](SlotLease& lease) { big = lease.cpus() == 4; });
  EXPECT_TRUE(Eventually([&] { return big.load(); }, absl::Seconds(5)));
}

// A detached lease keeps its slot after the function returns (as an exec
// task waiting for its child does) without holding an arena thread.
TEST(ExecutorTest, DetachedSlotsStayHeldUntilReleased) {
  Executor ex(1);
  absl::Mutex mu;
  Slots held;
  std::atomic<bool> second_ran{false};
  ex.Submit(1, [&](SlotLease& lease) {
    absl::MutexLock lock(&mu);
    held = lease.Detach();
  });
  ASSERT_TRUE(
      Eventually([&] { return ex.stats().used == 1; }, absl::Seconds(5)));
  ex.Submit(1, [&](SlotLease&) { second_ran = true; });
  ASSERT_TRUE(
      Eventually([&] { return ex.stats().queued == 1; }, absl::Seconds(5)));
  EXPECT_FALSE(second_ran.load());
  std::thread([&] {
    absl::MutexLock lock(&mu);
    held.Release();
  }).join();
  EXPECT_TRUE(Eventually([&] { return second_ran.load(); }, absl::Seconds(5)));
}

TEST(ExecutorTest, LimitStopsAndResumesStarts) {
  Executor ex(2);
  ex.SetLimit(0);
  std::atomic<int> done{0};
  for (int i = 0; i < 5; ++i) {
    ex.Submit(1, [&](SlotLease&) { done.fetch_add(1); });
  }
  ASSERT_TRUE(
      Eventually([&] { return ex.stats().queued == 5; }, absl::Seconds(2)));
  EXPECT_EQ(done.load(), 0);
  ex.SetLimit(1);
  EXPECT_TRUE(Eventually([&] { return done.load() == 5; }, absl::Seconds(5)));
  EXPECT_LE(ex.stats().peak_running, 1);
}

// Posted tasks (exec starts) go to the poster, not the arena, and hold
// their slots like any other task.
TEST(ExecutorTest, PostedTasksRunThroughThePosterWithinSlots) {
  absl::Mutex mu;
  std::vector<absl::AnyInvocable<void()>> posted;
  Executor ex(1, [&](absl::AnyInvocable<void()> fn) {
    absl::MutexLock lock(&mu);
    posted.push_back(std::move(fn));
  });
  std::atomic<int> ran{0};
  ex.Submit(
      1, [&](SlotLease&) { ran.fetch_add(1); }, /*posted=*/true);
  ex.Submit(
      1, [&](SlotLease&) { ran.fetch_add(1); }, /*posted=*/true);
  // One slot: only the first is handed over; it holds the slot until run.
  auto take = [&] {
    absl::MutexLock lock(&mu);
    auto v = std::move(posted);
    posted.clear();
    return v;
  };
  auto first = take();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(ex.stats().used, 1);
  EXPECT_EQ(ex.stats().queued, 1);
  EXPECT_EQ(ran.load(), 0);
  first[0]();
  EXPECT_EQ(ran.load(), 1);
  auto second = take();  // Released by the first: the second is handed over.
  ASSERT_EQ(second.size(), 1u);
  second[0]();
  EXPECT_EQ(ran.load(), 2);
  EXPECT_EQ(ex.stats().used, 0);
  EXPECT_EQ(ex.stats().peak_running, 1);
}

}  // namespace
}  // namespace peergrid::worker
