// The advertiser publishes what placement depends on promptly when poked,
// keeps looking while the figures move, and refreshes on its own.
#include "node/advertiser.h"

#include <gtest/gtest.h>

#include <atomic>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "tests/testing/eventually.h"

namespace peergrid {
namespace {

using testing::Eventually;

// Figures that the test changes, and what was published.
class FakeNode {
 public:
  void SetRunning(uint32_t running) {
    absl::MutexLock lock(&mu_);
    figures_.tasks_running = running;
  }
  // From now on each look at the figures finds one more task running, up
  // to `running`: figures that move on their own, as when queued tasks
  // start.
  void RampTo(uint32_t running) {
    absl::MutexLock lock(&mu_);
    ramp_to_ = running;
  }
  Advertiser::Figures Figures() {
    absl::MutexLock lock(&mu_);
    if (figures_.tasks_running < ramp_to_) ++figures_.tasks_running;
    return figures_;
  }
  v1::Advertisement Build() {
    absl::MutexLock lock(&mu_);
    v1::Advertisement ad;
    ad.set_tasks_running(figures_.tasks_running);
    return ad;
  }
  void Publish(const v1::Advertisement& ad) {
    absl::MutexLock lock(&mu_);
    ++published_;
    last_running_ = ad.tasks_running();
  }
  int published() {
    absl::MutexLock lock(&mu_);
    return published_;
  }
  uint32_t last_running() {
    absl::MutexLock lock(&mu_);
    return last_running_;
  }

 private:
  absl::Mutex mu_;
  Advertiser::Figures figures_ ABSL_GUARDED_BY(mu_);
  uint32_t ramp_to_ ABSL_GUARDED_BY(mu_) = 0;
  int published_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t last_running_ ABSL_GUARDED_BY(mu_) = 0;
};

std::unique_ptr<Advertiser> StartAdvertiser(FakeNode& node,
                                            absl::Duration refresh) {
  return std::make_unique<Advertiser>(
      [&node] { return node.Figures(); }, [&node] { return node.Build(); },
      [&node](v1::Advertisement ad) { node.Publish(ad); },
      absl::Milliseconds(20), refresh);
}

// Waits until `node` has seen `count` publications.
::testing::AssertionResult Published(FakeNode& node, int count) {
  return Eventually(
      [&] { return ::testing::AssertionResult(node.published() == count); },
      absl::Seconds(5));
}

// Waits until the last publication says `running` tasks run.
::testing::AssertionResult PublishedRunning(FakeNode& node, uint32_t running) {
  return Eventually(
      [&] {
        return ::testing::AssertionResult(node.last_running() == running);
      },
      absl::Seconds(5));
}

TEST(AdvertiserTest, PublishesAtStartAndAChangeWhenPoked) {
  FakeNode node;
  auto advertiser = StartAdvertiser(node, absl::Hours(1));
  ASSERT_TRUE(Published(node, 1));
  node.SetRunning(3);
  advertiser->Poke();
  // The refresh is an hour away: only the poke can explain a publication.
  EXPECT_TRUE(PublishedRunning(node, 3));
}

TEST(AdvertiserTest, KeepsLookingWhileFiguresMoveWithoutPokes) {
  FakeNode node;
  auto advertiser = StartAdvertiser(node, absl::Hours(1));
  ASSERT_TRUE(Published(node, 1));
  // One poke; then the figures move without any (as when queued tasks
  // start). Only polling while they move reaches the last value: the
  // refresh is an hour away.
  node.RampTo(4);
  advertiser->Poke();
  EXPECT_TRUE(PublishedRunning(node, 4));
}

TEST(AdvertiserTest, AnUnchangedPokeDoesNotPublish) {
  FakeNode node;
  auto advertiser = StartAdvertiser(node, absl::Hours(1));
  ASSERT_TRUE(Published(node, 1));
  advertiser->Poke();
  // A change poked afterwards is published once; the unchanged poke before
  // it added nothing.
  node.SetRunning(5);
  advertiser->Poke();
  ASSERT_TRUE(PublishedRunning(node, 5));
  EXPECT_EQ(node.published(), 2);
}

TEST(AdvertiserTest, RefreshesWithoutPokes) {
  FakeNode node;
  auto advertiser = StartAdvertiser(node, absl::Milliseconds(50));
  EXPECT_TRUE(Eventually(
      [&] { return ::testing::AssertionResult(node.published() >= 3); },
      absl::Seconds(5)));
}

}  // namespace
}  // namespace peergrid
