// Every option of bora-train, declared and validated in one place. Components own
// their parts (BoraConfig, AdapterConfig, CheckpointConfig); this struct owns the
// run, data, batch, optimiser, schedule and evaluation keys. The option table built
// from it is also --help and the resolved configuration written to the run folder.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "adapters/adapter_config.h"
#include "bora/bora_config.h"
#include "checkpoint/checkpoint_config.h"
#include "train/run_lock.h"

namespace bora {

class OptionTable;

struct TrainConfig {
  // run
  std::string model;     // HF checkpoint folder of the frozen base
  std::string tokenizer; // folder with the tokenizer files ("" = the model folder)
  std::string data;      // dataset folder made by data_prep
  std::string run_dir = "runs/bora";
  std::vector<std::string> tasks;  // empty = every task of the dataset
  int64_t seed = 42;
  std::string device = "auto";     // auto | cpu | cuda
  std::string dtype = "float32";   // compute dtype of the frozen base: float32 | bfloat16 | float16 (CUDA)
  int threads = 0;                 // intra-op threads per rank; 0 = cores / ranks on the node
  std::string sampler = "global";  // global | balanced (results then depend on the partition)
  RunLockOptions lock;             // the run folder's lock: heartbeat and staleness (train/run_lock.h)

  // batches
  int64_t batch_size = 64;   // sequences per global minibatch (all ranks together)
  int64_t micro_batch = 16;  // sequences per forward/backward on a rank (gradient accumulation)

  // optimisation
  int64_t epochs = 10;
  int64_t max_steps = 0;  // > 0 overrides epochs
  double lr = 1e-4;
  double lr_per_tau = 0;  // > 0: lr = tau * lr_per_tau for 0 < tau < inf
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  std::string lr_schedule = "constant";  // constant | cosine
  int64_t warmup_steps = 0;
  double min_lr_ratio = 0.0;  // cosine floor, as a fraction of lr
  double grad_clip = 0.0;     // > 0: clip the global gradient norm

  // evaluation
  int64_t eval_every = 0;  // steps; 0 = once per epoch
  int64_t patience = 8;    // evaluations without a better validation NLL before stopping; 0 = never stop early
  double converge_tol = 1e-3;  // a run that did not stop early converged if its NLL fell less (relative) lately
  int64_t eval_batch = 32;
  bool eval_base = true;   // evaluate before the first step too
  int64_t log_every = 10;
  int64_t replica_check_every = 100;  // steps between Theta replica checksums (0 = off)
  bool export_adapters = true;
  std::string init_adapter;  // an adapter folder Theta and every task start from ("" = the preset's init)

  BoraConfig bora;
  AdapterConfig adapter;
  CheckpointConfig checkpoint;

  void declare(OptionTable& table);
  void validate() const;
  // The learning rate the run uses: lr_per_tau * tau for 0 < tau < inf when set.
  double effective_lr() const;
  // The schedule's learning rate at `step` (0-based) of `total_steps`.
  double lr_at(int64_t step, int64_t total_steps) const;
};

}  // namespace bora
