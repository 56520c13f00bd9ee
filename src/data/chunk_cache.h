// A least-recently-used cache of decompressed chunks for the dataset reader,
// bounded in bytes. Keys are opaque 64-bit numbers (the reader packs task, split
// and chunk index into one). The newest entry is never evicted, so a bound smaller
// than one chunk still works (it then holds exactly one chunk).
//
// Pointers returned by find()/insert() stay valid until the next insert().
#pragma once

#include <cstdint>
#include <list>
#include <unordered_map>
#include <utility>
#include <vector>

namespace bora {

class ChunkCache {
 public:
  explicit ChunkCache(int64_t max_bytes) : max_bytes_(max_bytes) {}

  const std::vector<uint8_t>* find(uint64_t key) {
    if (!lru_.empty() && lru_.front().first == key) {  // sequential reads hit the newest
      ++hits_;
      return &lru_.front().second;
    }
    auto it = index_.find(key);
    if (it == index_.end()) {
      ++misses_;
      return nullptr;
    }
    ++hits_;
    lru_.splice(lru_.begin(), lru_, it->second);
    return &lru_.front().second;
  }

  // A buffer to fill for insert(): recycled from an evicted chunk when possible.
  std::vector<uint8_t> take_spare() { return std::move(spare_); }

  const std::vector<uint8_t>* insert(uint64_t key, std::vector<uint8_t> bytes) {
    bytes_ += static_cast<int64_t>(bytes.size());
    lru_.emplace_front(key, std::move(bytes));
    index_[key] = lru_.begin();
    while (bytes_ > max_bytes_ && lru_.size() > 1) {
      auto& victim = lru_.back();
      bytes_ -= static_cast<int64_t>(victim.second.size());
      index_.erase(victim.first);
      spare_ = std::move(victim.second);
      lru_.pop_back();
    }
    return &lru_.front().second;
  }

  int64_t bytes() const { return bytes_; }
  int64_t chunks() const { return static_cast<int64_t>(lru_.size()); }
  int64_t hits() const { return hits_; }
  int64_t misses() const { return misses_; }

 private:
  using Entry = std::pair<uint64_t, std::vector<uint8_t>>;
  int64_t max_bytes_;
  int64_t bytes_ = 0, hits_ = 0, misses_ = 0;
  std::list<Entry> lru_;
  std::unordered_map<uint64_t, std::list<Entry>::iterator> index_;
  std::vector<uint8_t> spare_;
};

}  // namespace bora
