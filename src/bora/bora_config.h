// The BoRA objective's options (../shared/spec/bora.md, docs/bora.md):
//
//   L = sum_d w_d NLL_d(theta_d) + R(theta, Theta)
//   gaussian: R = tau/2 sum_d ||theta_d - Theta||^2             (paper, default)
//   l2:       R = tau   sum_d sum_k ||theta_d^k - Theta^k||_F    (reference code)
//   w_d = N_d (documents, reference) | training target tokens (tokens) | 1 (none)
//
// tau = 0: tasks are independent. tau = inf: one adapter shared by every task
// (no Theta, no prior) — a real mode, not a large number.
#pragma once

#include <cmath>
#include <string>

namespace bora {

class OptionTable;

struct BoraConfig {
  double tau = 0.0;
  std::string prior = "gaussian";
  std::string likelihood_weight = "documents";
  std::string theta_update = "adam";
  double init_noise = 1e-3;  // theta_d = Theta + N(0, init_noise^2) at start

  void declare(OptionTable& t);
  void validate() const;
  bool unified() const { return std::isinf(tau); }
};

}  // namespace bora
