#include "scheduler/placement.h"

#include <algorithm>

#include "absl/random/distributions.h"

namespace peergrid::scheduler {

std::vector<std::string> ChooseWorkers(const std::vector<WorkerView>& members,
                                       const PlacementDemand& demand,
                                       const PlacementOptions& options,
                                       absl::BitGenRef random) {
  std::vector<const WorkerView*> eligible;
  double total_free = 0;
  for (const WorkerView& member : members) {
    if (member.alive &&
        member.cores_donated >= std::max<double>(demand.max_task_cpus, 1)) {
      eligible.push_back(&member);
      total_free += std::max(member.cores_free, 0.0);
    }
  }
  std::vector<std::string> chosen;
  if (demand.pending_slots == 0 || eligible.empty()) return chosen;

  const double wanted_free =
      static_cast<double>(demand.pending_slots) * options.oversample;
  if (total_free <= wanted_free || eligible.size() <= options.min_workers) {
    // Every eligible worker is needed: most free first.
    std::stable_sort(eligible.begin(), eligible.end(),
                     [](const WorkerView* a, const WorkerView* b) {
                       return a->cores_free > b->cores_free;
                     });
    for (const WorkerView* member : eligible) chosen.push_back(member->name);
    return chosen;
  }

  // Weighted sampling without replacement until enough free cores are in.
  std::vector<double> weights;
  weights.reserve(eligible.size());
  for (const WorkerView* member : eligible) {
    weights.push_back(std::max(member->cores_free, 0.0) + options.busy_weight);
  }
  double chosen_free = 0;
  while (!eligible.empty() &&
         (chosen_free < wanted_free || chosen.size() < options.min_workers)) {
    double total = 0;
    for (double weight : weights) total += weight;
    double pick = absl::Uniform(random, 0.0, total);
    size_t index = 0;
    while (index + 1 < weights.size() && pick >= weights[index]) {
      pick -= weights[index];
      ++index;
    }
    chosen.push_back(eligible[index]->name);
    chosen_free += std::max(eligible[index]->cores_free, 0.0);
    eligible.erase(eligible.begin() + static_cast<long>(index));
    weights.erase(weights.begin() + static_cast<long>(index));
  }
  return chosen;
}

}  // namespace peergrid::scheduler
