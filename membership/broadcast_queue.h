// The queue of membership news waiting to be piggybacked (SWIM's
// dissemination component, as memberlist's TransmitLimitedQueue). Not
// thread-safe: Membership guards it with its own mutex.
#ifndef PEERGRID_MEMBERSHIP_BROADCAST_QUEUE_H_
#define PEERGRID_MEMBERSHIP_BROADCAST_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "proto/membership.pb.h"

namespace peergrid {

class BroadcastQueue {
 public:
  // Queues `update`, replacing any pending update about the same member,
  // with its transmission count at zero.
  void Push(v1::MemberUpdate update);

  // Appends pending updates to `out`, fewest transmissions first and newest
  // first among equals, while they fit in `max_bytes` (at least one is
  // taken). An update is dropped once sent `limit` times. Updates about
  // `skip` are left in place.
  void Take(int limit, size_t max_bytes,
            google::protobuf::RepeatedPtrField<v1::MemberUpdate>* out,
            absl::string_view skip = {});

  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    v1::MemberUpdate update;
    size_t bytes = 0;
    int transmits = 0;
    uint64_t id = 0;
  };
  // Ordered by transmissions, then newest first.
  using Key = std::tuple<int, uint64_t, std::string>;
  static Key KeyOf(const Entry& entry) {
    return {entry.transmits, ~entry.id, entry.update.name()};
  }

  absl::flat_hash_map<std::string, Entry> entries_;
  std::set<Key> order_;
  uint64_t next_id_ = 0;
};

}  // namespace peergrid

#endif  // PEERGRID_MEMBERSHIP_BROADCAST_QUEUE_H_
