// Split sizes by largest remainder and the seeded shuffle (split.h).
#include "data/split.h"

#include <cmath>

#include "core/error.h"
#include "core/hash.h"

namespace bora {

void check_split_fractions(const std::array<double, 3>& f) {
  double sum = 0;
  for (double x : f) {
    BORA_CHECK(std::isfinite(x) && x >= 0, ConfigError, "split fractions must be >= 0, got ", x);
    sum += x;
  }
  BORA_CHECK(std::fabs(sum - 1.0) <= 1e-6, ConfigError, "split fractions must sum to 1, got ",
             f[0], " + ", f[1], " + ", f[2], " = ", sum);
}

std::array<int64_t, 3> split_sizes(int64_t n, const std::array<double, 3>& f) {
  check_split_fractions(f);
  BORA_CHECK(n >= 0, InternalError, "negative document count ", n);
  double sum = f[0] + f[1] + f[2];
  std::array<int64_t, 3> size{};
  std::array<double, 3> frac{};
  int64_t used = 0;
  for (int k = 0; k < 3; ++k) {
    double q = static_cast<double>(n) * (f[k] / sum);
    size[k] = static_cast<int64_t>(std::floor(q));
    frac[k] = q - std::floor(q);
    used += size[k];
  }
  // sum of floors > n - 3, so at most 2 are left; but rounding of q can push a floor
  // one over: clamp so the rule "sizes sum to n" always holds.
  while (used > n) {
    int k = 2;
    while (size[k] == 0) --k;
    --size[k];
    --used;
  }
  for (int64_t r = n - used; r > 0; --r) {
    int best = 0;
    for (int k = 1; k < 3; ++k)
      if (frac[k] > frac[best]) best = k;  // strict '>': ties go to the earlier split
    ++size[best];
    frac[best] = -1;  // each split gets at most one leftover document
  }
  return size;
}

uint64_t split_key(uint64_t seed, std::string_view task, const std::vector<std::string_view>& docs) {
  // Lengths are hashed before contents so that no two different inputs (e.g. the
  // documents "ab","c" and "a","bc") produce the same byte stream.
  Hasher h;
  h.update("bora-split-v1");
  auto u64 = [&](uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>(v >> (8 * i));
    h.update(b, 8);
  };
  u64(seed);
  u64(task.size());
  h.update(task);
  u64(docs.size());
  for (std::string_view d : docs) {
    u64(d.size());
    h.update(d);
  }
  return h.digest();
}

namespace {
__extension__ typedef unsigned __int128 u128;  // GCC/Clang: the 64x64 -> 128 product

// splitmix64 (Steele, Lea, Flood 2014): a tiny, well-mixed 64-bit generator.
struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, bound) without modulo bias (Lemire 2019, multiply + rejection).
  uint64_t below(uint64_t bound) {
    u128 m = static_cast<u128>(next()) * bound;
    uint64_t low = static_cast<uint64_t>(m);
    if (low < bound) {
      uint64_t threshold = (0 - bound) % bound;
      while (low < threshold) {
        m = static_cast<u128>(next()) * bound;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }
};
}  // namespace

std::vector<int64_t> shuffled_indices(int64_t n, uint64_t key) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  SplitMix64 rng{key};
  for (int64_t i = n - 1; i > 0; --i) {
    int64_t j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(i) + 1));
    std::swap(p[i], p[j]);
  }
  return p;
}

TaskSplit split_task(uint64_t seed, std::string_view task, const std::vector<std::string_view>& docs,
                     const std::array<double, 3>& fractions) {
  int64_t n = static_cast<int64_t>(docs.size());
  std::array<int64_t, 3> size = split_sizes(n, fractions);
  std::vector<int64_t> order = shuffled_indices(n, split_key(seed, task, docs));
  TaskSplit out;
  int64_t at = 0;
  for (int k = 0; k < 3; ++k) {
    out.docs[k].assign(order.begin() + at, order.begin() + at + size[k]);
    at += size[k];
  }
  return out;
}

}  // namespace bora
