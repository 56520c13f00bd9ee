#include "core/hash.h"

#include <xxhash.h>

#include <cstdio>

#include "core/error.h"

namespace bora {

uint64_t hash64(const void* data, size_t size, uint64_t seed) {
  return XXH3_64bits_withSeed(data, size, seed);
}

std::string hex64(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

struct Hasher::State {
  XXH3_state_t* s = XXH3_createState();
  ~State() { XXH3_freeState(s); }
};

Hasher::Hasher() : state_(std::make_unique<State>()) {
  BORA_CHECK(state_->s && XXH3_64bits_reset(state_->s) == XXH_OK, InternalError, "xxhash init failed");
}
Hasher::~Hasher() = default;

Hasher& Hasher::update(const void* data, size_t size) {
  XXH3_64bits_update(state_->s, data, size);
  return *this;
}

uint64_t Hasher::digest() const { return XXH3_64bits_digest(state_->s); }

}  // namespace bora
