#include "train/train_config.h"

#include <cmath>

#include "core/error.h"
#include "core/options.h"

namespace bora {

void TrainConfig::declare(OptionTable& t) {
  t.group("run");
  t.add("model", &model, "HF checkpoint folder of the frozen base model (config.json + model.safetensors)");
  t.add("tokenizer", &tokenizer, "folder with vocab.json + merges.txt or tokenizer.json (default: the model folder)");
  t.add("data", &data, "dataset folder made by data_prep (manifest.json + shards)");
  t.add("run_dir", &run_dir, "output folder: config, metrics, results, adapters, checkpoints");
  t.add("tasks", &tasks, "tasks to train (default: every task of the dataset)");
  t.add("seed", &seed, "seed of the sampler and the initialisation");
  t.add("lock_heartbeat_s", &lock.heartbeat_s,
        "seconds between the writer's refreshes of run_dir/LOCK, the lock that keeps a second job out of the run "
        "folder (docs/checkpoints.md, \"One writer\")");
  t.add("lock_stale_s", &lock.stale_s,
        "a LOCK not refreshed for this many seconds is stale and taken over, whatever host holds it (>= 3 "
        "heartbeats; a holder on the same host is stale as soon as its process is gone)");
  t.add("init_adapter", &init_adapter,
        "an adapter folder (PEFT or bora format) that Theta and every task start from instead of the preset's "
        "initialisation; it must fit the adapter_* options (docs/adapters.md)");
  t.add_choice("device", &device, {"auto", "cpu", "cuda"}, "where the model runs (auto: cuda when available)");
  t.add_choice("dtype", &dtype, {"float32", "bfloat16", "float16"},
               "compute dtype of the frozen base; adapters, Theta, gradients, AdamW state and the loss stay "
               "float32 (float16: CUDA only; docs/architecture.md, \"Precision\")");
  t.add("threads", &threads, "intra-op threads per rank (0 = cores / ranks on the node)");
  t.add_choice("sampler", &sampler, {"global", "balanced"},
               "global: one minibatch drawn from all tasks, the same for any number of ranks; "
               "balanced: each rank draws batch_size/ranks from its own tasks (results depend on the partition)");
  t.group("batches");
  t.add("batch_size", &batch_size, "sequences per global minibatch (all ranks together)");
  t.add("micro_batch", &micro_batch, "sequences per forward/backward on a rank (gradient accumulation)");
  t.group("optimizer");
  t.add("epochs", &epochs,
        "the budget: at most this many passes over the training sequences (early stopping decides within it; "
        "raise it and resume to continue an unconverged run)");
  t.add("max_steps", &max_steps, "the budget in optimizer steps (> 0 overrides epochs)");
  t.add("lr", &lr, "learning rate (for tau = 0 and tau = inf, or when lr_per_tau is 0)");
  t.add("lr_per_tau", &lr_per_tau,
        "> 0: the paper's rule lr = tau * lr_per_tau for 0 < tau < inf (1e-5 there); 0: lr for every tau "
        "(docs/bora.md, \"The learning-rate rule\")");
  t.add("beta1", &beta1, "AdamW beta1");
  t.add("beta2", &beta2, "AdamW beta2");
  t.add("eps", &eps, "AdamW epsilon");
  t.add("weight_decay", &weight_decay, "AdamW decoupled weight decay");
  t.add_choice("lr_schedule", &lr_schedule, {"constant", "cosine"}, "learning-rate schedule after warmup");
  t.add("warmup_steps", &warmup_steps, "linear warmup steps");
  t.add("min_lr_ratio", &min_lr_ratio, "cosine floor as a fraction of lr");
  t.add("grad_clip", &grad_clip, "> 0: clip the global gradient norm (off in the reference)");
  t.group("evaluation");
  t.add("eval_every", &eval_every, "evaluate every N steps (0 = once per epoch)");
  t.add("patience", &patience, "early stopping: evaluations without a better validation NLL (0 = off)");
  t.add("converge_tol", &converge_tol,
        "a run that ends at its budget counts as converged if its best validation NLL fell by at most this "
        "(relative) over its last patience evaluations (docs/bora.md, \"Convergence\")");
  t.add("eval_batch", &eval_batch, "sequences per evaluation forward");
  t.add("eval_base", &eval_base, "evaluate before the first step too");
  t.add("log_every", &log_every, "log a metrics line every N steps");
  t.add("replica_check_every", &replica_check_every,
        "every N steps, check that Theta is bit-identical on every rank (a checksum all-gather; 0 = off)");
  t.add("export_adapters", &export_adapters, "write every task's final adapter into run_dir/adapters");
  bora.declare(t);
  adapter.declare(t);
  checkpoint.declare(t);
}

void TrainConfig::validate() const {
  BORA_CHECK(!model.empty(), ConfigError, "model is not set (an HF checkpoint folder)");
  BORA_CHECK(!data.empty(), ConfigError, "data is not set (a dataset folder made by data_prep)");
  BORA_CHECK(!run_dir.empty(), ConfigError, "run_dir is empty");
  BORA_CHECK(batch_size > 0, ConfigError, "batch_size must be > 0, got ", batch_size);
  BORA_CHECK(micro_batch > 0, ConfigError, "micro_batch must be > 0, got ", micro_batch);
  BORA_CHECK(epochs > 0 || max_steps > 0, ConfigError, "epochs or max_steps must be > 0");
  BORA_CHECK(max_steps >= 0, ConfigError, "max_steps must be >= 0, got ", max_steps);
  BORA_CHECK(lr > 0 && std::isfinite(lr), ConfigError, "lr must be > 0, got ", lr);
  BORA_CHECK(lr_per_tau >= 0 && std::isfinite(lr_per_tau), ConfigError, "lr_per_tau must be >= 0, got ", lr_per_tau);
  BORA_CHECK(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, ConfigError, "AdamW betas must be in [0, 1)");
  BORA_CHECK(eps > 0, ConfigError, "eps must be > 0, got ", eps);
  BORA_CHECK(weight_decay >= 0, ConfigError, "weight_decay must be >= 0, got ", weight_decay);
  BORA_CHECK(warmup_steps >= 0, ConfigError, "warmup_steps must be >= 0, got ", warmup_steps);
  BORA_CHECK(min_lr_ratio >= 0 && min_lr_ratio <= 1, ConfigError, "min_lr_ratio must be in [0, 1]");
  BORA_CHECK(grad_clip >= 0, ConfigError, "grad_clip must be >= 0, got ", grad_clip);
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
  BORA_CHECK(std::isfinite(effective_lr()), ConfigError, "the learning rate is not finite (tau = ", bora.tau,
             ", lr_per_tau = ", lr_per_tau, ")");
}

double TrainConfig::effective_lr() const {
  const double tau = bora.tau;
  if (lr_per_tau > 0 && tau > 0 && std::isfinite(tau)) return tau * lr_per_tau;
  return lr;
}

double TrainConfig::lr_at(int64_t step, int64_t total_steps) const {
  const double base = effective_lr();
  if (warmup_steps > 0 && step < warmup_steps) return base * double(step + 1) / double(warmup_steps);
  if (lr_schedule == "constant") return base;
  const double span = std::max<int64_t>(1, total_steps - warmup_steps);
  const double progress = std::min(1.0, double(step - warmup_steps) / span);
  const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
  return base * (min_lr_ratio + (1.0 - min_lr_ratio) * cosine);
}

}  // namespace bora
