#include "bora/prior.h"

#include "core/error.h"

namespace bora {

PriorTerms prior_terms(PriorKind kind, double tau, const torch::Tensor& rows, const torch::Tensor& theta,
                       const AdapterLayout& layout) {
  torch::NoGradGuard no_grad;
  BORA_CHECK(rows.dim() == 2 && theta.dim() == 1 && rows.size(1) == theta.size(0), InternalError,
             "prior: rows ", rows.sizes(), " and Theta ", theta.sizes(), " do not match");
  PriorTerms out;
  torch::Tensor diff = rows - theta.unsqueeze(0);  // [T, P]
  if (kind == PriorKind::Gaussian) {
    out.value = diff.to(torch::kFloat64).pow(2).sum() * (0.5 * tau);
    out.grad_rows = diff * tau;
  } else {
    // Per adapter tensor k: divide each row's slice by its Frobenius norm.
    out.grad_rows = torch::zeros_like(diff);
    torch::Tensor value = torch::zeros({}, diff.options().dtype(torch::kFloat64));
    for (const auto& slot : layout.slots) {
      if (!slot.trainable) continue;
      torch::Tensor d = diff.narrow(1, slot.offset, slot.numel());
      torch::Tensor norm = d.to(torch::kFloat64).pow(2).sum(1).sqrt();  // [T]
      value += norm.sum();
      torch::Tensor inv = torch::where(norm > 0, 1.0 / norm, torch::zeros_like(norm)).to(d.scalar_type());
      out.grad_rows.narrow(1, slot.offset, slot.numel()).copy_(d * inv.unsqueeze(1) * tau);
    }
    out.value = value * tau;
  }
  // dR/dTheta = -sum_d dR/dtheta_d, summed in float64 so that the total over ranks
  // hardly depends on how tasks are partitioned.
  out.grad_theta = -out.grad_rows.to(torch::kFloat64).sum(0);
  return out;
}

torch::Tensor distance_to_theta(const torch::Tensor& rows, const torch::Tensor& theta) {
  torch::NoGradGuard no_grad;
  return (rows - theta.unsqueeze(0)).to(torch::kFloat64).pow(2).sum(1).sqrt();
}

}  // namespace bora
