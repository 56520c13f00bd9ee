// The optimiser options that bora-train and bora-pretrain share, declared and
// validated in one place: AdamW's hyper-parameters, the learning-rate schedule and
// gradient clipping. Each tool declares them with its own defaults (pretraining a
// base wants warm-up and cosine decay; BoRA's adapters a constant lr).
//
//   lr(step) = peak * (step + 1) / warmup_steps                      step < warmup_steps
//            = peak                                                  constant
//            = peak * (m + (1 - m) * (1 + cos(pi * p)) / 2)          cosine, p = (step - warmup) / (total - warmup)
//   m = min_lr_ratio, p clamped to [0, 1].
#pragma once

#include <cstdint>
#include <string>

#include "core/options.h"
#include "train/adamw.h"

namespace bora {

enum class LrSchedule { Constant, Cosine };
inline const Names<LrSchedule> kLrScheduleNames = {{"constant", LrSchedule::Constant}, {"cosine", LrSchedule::Cosine}};

struct OptimizerConfig {
  double lr = 1e-4;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  LrSchedule schedule = LrSchedule::Constant;
  int64_t warmup_steps = 0;
  double min_lr_ratio = 0.0;  // cosine floor, as a fraction of the peak
  double grad_clip = 0.0;     // > 0: clip the global gradient norm

  // Keys lr, beta1, beta2, eps, weight_decay, lr_schedule, warmup_steps,
  // min_lr_ratio, grad_clip; `lr_help` says what lr means for the tool.
  void declare(OptionTable& t, const std::string& lr_help);
  void validate() const;
  AdamWOptions adamw() const { return {beta1, beta2, eps, weight_decay}; }
  // The schedule's learning rate at `step` (0-based) of `total_steps` for a peak of `peak`.
  double lr_at(double peak, int64_t step, int64_t total_steps) const;
};

}  // namespace bora
