// Pretraining a small base model (every weight trainable) on the pooled TRAINING
// split of a dataset: the embedded demo needs a base that knows the language of its
// tasks without ever having seen their validation or test documents. Sequences lose
// their task prompt by default, so the base learns text, not task names.
//
// Token-mean NLL over each global batch (gradient accumulation over micro-batches),
// AdamW per parameter with warmup + cosine decay and gradient clipping, a pooled
// validation perplexity every eval_every steps and at the end; the result is an HF
// checkpoint folder with the tokenizer files beside it.
#pragma once

#include <cstdint>
#include <string>

#include "train/optimizer_config.h"

namespace bora {

struct PretrainConfig {
  std::string model;   // the initial HF folder (e.g. made by bora-make-model)
  std::string data;    // a data_prep dataset; only its train split is read
  std::string out;     // the HF folder to write
  int64_t seed = 42;
  int threads = 0;
  int64_t batch_size = 32;
  int64_t micro_batch = 16;
  int64_t epochs = 1;
  int64_t max_steps = 0;
  // Warm-up and cosine decay, AdamW with weight decay and clipping (a base's recipe).
  OptimizerConfig optim = [] {
    OptimizerConfig o;
    o.lr = 3e-3;
    o.weight_decay = 0.01;
    o.beta2 = 0.95;
    o.schedule = LrSchedule::Cosine;
    o.warmup_steps = 20;
    o.min_lr_ratio = 0.1;
    o.grad_clip = 1.0;
    return o;
  }();
  bool drop_prompt = true;
  int64_t eval_every = 0;  // 0: at the end only
  int64_t eval_batch = 32;
  int64_t log_every = 20;

  void declare(OptionTable& t);
  void validate() const;
};

struct PretrainResult {
  int64_t steps = 0;
  double initial_val_ppl = 0, final_val_ppl = 0;
  double seconds = 0, tokens_per_s = 0;
};

PretrainResult pretrain(const PretrainConfig& config);

}  // namespace bora
