// AdamW (Loshchilov & Hutter) on one flat tensor, with exactly the arithmetic of
// torch.optim.AdamW (decoupled weight decay, bias corrections, eps added after the
// square root), so that runs compare with the reference code step for step.
//
// The state (m, v, step) lives in plain tensors of the parameter's shape: for the
// adapter bank's [T, P] rows, row d of m and v is task d's state, which is what
// checkpoints store per task. All tasks share the step count: every task gets a
// gradient every step (the prior covers all tasks), as in the reference.
#pragma once

#include <torch/types.h>

#include <cstdint>

namespace bora {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

class AdamW {
 public:
  AdamW(const torch::Tensor& param, AdamWOptions options);
  // One update of `param` (in place) with `grad` at learning rate `lr`.
  void step(const torch::Tensor& grad, double lr);

  torch::Tensor param() const { return param_; }
  torch::Tensor exp_avg() const { return m_; }
  torch::Tensor exp_avg_sq() const { return v_; }
  int64_t steps() const { return steps_; }
  void set_steps(int64_t steps) { steps_ = steps; }
  const AdamWOptions& options() const { return options_; }

 private:
  torch::Tensor param_, m_, v_;
  AdamWOptions options_;
  int64_t steps_ = 0;
};

}  // namespace bora
