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

// How Theta moves: AdamW on its prior gradient, or the mean of the theta_d after each step.
enum class ThetaUpdate { Adam, Mean };
inline const Names<ThetaUpdate> kThetaUpdateNames = {{"adam", ThetaUpdate::Adam}, {"mean", ThetaUpdate::Mean}};

struct BoraConfig {
  double tau = 0.0;
  PriorKind prior = PriorKind::Gaussian;
  LikelihoodWeight likelihood_weight = LikelihoodWeight::Documents;
  ThetaUpdate theta_update = ThetaUpdate::Adam;
  double init_noise = 1e-3;  // theta_d = Theta + N(0, init_noise^2) at start

  void declare(OptionTable& t);
  void validate() const;
  bool unified() const { return std::isinf(tau); }
};

}  // namespace bora
