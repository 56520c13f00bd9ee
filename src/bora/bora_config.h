// The BoRA objective's options (docs/bora.md):
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

#include "core/options.h"

namespace bora {

enum class PriorKind { Gaussian, L2 };
inline const Names<PriorKind> kPriorNames = {{"gaussian", PriorKind::Gaussian}, {"l2", PriorKind::L2}};

// w_d, the weight of task d's mean NLL in the likelihood.
enum class LikelihoodWeight { Documents, Tokens, None };
inline const Names<LikelihoodWeight> kLikelihoodWeightNames = {
    {"documents", LikelihoodWeight::Documents}, {"tokens", LikelihoodWeight::Tokens}, {"none", LikelihoodWeight::None}};

// How Theta moves (docs/bora.md, "How Theta moves"):
//   adam         AdamW on Theta's prior gradient -tau sum_d (theta_d - Theta) (the paper)
//   mean         Theta <- the mean of the theta_d after each step (gaussian prior only)
//   noncentered  the same objective in the coordinates theta_d = Theta + delta_d: AdamW
//                on Theta with sum_d of the tasks' likelihood gradients (the prior does
//                not depend on Theta there), and on delta_d with theta_d's gradient. A
//                large tau no longer stiffens the pair, so Theta learns what the tasks
//                share at the pace of tau = inf. At tau = 0 Theta is unused, as in adam.
enum class ThetaUpdate { Adam, Mean, Noncentered };
inline const Names<ThetaUpdate> kThetaUpdateNames = {
    {"adam", ThetaUpdate::Adam}, {"mean", ThetaUpdate::Mean}, {"noncentered", ThetaUpdate::Noncentered}};

struct BoraConfig {
  double tau = 0.0;
  PriorKind prior = PriorKind::Gaussian;
  LikelihoodWeight likelihood_weight = LikelihoodWeight::Documents;
  ThetaUpdate theta_update = ThetaUpdate::Adam;
  double init_noise = 1e-3;  // theta_d = Theta + N(0, init_noise^2) at start

  void declare(OptionTable& t);
  void validate() const;
  bool unified() const { return std::isinf(tau); }
  // Theta has an optimizer (adam, noncentered) and, noncentered with tau > 0, drags the theta_d.
  bool theta_by_adam() const { return !unified() && theta_update != ThetaUpdate::Mean; }
  bool noncentered() const { return !unified() && tau > 0 && theta_update == ThetaUpdate::Noncentered; }
};

}  // namespace bora
