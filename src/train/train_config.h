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
#include "bora/sampler.h"
#include "checkpoint/checkpoint_config.h"
#include "dist/world.h"
#include "model/causal_lm.h"
#include "train/optimizer_config.h"
#include "train/prune.h"
#include "train/run_lock.h"

namespace bora {

struct TrainConfig {
  // run
  std::string model;     // HF checkpoint folder of the frozen base
  std::string tokenizer; // folder with the tokenizer files ("" = the model folder)
  std::string data;      // dataset folder made by data_prep
  std::string run_dir = "runs/bora";
  std::vector<std::string> tasks;  // empty = every task of the dataset
  int64_t seed = 42;
  DeviceKind device = DeviceKind::Auto;       // World::select_device turns it into this rank's device
  torch::Dtype dtype = torch::kFloat32;       // compute dtype of the frozen base (float16: CUDA only)
  int threads = 0;                            // intra-op threads per rank; 0 = cores / ranks on the node
  SamplerKind sampler = SamplerKind::Global;  // balanced: results then depend on the partition
  RunLockOptions lock;             // the run folder's lock: heartbeat and staleness (train/run_lock.h)

  // batches
  int64_t batch_size = 64;   // sequences per global minibatch (all ranks together)
  int64_t micro_batch = 16;  // sequences per forward/backward on a rank (gradient accumulation)

  // optimisation
  int64_t epochs = 10;
  int64_t max_steps = 0;  // > 0 overrides epochs
  OptimizerConfig optim;  // lr, AdamW, schedule, grad_clip (the reference's: constant lr, no clipping)
  double lr_per_tau = 0;  // > 0: lr = tau * lr_per_tau for 0 < tau < inf

  // evaluation
  int64_t eval_every = 0;  // steps; 0 = once per epoch
  int64_t patience = 8;    // evaluations without a better validation NLL before stopping; 0 = never stop early
  double converge_tol = 1e-3;  // a run that did not stop early converged if its NLL fell less (relative) lately
  int64_t eval_batch = 32;
  bool eval_base = true;   // evaluate the base alone (no adapter) on the validation split before training
  int64_t log_every = 10;
  int64_t replica_check_every = 100;  // steps between Theta replica checksums (0 = off)
  bool export_adapters = true;
  std::string init_adapter;  // an adapter folder Theta and every task start from ("" = the preset's init)

  BoraConfig bora;
  AdapterConfig adapter;
  CheckpointConfig checkpoint;
  PruneConfig prune;  // ASHA over a tau sweep (train/prune.h)

  void declare(OptionTable& table);
  void validate() const;
  // The learning rate the run uses: lr_per_tau * tau for 0 < tau < inf when set.
  double effective_lr() const;
  // The schedule's learning rate at `step` (0-based) of `total_steps`.
  double lr_at(int64_t step, int64_t total_steps) const { return optim.lr_at(effective_lr(), step, total_steps); }
};

}  // namespace bora
