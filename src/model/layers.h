// Minimal building blocks for base models: Linear, LayerNorm, Embedding.
//
// Unlike torch::nn::Linear, these allocate their parameters UNINITIALISED: a base
// model is almost always loaded from a checkpoint right after construction, and
// random-initialising 1.3 B parameters first would cost seconds and touch every
// page. Models made from scratch call init_normal()/init_identity() explicitly.
// Parameter names ("weight", "bias") match torch.nn, hence HF checkpoint keys.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace bora {

class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in, int64_t out, bool bias, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x) const { return torch::linear(x, weight, bias); }
  // HF's OPT init: weight ~ N(0, std), bias = 0.
  void init_normal(double std, torch::Generator gen);
  torch::Tensor weight, bias;  // bias undefined when absent
};
TORCH_MODULE(Linear);

class LayerNormImpl : public torch::nn::Module {
 public:
  LayerNormImpl(int64_t dim, bool affine, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x) const;
  void init_identity();  // weight = 1, bias = 0
  torch::Tensor weight, bias;
  int64_t dim;
};
TORCH_MODULE(LayerNorm);

class EmbeddingImpl : public torch::nn::Module {
 public:
  EmbeddingImpl(int64_t count, int64_t dim, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& ids) const { return torch::embedding(weight, ids); }
  void init_normal(double std, torch::Generator gen);
  torch::Tensor weight;
};
TORCH_MODULE(Embedding);

}  // namespace bora
