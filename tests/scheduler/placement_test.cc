#include "scheduler/placement.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "absl/random/random.h"

namespace peergrid::scheduler {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

std::vector<WorkerView> Grid(std::vector<std::pair<double, double>> cores) {
  std::vector<WorkerView> members;
  for (size_t i = 0; i < cores.size(); ++i) {
    members.push_back(
        {"w" + std::to_string(i), "addr", cores[i].first, cores[i].second});
  }
  return members;
}

struct Case {
  const char* what;
  std::vector<std::pair<double, double>> grid;  // (donated, free) per worker.
  size_t pending;
  uint32_t max_cpus;
  std::vector<std::string> expected;  // Exactly, in order.
};

TEST(ChooseWorkersTest, Table) {
  const std::vector<Case> cases = {
      {"nothing pending", {{2, 2}, {2, 2}}, 0, 1, {}},
      {"no members", {}, 10, 1, {}},
      {"more work than free cores: all, most free first",
       {{2, 0}, {4, 3}, {2, 1}},
       100,
       1,
       {"w1", "w2", "w0"}},
      {"too few workers to sample: all of them",
       {{2, 2}, {8, 8}},
       1,
       1,
       {"w1", "w0"}},
      {"a task bigger than a worker skips it",
       {{2, 2}, {8, 8}, {1, 1}},
       50,
       4,
       {"w1"}},
      {"zero-donation members never chosen", {{0, 0}, {2, 2}}, 5, 1, {"w1"}},
  };
  absl::BitGen random;
  for (const Case& c : cases) {
    PlacementDemand demand{c.pending, c.max_cpus};
    EXPECT_EQ(ChooseWorkers(Grid(c.grid), demand, PlacementOptions(), random),
              c.expected)
        << c.what;
  }
}

TEST(ChooseWorkersTest, NeverChoosesASuspect) {
  std::vector<WorkerView> members = Grid({{2, 2}, {2, 2}, {2, 2}});
  members[1].alive = false;
  absl::BitGen random;
  EXPECT_THAT(ChooseWorkers(members, {100, 1}, PlacementOptions(), random),
              UnorderedElementsAre("w0", "w2"));
}

TEST(ChooseWorkersTest, SamplesEnoughFreeCoresButNotEveryone) {
  // 20 workers with 4 free cores each; 6 pending slots want 12 free cores.
  std::vector<std::pair<double, double>> cores(20, {4, 4});
  absl::BitGen random;
  const auto chosen =
      ChooseWorkers(Grid(cores), {6, 1}, PlacementOptions(), random);
  EXPECT_EQ(chosen.size(), 3u);
}

TEST(ChooseWorkersTest, PrefersFreeWorkersByWeight) {
  // One idle worker among busy ones is almost always picked first.
  std::vector<std::pair<double, double>> cores(10, {4, 0});
  cores[7] = {4, 4};
  absl::BitGen random;
  int idle_first = 0;
  for (int round = 0; round < 200; ++round) {
    const auto chosen =
        ChooseWorkers(Grid(cores), {1, 1}, PlacementOptions(), random);
    ASSERT_FALSE(chosen.empty());
    idle_first += chosen[0] == "w7" ? 1 : 0;
  }
  // Weight 4.1 against 9 x 0.1: about 82% of first picks.
  EXPECT_GT(idle_first, 130);
}

}  // namespace
}  // namespace peergrid::scheduler
