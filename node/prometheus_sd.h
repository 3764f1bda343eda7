// Keeps a Prometheus file_sd target list of every live member's metrics
// address, so that Prometheus pointed at any one node's file finds (and
// stops scraping) the whole grid.
//
// The file is a JSON list with one target group per member:
//   [{"targets": ["127.0.0.2:9421"],
//     "labels": {"peergrid_node": "node-1", "peergrid_label_rack": "a"}}]
// Alive and suspect members are listed; dead and left ones are not. It is
// rewritten atomically (write to PATH.tmp, then rename) when its content
// changes, which is checked every `interval`.
//
// Threading: owns one thread, which calls `members`; it must be
// thread-safe. The destructor stops the thread.
#ifndef PEERGRID_NODE_PROMETHEUS_SD_H_
#define PEERGRID_NODE_PROMETHEUS_SD_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/jobs.pb.h"

namespace peergrid {

// The file's content for `members`.
std::string PrometheusTargets(const std::vector<v1::MemberStatus>& members);

class PrometheusSdWriter {
 public:
  using MembersFn = std::function<std::vector<v1::MemberStatus>()>;

  // Writes the file once before returning (an error if it cannot), then
  // keeps it current until destroyed.
  static absl::StatusOr<std::unique_ptr<PrometheusSdWriter>> Start(
      std::string path, MembersFn members,
      absl::Duration interval = absl::Seconds(1));
  ~PrometheusSdWriter();
  PrometheusSdWriter(const PrometheusSdWriter&) = delete;
  PrometheusSdWriter& operator=(const PrometheusSdWriter&) = delete;

 private:
  PrometheusSdWriter(std::string path, MembersFn members,
                     absl::Duration interval);
  // Writes the current list if it changed since the last write.
  absl::Status Refresh();
  void Run();

  const std::string path_;
  const MembersFn members_;
  const absl::Duration interval_;
  std::string written_;  // Used by the thread only, after Start().
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace peergrid

#endif  // PEERGRID_NODE_PROMETHEUS_SD_H_
