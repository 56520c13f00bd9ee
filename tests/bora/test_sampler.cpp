// The global sampler: every sequence once per epoch, deterministic in the seed,
// batches of batch_size (the last of an epoch smaller), tasks mixed.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "bora/sampler.h"
#include "core/error.h"

namespace bora {
namespace {

TEST(Sampler, EachSequenceOncePerEpochAndDeterministic) {
  GlobalSampler s({5, 0, 12, 3}, 7, 42), again({5, 0, 12, 3}, 7, 42), other({5, 0, 12, 3}, 7, 43);
  EXPECT_EQ(s.steps_per_epoch(), 3);  // 20 sequences in batches of 7: 7, 7, 6
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    std::set<std::pair<int, int64_t>> seen;
    std::map<int, int> per_task;
    for (int64_t k = 0; k < 3; ++k) {
      auto b = s.batch(epoch * 3 + k);
      EXPECT_EQ(b.size(), k < 2 ? 7u : 6u);
      auto b2 = again.batch(epoch * 3 + k);
      for (size_t i = 0; i < b.size(); ++i) {
        EXPECT_EQ(b[i].task, b2[i].task);
        EXPECT_EQ(b[i].index, b2[i].index);
        EXPECT_TRUE(seen.insert({b[i].task, b[i].index}).second);
        ++per_task[b[i].task];
      }
    }
    EXPECT_EQ(seen.size(), 20u);
    EXPECT_EQ(per_task[0], 5);
    EXPECT_EQ(per_task.count(1), 0u);
    EXPECT_EQ(per_task[2], 12);
  }
  // Another seed, another order; another epoch, another order.
  auto a = s.batch(0), b = other.batch(0), c = s.batch(3);
  bool same_seed = true, same_epoch = true;
  for (size_t i = 0; i < a.size(); ++i) {
    same_seed &= a[i].task == b[i].task && a[i].index == b[i].index;
    same_epoch &= a[i].task == c[i].task && a[i].index == c[i].index;
  }
  EXPECT_FALSE(same_seed);
  EXPECT_FALSE(same_epoch);
  EXPECT_THROW(GlobalSampler({0, 0}, 4, 1), DataError);
}

TEST(Sampler, RngBelowIsUniform) {
  Rng r(1);
  std::vector<int> counts(6, 0);
  for (int i = 0; i < 60000; ++i) ++counts[r.below(6)];
  for (int c : counts) EXPECT_NEAR(c, 10000, 400);  // ~4 sigma
}

}  // namespace
}  // namespace bora
