// Progress lines' numbers: counts, rates (seconds per item below one per second) and
// durations, as a user reads them in a log.
#include <gtest/gtest.h>

#include "core/progress.h"

namespace bora {

TEST(Progress, RatesBelowOnePerSecondAreSecondsPerItem) {
  EXPECT_EQ(human_rate(1 / 2.4, " steps"), "2.4 s/step");
  EXPECT_EQ(human_rate(0.05, " steps"), "20.0 s/step");
  EXPECT_EQ(human_rate(0.5, "B"), "2.0 s/B");
}

TEST(Progress, RatesOfOneOrMoreArePerSecond) {
  EXPECT_EQ(human_rate(3, " steps"), "3 steps/s");
  EXPECT_EQ(human_rate(1, " steps"), "1 steps/s");
  EXPECT_EQ(human_rate(2.5e6, "B"), "2.50 MB/s");
  EXPECT_EQ(human_rate(0, " steps"), "0 steps/s");  // nothing done yet
}

TEST(Progress, CountsAndDurations) {
  EXPECT_EQ(human_count(456), "456");
  EXPECT_EQ(human_count(6480), "6.48 k");
  EXPECT_EQ(human_duration(3725), "1h02m");
  EXPECT_EQ(human_duration(185), "3m05s");
  EXPECT_EQ(human_duration(-1), "?");
}

}  // namespace bora
