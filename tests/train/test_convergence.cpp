// Whether a run had converged (train/convergence.h), on validation histories whose
// verdict follows from the rule by hand: early stopping, a stale best, a plateau
// within tolerance, and a budget that ran out while the NLL was still falling.
#include <gtest/gtest.h>

#include "train/convergence.h"

namespace bora {
namespace {

using History = std::vector<std::pair<int64_t, double>>;

TEST(Convergence, EarlyStoppingIsConvergence) {
  const History h = {{0, 5.0}, {10, 4.0}, {20, 4.1}, {30, 4.2}, {40, 4.3}};
  Convergence c = assess_convergence(h, /*stopped_early=*/true, /*patience=*/3, /*tol=*/1e-3);
  EXPECT_TRUE(c.converged);
  EXPECT_EQ(c.evaluations, 5);
  EXPECT_EQ(c.evals_since_best, 3);
  EXPECT_NE(c.reason.find("early stopping fired at step 40 (best at step 10)"), std::string::npos) << c.reason;
}

TEST(Convergence, BestAtTheLastEvaluationWhileFallingIsNotConverged) {
  // The situation of the issue: every run's best at its very last step.
  const History h = {{0, 5.0}, {10, 4.5}, {20, 4.2}, {30, 4.0}, {40, 3.9}};
  Convergence c = assess_convergence(h, false, 3, 1e-3);
  EXPECT_FALSE(c.converged);
  EXPECT_EQ(c.evals_since_best, 0);
  // Over the last 3 evaluations the best fell from 4.5 (at step 10) to 3.9.
  EXPECT_NEAR(c.recent_drop, (4.5 - 3.9) / 4.5, 1e-12);
  EXPECT_NE(c.reason.find("still falling"), std::string::npos) << c.reason;
  EXPECT_NE(c.reason.find("best at step 40 of 40"), std::string::npos) << c.reason;
}

TEST(Convergence, APlateauWithinToleranceIsConverged) {
  const History h = {{0, 5.0}, {10, 4.0}, {20, 3.9995}, {30, 3.9993}, {40, 3.9992}};
  Convergence c = assess_convergence(h, false, 3, 1e-3);
  EXPECT_TRUE(c.converged) << c.reason;
  EXPECT_NEAR(c.recent_drop, (4.0 - 3.9992) / 4.0, 1e-12);
  // The same history with a tighter tolerance is still falling.
  EXPECT_FALSE(assess_convergence(h, false, 3, 1e-5).converged);
}

TEST(Convergence, WithoutEarlyStoppingAStaleBestIsConverged) {
  // patience = 0 (early stopping off): the window is 3 evaluations.
  const History h = {{0, 5.0}, {10, 4.0}, {20, 4.1}, {30, 4.2}, {40, 4.05}};
  Convergence c = assess_convergence(h, false, 0, 0.0);
  EXPECT_TRUE(c.converged) << c.reason;
  EXPECT_EQ(c.evals_since_best, 3);
}

TEST(Convergence, OneEvaluationSaysNothing) {
  EXPECT_FALSE(assess_convergence({{0, 5.0}}, false, 3, 1e-3).converged);
  EXPECT_FALSE(assess_convergence({}, false, 3, 1e-3).converged);
}

}  // namespace
}  // namespace bora
