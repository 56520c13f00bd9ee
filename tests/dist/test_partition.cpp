// partition_tasks (LPT greedy) against results worked out by hand, the LPT bound,
// determinism, and the errors; partition_table's content.
#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <numeric>
#include <random>

#include "core/error.h"
#include "dist/partition.h"

namespace bora {
namespace {

std::vector<int64_t> loads(const std::vector<int>& owner, const std::vector<int64_t>& work, int world) {
  std::vector<int64_t> l(static_cast<size_t>(world), 0);
  for (size_t t = 0; t < owner.size(); ++t) l[static_cast<size_t>(owner[t])] += work[t];
  return l;
}

TEST(Partition, LptOnAKnownInput) {
  // By hand: 7 -> r0 (7,0); 5 -> r1 (7,5); 4 -> r1 (7,9); 3 (task 3) -> r0 (10,9);
  // 3 (task 4) -> r1 (10,12); 2 -> r0 (12,12).
  const std::vector<int64_t> work = {7, 5, 4, 3, 3, 2};
  EXPECT_EQ(partition_tasks(work, 2), (std::vector<int>{0, 1, 1, 0, 1, 0}));
  // The same tasks in another order land by size, not by position.
  const std::vector<int64_t> shuffled = {2, 3, 7, 3, 5, 4};
  const std::vector<int> owner = partition_tasks(shuffled, 2);
  EXPECT_EQ(owner, (std::vector<int>{0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(loads(owner, shuffled, 2), (std::vector<int64_t>{12, 12}));
  // Three ranks: 7 | 5 | 4, then 3 -> r2 (7), 3 -> r1 (8), 2 -> r0 (9).
  EXPECT_EQ(partition_tasks(work, 3), (std::vector<int>{0, 1, 2, 2, 1, 0}));
}

TEST(Partition, TiesGoToFewerTasksThenLowestRank) {
  EXPECT_EQ(partition_tasks({1, 1, 1, 1}, 2), (std::vector<int>{0, 1, 0, 1}));
  // Tasks without training tokens still give every rank a task.
  EXPECT_EQ(partition_tasks({0, 0, 0}, 3), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(partition_tasks({5, 0, 0}, 3), (std::vector<int>{0, 1, 2}));
}

// The optimal largest load, by enumerating every assignment (small inputs only).
int64_t optimal_max_load(const std::vector<int64_t>& work, int world) {
  const size_t n = work.size();
  int64_t best = INT64_MAX;
  std::vector<int> owner(n, 0);
  while (true) {
    std::vector<int64_t> l(static_cast<size_t>(world), 0);
    for (size_t t = 0; t < n; ++t) l[static_cast<size_t>(owner[t])] += work[t];
    best = std::min(best, *std::max_element(l.begin(), l.end()));
    size_t i = 0;
    while (i < n && ++owner[i] == world) owner[i++] = 0;
    if (i == n) return best;
  }
}

TEST(Partition, DeterministicBalancedAndEveryRankHasATask) {
  std::mt19937_64 gen(11);
  for (int trial = 0; trial < 60; ++trial) {
    const bool small = trial < 30;
    const int n = small ? 1 + static_cast<int>(gen() % 9) : 1 + static_cast<int>(gen() % 60);
    std::vector<int64_t> work(static_cast<size_t>(n));
    for (auto& w : work) w = static_cast<int64_t>(gen() % 5000);
    for (int world = 1; world <= std::min(n, small ? 3 : 8); ++world) {
      const std::vector<int> a = partition_tasks(work, world), b = partition_tasks(work, world);
      ASSERT_EQ(a, b);
      const std::vector<int64_t> l = loads(a, work, world);
      const int64_t largest = *std::max_element(l.begin(), l.end());
      // Any greedy list schedule: largest load <= mean + (1 - 1/m) * largest task.
      const int64_t total = std::accumulate(work.begin(), work.end(), int64_t(0));
      const int64_t max_task = *std::max_element(work.begin(), work.end());
      EXPECT_LE(double(largest), double(total) / world + (1.0 - 1.0 / world) * double(max_task) + 1e-9);
      // Graham's LPT bound against the exact optimum: <= (4/3 - 1/(3m)) OPT.
      if (small) {
        EXPECT_LE(double(largest), (4.0 / 3 - 1.0 / (3 * world)) * double(optimal_max_load(work, world)) + 1e-9)
            << "n " << n << ", world " << world;
      }
      std::vector<int> tasks(static_cast<size_t>(world), 0);
      for (int r : a) tasks[static_cast<size_t>(r)] += 1;
      EXPECT_EQ(std::count(tasks.begin(), tasks.end(), 0), 0) << "n " << n << ", world " << world;
    }
  }
}

TEST(Partition, MoreRanksThanTasksIsAClearError) {
  try {
    partition_tasks({10, 20}, 3);
    FAIL() << "no error";
  } catch (const DistError& e) {
    EXPECT_NE(e.message().find("more ranks (3) than tasks (2)"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("at most 2 ranks"), std::string::npos) << e.message();
  }
  EXPECT_THROW(partition_tasks({}, 1), DistError);
  EXPECT_THROW(partition_tasks({1, 2}, 0), DistError);
  EXPECT_THROW(partition_tasks({1, -2}, 1), DistError);
}

TEST(Partition, TableListsEveryRankWithItsTokens) {
  const std::vector<int64_t> work = {7, 5, 4, 3, 3, 2};
  const std::vector<std::string> names = {"a", "b", "c", "d", "e", "f"};
  const std::string table = partition_table(partition_tasks(work, 2), work, names, 2);
  EXPECT_NE(table.find("6 tasks over 2 ranks"), std::string::npos) << table;
  EXPECT_NE(table.find("     0      3        12  50.0%  a, d, f"), std::string::npos) << table;
  EXPECT_NE(table.find("     1      3        12  50.0%  b, c, e"), std::string::npos) << table;
}

}  // namespace
}  // namespace bora
