#include "model/layers.h"

namespace bora {

LinearImpl::LinearImpl(int64_t in, int64_t out, bool has_bias, const torch::TensorOptions& o) {
  weight = register_parameter("weight", torch::empty({out, in}, o), /*requires_grad=*/false);
  if (has_bias) bias = register_parameter("bias", torch::empty({out}, o), /*requires_grad=*/false);
}

void LinearImpl::init_normal(double std, torch::Generator gen) {
  torch::NoGradGuard no_grad;
  weight.normal_(0.0, std, gen);
  if (bias.defined()) bias.zero_();
}

LayerNormImpl::LayerNormImpl(int64_t d, bool affine, const torch::TensorOptions& o) : dim(d) {
  if (affine) {
    weight = register_parameter("weight", torch::empty({d}, o), false);
    bias = register_parameter("bias", torch::empty({d}, o), false);
  }
}

torch::Tensor LayerNormImpl::forward(const torch::Tensor& x) const {
  // OPT uses nn.LayerNorm's default eps.
  return torch::layer_norm(x, {dim}, weight, bias, /*eps=*/1e-5);
}

void LayerNormImpl::init_identity() {
  torch::NoGradGuard no_grad;
  if (weight.defined()) weight.fill_(1.0);
  if (bias.defined()) bias.zero_();
}

EmbeddingImpl::EmbeddingImpl(int64_t count, int64_t d, const torch::TensorOptions& o) {
  weight = register_parameter("weight", torch::empty({count, d}, o), false);
}

void EmbeddingImpl::init_normal(double std, torch::Generator gen) {
  torch::NoGradGuard no_grad;
  weight.normal_(0.0, std, gen);
}

}  // namespace bora
