// The per-task split: largest-remainder sizes that follow the fractions exactly, and a
// shuffle that depends only on (seed, task name, the task's documents).
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "core/error.h"
#include "data/split.h"

namespace bora {
namespace {

TEST(Split, SizesOfTheReference) {
  const std::array<double, 3> ref{0.5, 0.25, 0.25};
  using A = std::array<int64_t, 3>;
  EXPECT_EQ(split_sizes(0, ref), (A{0, 0, 0}));
  EXPECT_EQ(split_sizes(1, ref), (A{1, 0, 0}));
  EXPECT_EQ(split_sizes(2, ref), (A{1, 1, 0}));
  EXPECT_EQ(split_sizes(3, ref), (A{1, 1, 1}));
  EXPECT_EQ(split_sizes(4, ref), (A{2, 1, 1}));
  EXPECT_EQ(split_sizes(5, ref), (A{3, 1, 1}));
  EXPECT_EQ(split_sizes(7, ref), (A{3, 2, 2}));
  EXPECT_EQ(split_sizes(10, ref), (A{5, 3, 2}));
  EXPECT_EQ(split_sizes(201, ref), (A{101, 50, 50}));
  EXPECT_EQ(split_sizes(999, ref), (A{499, 250, 250}));
  EXPECT_EQ(split_sizes(10, {0.8, 0.1, 0.1}), (A{8, 1, 1}));
  EXPECT_EQ(split_sizes(10, {1.0, 0.0, 0.0}), (A{10, 0, 0}));
}

TEST(Split, SizesSumToNAndStayWithinOneOfTheFraction) {
  const std::vector<std::array<double, 3>> all{
      {0.5, 0.25, 0.25}, {0.8, 0.1, 0.1}, {1.0 / 3, 1.0 / 3, 1.0 / 3}, {0.7, 0.2, 0.1}, {0.9, 0.0, 0.1}};
  for (const auto& f : all) {
    for (int64_t n = 0; n <= 2000; ++n) {
      auto s = split_sizes(n, f);
      ASSERT_EQ(s[0] + s[1] + s[2], n);
      for (int k = 0; k < 3; ++k) {
        double q = static_cast<double>(n) * f[k];
        // Largest remainder: floor(q) or floor(q) + 1, so within 1 of q.
        ASSERT_LT(std::fabs(static_cast<double>(s[k]) - q), 1.0) << "n " << n << " split " << k;
      }
    }
  }
}

TEST(Split, BadFractionsAreConfigErrors) {
  EXPECT_THROW(split_sizes(10, {0.5, 0.5, 0.5}), ConfigError);
  EXPECT_THROW(split_sizes(10, {1.2, -0.1, -0.1}), ConfigError);
  EXPECT_THROW(check_split_fractions({0.5, 0.25, 0.2}), ConfigError);
}

TEST(Split, ShuffleIsAPermutationAndAPureFunctionOfTheKey) {
  std::vector<int64_t> p = shuffled_indices(1000, 42);
  std::set<int64_t> seen(p.begin(), p.end());
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_EQ(*seen.begin(), 0);
  EXPECT_EQ(*seen.rbegin(), 999);
  EXPECT_EQ(p, shuffled_indices(1000, 42));
  EXPECT_NE(p, shuffled_indices(1000, 43));
  // Not the identity, and roughly uniform: element 0 lands in each quarter about
  // equally often over many keys.
  int64_t fixed = 0;
  for (int64_t i = 0; i < 1000; ++i) fixed += p[i] == i;
  EXPECT_LT(fixed, 10);
  std::array<int, 4> quarter{};
  for (uint64_t key = 0; key < 4000; ++key) {
    std::vector<int64_t> q = shuffled_indices(8, key);
    for (int i = 0; i < 8; ++i)
      if (q[i] == 0) ++quarter[i / 2];
  }
  for (int c : quarter) EXPECT_NEAR(c, 1000, 120);
}

TEST(Split, DependsOnlyOnSeedTaskAndDocuments) {
  std::vector<std::string> texts;
  for (int i = 0; i < 40; ++i) texts.push_back("document number " + std::to_string(i));
  std::vector<std::string_view> docs(texts.begin(), texts.end());
  const std::array<double, 3> f{0.5, 0.25, 0.25};
  TaskSplit a = split_task(42, "alice", docs, f);
  TaskSplit again = split_task(42, "alice", docs, f);
  EXPECT_EQ(a.docs, again.docs);
  EXPECT_EQ(a.docs[0].size(), 20u);
  EXPECT_EQ(a.docs[1].size(), 10u);
  EXPECT_EQ(a.docs[2].size(), 10u);
  // Every document exactly once.
  std::set<int64_t> all;
  for (const auto& s : a.docs) all.insert(s.begin(), s.end());
  EXPECT_EQ(all.size(), 40u);
  // Another seed, another task name, or other documents give another order.
  EXPECT_NE(split_task(7, "alice", docs, f).docs, a.docs);
  EXPECT_NE(split_task(42, "bob", docs, f).docs, a.docs);
  texts[3] += "!";
  std::vector<std::string_view> docs2(texts.begin(), texts.end());
  EXPECT_NE(split_task(42, "alice", docs2, f).docs, a.docs);
  // The key covers lengths: "ab","c" and "a","bc" differ.
  EXPECT_NE(split_key(1, "t", {"ab", "c"}), split_key(1, "t", {"a", "bc"}));
}

}  // namespace
}  // namespace bora
