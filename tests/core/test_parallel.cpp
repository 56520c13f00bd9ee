// parallel_for: every index exactly once for any thread count and grain, the
// exception of the lowest failing index, and the poll while workers run.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/parallel.h"

namespace bora {
namespace {

TEST(Parallel, EveryIndexExactlyOnce) {
  for (int threads : {1, 2, 5})
    for (int64_t grain : {1, 3, 64})
      for (int64_t n : {0, 1, 7, 1000}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        parallel_for(n, threads, [&](int64_t i) { ++hits[static_cast<size_t>(i)]; }, grain);
        for (int64_t i = 0; i < n; ++i)
          ASSERT_EQ(hits[size_t(i)].load(), 1) << "n " << n << " threads " << threads << " grain " << grain;
      }
}

TEST(Parallel, OneThreadRunsInOrderOnTheCaller) {
  std::vector<int64_t> order;
  parallel_for(10, 1, [&](int64_t i) { order.push_back(i); });
  EXPECT_EQ(order, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(Parallel, LowestFailingIndexIsRethrown) {
  // One thread: index 3 fails first and nothing after it starts.
  std::vector<int64_t> ran;
  try {
    parallel_for(10, 1, [&](int64_t i) {
      ran.push_back(i);
      if (i == 3 || i == 7) throw std::runtime_error("index " + std::to_string(i));
    });
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "index 3");
  }
  EXPECT_EQ(ran, (std::vector<int64_t>{0, 1, 2, 3}));
  // Several threads: whichever fails first, the lowest index that failed wins.
  for (int rep = 0; rep < 20; ++rep) {
    try {
      parallel_for(4, 4, [](int64_t i) {
        if (i >= 1) throw std::runtime_error("index " + std::to_string(i));
      });
      FAIL();
    } catch (const std::runtime_error& e) {
      const std::string w = e.what();
      EXPECT_TRUE(w == "index 1" || w == "index 2" || w == "index 3") << w;
    }
  }
}

TEST(Parallel, PollRunsOnTheCallerWhileWorkersRun) {
  std::atomic<int64_t> done{0};
  int polls = 0;
  parallel_for(
      4, 2,
      [&](int64_t) {
        std::this_thread::sleep_for(std::chrono::milliseconds(60));
        ++done;
      },
      1, [&] { ++polls; });
  EXPECT_EQ(done.load(), 4);
  EXPECT_GE(polls, 1);
}

}  // namespace
}  // namespace bora
