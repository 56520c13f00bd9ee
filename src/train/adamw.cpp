#include "train/adamw.h"

#include <cmath>

#include "core/error.h"

namespace bora {

AdamW::AdamW(const torch::Tensor& param, AdamWOptions options)
    : param_(param), m_(torch::zeros_like(param)), v_(torch::zeros_like(param)), options_(options) {}

void AdamW::step(const torch::Tensor& grad, double lr) {
  torch::NoGradGuard no_grad;
  BORA_CHECK(grad.sizes() == param_.sizes(), InternalError, "AdamW: grad ", grad.sizes(), " vs param ",
             param_.sizes());
  ++steps_;
  const auto& o = options_;
  if (o.weight_decay != 0) param_.mul_(1.0 - lr * o.weight_decay);
  m_.mul_(o.beta1).add_(grad, 1.0 - o.beta1);
  v_.mul_(o.beta2).addcmul_(grad, grad, 1.0 - o.beta2);
  const double bc1 = 1.0 - std::pow(o.beta1, double(steps_));
  const double bc2 = 1.0 - std::pow(o.beta2, double(steps_));
  torch::Tensor denom = (v_.sqrt() / std::sqrt(bc2)).add_(o.eps);
  param_.addcdiv_(m_, denom, -lr / bc1);
}

}  // namespace bora
