// Keeps this node's gossip advertisement current.
//
// Every `interval` it builds the advertisement afresh and publishes it when
// what placement depends on changed (cores donated or free, tasks running
// or queued), and in any case every `refresh` (load and free memory drift
// all the time; gossiping each wobble would flood the grid). The membership
// rate-limits publication further.
//
// Threading: owns one thread, which calls `build` and `publish`; both must
// be thread-safe and must not block for long. The destructor stops it.
#ifndef PEERGRID_NODE_ADVERTISER_H_
#define PEERGRID_NODE_ADVERTISER_H_

#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/advertisement.pb.h"

namespace peergrid {

class Advertiser {
 public:
  using BuildFn = std::function<v1::Advertisement()>;
  using PublishFn = std::function<void(v1::Advertisement)>;

  // Publishes once at once, then runs until destroyed.
  Advertiser(BuildFn build, PublishFn publish,
             absl::Duration interval = absl::Milliseconds(50),
             absl::Duration refresh = absl::Seconds(5));
  ~Advertiser();
  Advertiser(const Advertiser&) = delete;
  Advertiser& operator=(const Advertiser&) = delete;

 private:
  void Run();

  const BuildFn build_;
  const PublishFn publish_;
  const absl::Duration interval_;
  const absl::Duration refresh_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace peergrid

#endif  // PEERGRID_NODE_ADVERTISER_H_
