// Content hashes: XXH3-64 (libxxhash), ~10 GB/s, for checksums of checkpoints and
// shards and identities of tokenizers and configurations. Not cryptographic: these
// detect corruption and mismatches, not tampering.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace bora {

uint64_t hash64(const void* data, size_t size, uint64_t seed = 0);
inline uint64_t hash64(std::string_view s) { return hash64(s.data(), s.size()); }
// 16 lowercase hex digits.
std::string hex64(uint64_t h);

// Streaming form: the same digest as hash64 over the concatenated input.
class Hasher {
 public:
  Hasher();
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  Hasher& update(const void* data, size_t size);
  Hasher& update(std::string_view s) { return update(s.data(), s.size()); }
  uint64_t digest() const;
  std::string hex() const { return hex64(digest()); }

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace bora
