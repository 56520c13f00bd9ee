// The hierarchical prior R(theta, Theta) over the rows of an adapter bank, with
// its gradients in closed form (checked against finite differences in tests):
//
//   gaussian  R = tau/2 sum_d ||theta_d - Theta||^2
//             dR/dtheta_d = tau (theta_d - Theta)     dR/dTheta = -tau sum_d (theta_d - Theta)
//   l2        R = tau sum_d sum_k ||theta_d^k - Theta^k||_F      (k: the adapter's tensors)
//             dR/dtheta_d^k = tau (theta_d^k - Theta^k) / ||theta_d^k - Theta^k||_F
//             dR/dTheta^k = -sum_d dR/dtheta_d^k   (0 where the norm is 0: a subgradient)
//
// `rows` are the tasks a rank owns ([T_local, P]); R sums over them only, so the
// global prior and Theta's gradient are sums over ranks (one all-reduce).
#pragma once

#include <torch/types.h>

#include <string>

#include "adapters/adapter_config.h"
#include "bora/bora_config.h"

namespace bora {

struct PriorTerms {
  torch::Tensor value;       // R over the given rows: a float64 scalar on their device (no host read)
  torch::Tensor grad_rows;   // [T, P]
  torch::Tensor grad_theta;  // [P], float64 (summed over ranks before use)
};

PriorTerms prior_terms(PriorKind kind, double tau, const torch::Tensor& rows, const torch::Tensor& theta,
                       const AdapterLayout& layout);

// ||theta_d - Theta|| per row [T] (the paper's Fig. 4 quantity).
torch::Tensor distance_to_theta(const torch::Tensor& rows, const torch::Tensor& theta);

}  // namespace bora
