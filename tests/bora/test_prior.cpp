// The prior's closed-form gradients against central finite differences of its
// value, for both forms and every preset's trainable tensors (float64).
#include <gtest/gtest.h>

#include "adapters/bank.h"
#include "bora/prior.h"
#include "common/tiny_models.h"

namespace bora {
namespace {

TEST(Prior, GradientsMatchFiniteDifferencesForEveryPreset) {
  auto model = testing_util::tiny_opt(false);
  torch::manual_seed(3);
  for (const char* preset : {"lora", "vera", "tl1", "tl2", "tl3", "tl4", "tl5", "tl6"})
    for (PriorKind kind : {PriorKind::Gaussian, PriorKind::L2}) {
      AdapterConfig c;
      c.preset = preset;
      c.r = 4;
      c.targets = {"q_proj", "v_proj", "fc2"};
      const AdapterLayout layout = AdapterLayout::build(AdapterSpec::resolve(c, model->shape()), model->shape());
      const int64_t T = 3, P = layout.row_size;
      const double tau = 2.5;
      torch::Tensor rows = torch::randn({T, P}, torch::kFloat64);
      torch::Tensor theta = torch::randn({P}, torch::kFloat64);
      PriorTerms terms = prior_terms(kind, tau, rows, theta, layout);
      auto value = [&](const torch::Tensor& r, const torch::Tensor& th) { return prior_terms(kind, tau, r, th, layout).value.item<double>(); };
      // Central differences; h trades truncation (zero for the quadratic form) against
      // cancellation in a value of ~1e4.
      const double h = 1e-4;
      for (const auto& slot : layout.slots) {
        if (!slot.trainable) continue;
        for (int64_t k : {int64_t(0), slot.numel() / 2, slot.numel() - 1}) {
          const int64_t j = slot.offset + k;
          for (int64_t d = 0; d < T; ++d) {
            torch::Tensor up = rows.clone(), down = rows.clone();
            up[d][j] += h;
            down[d][j] -= h;
            const double fd = (value(up, theta) - value(down, theta)) / (2 * h);
            EXPECT_NEAR(terms.grad_rows[d][j].item<double>(), fd, 1e-6 * std::max(1.0, std::fabs(fd)))
                << preset << " " << slot.name << " task " << d;
          }
          torch::Tensor up = theta.clone(), down = theta.clone();
          up[j] += h;
          down[j] -= h;
          const double fd = (value(rows, up) - value(rows, down)) / (2 * h);
          EXPECT_NEAR(terms.grad_theta[j].item<double>(), fd, 1e-6 * std::max(1.0, std::fabs(fd)))
              << preset << " " << slot.name << " Theta";
        }
      }
      if (kind == PriorKind::Gaussian) {
        // The closed forms themselves: tau (theta_d - Theta) and -tau sum_d (theta_d - Theta).
        EXPECT_TRUE(torch::allclose(terms.grad_rows, tau * (rows - theta)));
        EXPECT_TRUE(torch::allclose(terms.grad_theta, -tau * (rows - theta).sum(0)));
        EXPECT_NEAR(terms.value.item<double>(), 0.5 * tau * (rows - theta).pow(2).sum().item<double>(), 1e-9);
      }
    }
}

TEST(Prior, L2IsAPerTensorFrobeniusNorm) {
  auto model = testing_util::tiny_opt(false);
  AdapterConfig c;
  c.r = 2;
  const AdapterLayout layout = AdapterLayout::build(AdapterSpec::resolve(c, model->shape()), model->shape());
  torch::Tensor rows = torch::randn({2, layout.row_size}, torch::kFloat64);
  torch::Tensor theta = torch::randn({layout.row_size}, torch::kFloat64);
  double want = 0;
  for (const auto& s : layout.slots)
    for (int64_t d = 0; d < 2; ++d)
      want += (rows[d].narrow(0, s.offset, s.numel()) - theta.narrow(0, s.offset, s.numel())).norm().item<double>();
  EXPECT_NEAR(prior_terms(PriorKind::L2, 3.0, rows, theta, layout).value.item<double>(), 3.0 * want, 1e-9);
  // At theta_d == Theta the subgradient is 0, not NaN.
  PriorTerms at = prior_terms(PriorKind::L2, 3.0, theta.unsqueeze(0), theta, layout);
  EXPECT_TRUE(torch::isfinite(at.grad_rows).all().item<bool>());
  EXPECT_EQ(at.grad_rows.abs().sum().item<double>(), 0.0);
}

}  // namespace
}  // namespace bora
