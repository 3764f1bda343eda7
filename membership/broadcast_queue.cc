#include "membership/broadcast_queue.h"

#include <utility>
#include <vector>

namespace peergrid {

void BroadcastQueue::Push(v1::MemberUpdate update) {
  auto [it, inserted] = entries_.try_emplace(update.name());
  Entry& entry = it->second;
  if (!inserted) order_.erase(KeyOf(entry));
  entry.bytes = update.ByteSizeLong();
  entry.update = std::move(update);
  entry.transmits = 0;
  entry.id = next_id_++;
  order_.insert(KeyOf(entry));
}

void BroadcastQueue::Take(
    int limit, size_t max_bytes,
    google::protobuf::RepeatedPtrField<v1::MemberUpdate>* out,
    absl::string_view skip) {
  std::vector<Key> taken;
  size_t bytes = 0;
  for (const Key& key : order_) {
    const std::string& name = std::get<2>(key);
    if (name == skip) continue;
    const Entry& entry = entries_.at(name);
    if (!taken.empty() && bytes + entry.bytes > max_bytes) break;
    bytes += entry.bytes;
    *out->Add() = entry.update;
    taken.push_back(key);
  }
  for (const Key& key : taken) {
    order_.erase(key);
    auto it = entries_.find(std::get<2>(key));
    Entry& entry = it->second;
    if (++entry.transmits >= limit) {
      entries_.erase(it);
    } else {
      order_.insert(KeyOf(entry));
    }
  }
}

}  // namespace peergrid
