// The deterministic per-task split into train / validation / test.
//
// Sizes (largest remainder): with fractions f_k (summing to 1) and n documents,
// q_k = n * f_k; every split first gets floor(q_k), then the r = n - sum floor(q_k)
// documents left over (r <= 2) go one each to the splits with the largest fractional
// parts q_k - floor(q_k), ties to the earlier split (train, then validation, then
// test). So the sizes sum to n and each differs from n * f_k by less than 1.
// Reference fractions 0.5/0.25/0.25: n = 7 -> 3/2/2, n = 10 -> 5/3/2, n = 5 -> 3/1/1.
//
// Order: the task's documents (in input order) are shuffled by a Fisher-Yates pass
// driven by splitmix64 seeded with split_key(seed, task, documents), an XXH3-64 of the
// seed, the task name and every document's bytes; the first n_train of the shuffled
// order are the training set, the next n_validation the validation set, the rest the
// test set. The result depends on nothing else: not on other tasks, the thread count
// or the machine.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bora {

// ConfigError unless every fraction is >= 0 and they sum to 1 (within 1e-6).
void check_split_fractions(const std::array<double, 3>& fractions);

std::array<int64_t, 3> split_sizes(int64_t n, const std::array<double, 3>& fractions);

uint64_t split_key(uint64_t seed, std::string_view task,
                   const std::vector<std::string_view>& documents);

// A uniformly random permutation of 0..n-1, a pure function of (n, key).
std::vector<int64_t> shuffled_indices(int64_t n, uint64_t key);

// The documents (as indices into `documents`) of each split, in split order.
struct TaskSplit {
  std::array<std::vector<int64_t>, 3> docs;
};
TaskSplit split_task(uint64_t seed, std::string_view task,
                     const std::vector<std::string_view>& documents,
                     const std::array<double, 3>& fractions);

}  // namespace bora
