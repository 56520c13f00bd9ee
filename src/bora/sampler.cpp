#include "bora/sampler.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"

namespace bora {

uint64_t Rng::next() {
  // splitmix64 (Steele et al. 2014): a full-period generator with good mixing.
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// 128-bit products (a GCC/Clang extension; __extension__ keeps -Wpedantic quiet).
__extension__ typedef unsigned __int128 uint128_t;

uint64_t Rng::below(uint64_t n) {
  // Lemire's multiply-shift with rejection: exact uniform, no modulo bias.
  uint128_t m = static_cast<uint128_t>(next()) * n;
  uint64_t low = static_cast<uint64_t>(m);
  if (low < n) {
    uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      m = static_cast<uint128_t>(next()) * n;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

double Rng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

GlobalSampler::GlobalSampler(std::vector<int64_t> task_sizes, int64_t batch_size, uint64_t seed)
    : sizes_(std::move(task_sizes)), batch_size_(batch_size), seed_(seed) {
  BORA_CHECK(batch_size > 0, ConfigError, "batch_size must be > 0, got ", batch_size);
  for (int64_t n : sizes_) {
    starts_.push_back(total_);
    total_ += n;
  }
  BORA_CHECK(total_ > 0, DataError, "no training sequences in any task");
}

void GlobalSampler::ensure_epoch(int64_t epoch) {
  if (epoch == epoch_) return;
  perm_.resize(static_cast<size_t>(total_));
  std::iota(perm_.begin(), perm_.end(), 0);
  Rng rng(seed_ * 0x2545f4914f6cdd1dULL + static_cast<uint64_t>(epoch) + 1);
  for (int64_t i = total_ - 1; i > 0; --i)  // Fisher-Yates
    std::swap(perm_[static_cast<size_t>(i)], perm_[rng.below(static_cast<uint64_t>(i + 1))]);
  epoch_ = epoch;
}

std::vector<SeqRef> GlobalSampler::batch(int64_t step) {
  const int64_t spe = steps_per_epoch();
  ensure_epoch(step / spe);
  const int64_t begin = (step % spe) * batch_size_;
  const int64_t end = std::min(total_, begin + batch_size_);
  std::vector<SeqRef> out;
  out.reserve(static_cast<size_t>(end - begin));
  for (int64_t i = begin; i < end; ++i) {
    int64_t g = perm_[static_cast<size_t>(i)];
    // The task whose range [start, start + size) holds global id g.
    auto it = std::upper_bound(starts_.begin(), starts_.end(), g);
    int32_t task = static_cast<int32_t>(it - starts_.begin() - 1);
    out.push_back({task, g - starts_[static_cast<size_t>(task)]});
  }
  return out;
}

}  // namespace bora
