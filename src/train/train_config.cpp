#include "train/train_config.h"

#include <cmath>

#include "core/error.h"
#include "core/options.h"

namespace bora {

// resume_safe(): the keys a resumed run may change (output, logging, evaluation
// cadence, the budget, performance knobs; checkpoint/checkpoint.h). micro_batch and
// device change only the order of float sums; data may move (the manifest's hash is
// checked instead); eval_every and patience are what a user tunes while a long run
// is underway; the budget is an upper bound, and raising it continues an
// unconverged run (Trainer refuses that for a schedule that depends on it).
void TrainConfig::declare(OptionTable& t) {
  t.group("run");
  t.add("model", &model, "HF checkpoint folder of the frozen base model (config.json + model.safetensors)");
  t.add("tokenizer", &tokenizer, "folder with vocab.json + merges.txt or tokenizer.json (default: the model folder)")
      .resume_safe();
  t.add("data", &data, "dataset folder made by data_prep (manifest.json + shards)").resume_safe();
  t.add("run_dir", &run_dir, "output folder: config, metrics, results, adapters, checkpoints").resume_safe();
  t.add("tasks", &tasks, "tasks to train (default: every task of the dataset)");
  t.add("seed", &seed, "seed of the sampler and the initialisation");
  // The run folder's lock guards the folder, not the run.
  t.add("lock_heartbeat_s", &lock.heartbeat_s,
        "seconds between the writer's refreshes of run_dir/LOCK, the lock that keeps a second job out of the run "
        "folder (docs/checkpoints.md, \"One writer\")")
      .resume_safe();
  t.add("lock_stale_s", &lock.stale_s,
        "a LOCK not refreshed for this many seconds is stale and taken over, whatever host holds it (>= 3 "
        "heartbeats; a holder on the same host is stale as soon as its process is gone)")
      .resume_safe();
  t.add("init_adapter", &init_adapter,
        "an adapter folder (PEFT or bora format) that Theta and every task start from instead of the preset's "
        "initialisation; it must fit the adapter_* options (docs/adapters.md)");
  t.add_choice("device", &device, kDeviceNames, "where the model runs (auto: cuda when available)").resume_safe();
  t.add_choice("dtype", &dtype, kModelDtypeNames,
               "compute dtype of the frozen base; adapters, Theta, gradients, AdamW state and the loss stay "
               "float32 (float16: CUDA only; docs/architecture.md, \"Precision\")");
  t.add("threads", &threads, "intra-op threads per rank (0 = cores / ranks on the node)").resume_safe();
  t.add_choice("sampler", &sampler, kSamplerNames,
               "global: one minibatch drawn from all tasks, the same for any number of ranks; "
               "balanced: each rank draws batch_size/ranks from its own tasks (results depend on the partition)");
  t.group("batches");
  t.add("batch_size", &batch_size, "sequences per global minibatch (all ranks together)");
  t.add("micro_batch", &micro_batch, "sequences per forward/backward on a rank (gradient accumulation)").resume_safe();
  t.group("optimizer");
  t.add("epochs", &epochs,
        "the budget: at most this many passes over the training sequences (early stopping decides within it; "
        "raise it and resume to continue an unconverged run)")
      .resume_safe();
  t.add("max_steps", &max_steps, "the budget in optimizer steps (> 0 overrides epochs)").resume_safe();
  optim.declare(t, "learning rate (for tau = 0 and tau = inf, or when lr_per_tau is 0)");
  t.add("lr_per_tau", &lr_per_tau,
        "> 0: the paper's rule lr = tau * lr_per_tau for 0 < tau < inf (1e-5 there); 0: lr for every tau "
        "(docs/bora.md, \"The learning-rate rule\")");
  t.group("evaluation");
  t.add("eval_every", &eval_every, "evaluate every N steps (0 = once per epoch)").resume_safe();
  t.add("patience", &patience, "early stopping: evaluations without a better validation NLL (0 = off)").resume_safe();
  t.add("converge_tol", &converge_tol,
        "a run that ends at its budget counts as converged if its best validation NLL fell by at most this "
        "(relative) over its last patience evaluations (docs/bora.md, \"Convergence\")")
      .resume_safe();
  t.add("eval_batch", &eval_batch, "sequences per evaluation forward").resume_safe();
  t.add("eval_base", &eval_base,
        "evaluate the base model alone (no adapter) on the validation split before training: results' base val ppl")
      .resume_safe();
  t.add("log_every", &log_every, "log a metrics line every N steps").resume_safe();
  t.add("replica_check_every", &replica_check_every,
        "every N steps, check that Theta is bit-identical on every rank (a checksum all-gather; 0 = off)")
      .resume_safe();
  t.add("export_adapters", &export_adapters, "write every task's final adapter into run_dir/adapters").resume_safe();
  bora.declare(t);
  adapter.declare(t);
  checkpoint.declare(t);
  prune.declare(t);
}

void TrainConfig::validate() const {
  BORA_CHECK(!model.empty(), ConfigError, "model is not set (an HF checkpoint folder)");
  BORA_CHECK(!data.empty(), ConfigError, "data is not set (a dataset folder made by data_prep)");
  BORA_CHECK(!run_dir.empty(), ConfigError, "run_dir is empty");
  BORA_CHECK(batch_size > 0, ConfigError, "batch_size must be > 0, got ", batch_size);
  BORA_CHECK(micro_batch > 0, ConfigError, "micro_batch must be > 0, got ", micro_batch);
  BORA_CHECK(epochs > 0 || max_steps > 0, ConfigError, "epochs or max_steps must be > 0");
  BORA_CHECK(max_steps >= 0, ConfigError, "max_steps must be >= 0, got ", max_steps);
  optim.validate();
  BORA_CHECK(lr_per_tau >= 0 && std::isfinite(lr_per_tau), ConfigError, "lr_per_tau must be >= 0, got ", lr_per_tau);
  BORA_CHECK(eval_every >= 0, ConfigError, "eval_every must be >= 0, got ", eval_every);
  BORA_CHECK(patience >= 0, ConfigError, "patience must be >= 0, got ", patience);
  BORA_CHECK(converge_tol >= 0 && std::isfinite(converge_tol), ConfigError, "converge_tol must be >= 0, got ",
             converge_tol);
  BORA_CHECK(eval_batch > 0, ConfigError, "eval_batch must be > 0, got ", eval_batch);
  BORA_CHECK(log_every > 0, ConfigError, "log_every must be > 0, got ", log_every);
  BORA_CHECK(threads >= 0, ConfigError, "threads must be >= 0, got ", threads);
  BORA_CHECK(replica_check_every >= 0, ConfigError, "replica_check_every must be >= 0");
  lock.validate();
  bora.validate();
  adapter.validate();
  checkpoint.validate();
  prune.validate();
  BORA_CHECK(std::isfinite(effective_lr()), ConfigError, "the learning rate is not finite (tau = ", bora.tau,
             ", lr_per_tau = ", lr_per_tau, ")");
}

double TrainConfig::effective_lr() const {
  const double tau = bora.tau;
  if (lr_per_tau > 0 && tau > 0 && std::isfinite(tau)) return tau * lr_per_tau;
  return optim.lr;
}

}  // namespace bora
