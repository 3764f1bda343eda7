// Placement policy: which workers an origin should hold work streams to.
//
// A pure function over a snapshot of the grid, with no threads and no
// sockets. Gossip only picks candidates: the actual work flows as workers
// grant credits (late binding), so a stale view can at worst pick a busy
// worker, never overload it. The policy samples more capacity than the
// pending work needs, weighted by advertised free cores, as in Sparrow's
// batch sampling.
#ifndef PEERGRID_SCHEDULER_PLACEMENT_H_
#define PEERGRID_SCHEDULER_PLACEMENT_H_

#include <string>
#include <vector>

#include "absl/random/bit_gen_ref.h"

namespace peergrid::scheduler {

struct WorkerView {
  std::string name;
  std::string address;
  double cores_donated = 0;
  double cores_free = 0;
  // False for a suspect: its open streams are kept (it may well be alive
  // and busy), but no new work is placed on it.
  bool alive = true;
};

struct PlacementDemand {
  size_t pending_slots = 0;    // Sum of the pending tasks' cpus.
  uint32_t max_task_cpus = 1;  // The largest pending task.
};

struct PlacementOptions {
  // Sample workers until their free cores reach this multiple of the
  // pending slots, so that late binding has choices.
  double oversample = 2.0;
  // Never fewer workers than this (when there are that many eligible).
  size_t min_workers = 2;
  // Weight of a worker with no free cores, relative to one free core, so
  // that a busy worker can still be picked when its advertisement is stale.
  double busy_weight = 0.1;
};

// The names of the workers to stream to, best first. Workers that donate
// fewer cores than the largest pending task are never chosen, nor members
// that are not alive. Returns none when nothing is pending.
std::vector<std::string> ChooseWorkers(const std::vector<WorkerView>& members,
                                       const PlacementDemand& demand,
                                       const PlacementOptions& options,
                                       absl::BitGenRef random);

}  // namespace peergrid::scheduler

#endif  // PEERGRID_SCHEDULER_PLACEMENT_H_
