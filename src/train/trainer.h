// The BoRA trainer of one rank. A rank owns a subset of the tasks (all of them when
// it runs alone); the only coupling between tasks is Theta, and the only collective
// per optimizer step is ONE all-reduce of a flat float64 buffer:
//
//   per step   sampler -> the global minibatch (the same on every rank)
//              keep the rows of this rank's tasks, grouped by task
//              micro-batches: forward through the frozen base with the adapter bank,
//                weighted NLL  sum_d w_d * mean-NLL_d  backward into the bank's rows
//              prior R over this rank's tasks: closed-form gradients
//              all-reduce [ Theta's gradient | the step's scalars ]       (adam)
//                      or [ the shared adapter's gradient | scalars ]      (tau = inf)
//                      or [ sum_d theta_d after the step | scalars ]       (mean)
//              read the scalars (loss, NLL, tokens, non-finite flags, ...) to the
//                host: the step's only host synchronisation
//              AdamW on the rows, and on Theta (identically on every rank)
//
// Tasks absent from a minibatch still move: R covers all of them every step. Each
// task's mean NLL is normalised by its target tokens in the GLOBAL minibatch, which
// this rank knows because all of a task's rows are on the rank that owns it — so
// micro-batching and the number of ranks change nothing but float summation order.
#pragma once

#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "adapters/bank.h"
#include "bora/prior.h"
#include "bora/sampler.h"
#include "data/dataset.h"
#include "dist/communicator.h"
#include "model/causal_lm.h"
#include "train/adamw.h"
#include "train/batch.h"
#include "checkpoint/checkpoint.h"
#include "train/convergence.h"
#include "train/evaluator.h"
#include "train/run_folder.h"
#include "train/train_config.h"

namespace bora {

struct StepStats {
  int64_t step = 0;         // the step just taken (1-based count of steps done)
  double loss = 0;          // sum_d w_d NLL_d + R, over all ranks
  double nll = 0;           // token-mean NLL of the global minibatch
  double prior = 0;         // R over all tasks
  double lr = 0;
  int64_t tokens = 0;       // target tokens in the global minibatch
  int64_t sequences = 0;
  int64_t local_sequences = 0;  // this rank's part of `sequences` (its sampler share)
  double seconds = 0, data_s = 0, compute_s = 0, allreduce_s = 0, optimizer_s = 0;
  double cpu_s = 0;           // CPU time of the whole process (all threads) during the step
  // Shared in the step's all-reduce, so that every rank decides alike:
  bool stop = false;          // some rank got SIGTERM/SIGUSR1: checkpoint and exit
  bool checkpoint_due = false;  // rank 0's clock says checkpoint_minutes have passed
};

class Trainer {
 public:
  // Loads the base, the dataset (this rank's shards only), builds the adapters of
  // this rank's tasks and initialises them, or loads them from a checkpoint
  // (checkpoint.resume; see checkpoint/checkpoint.h).
  Trainer(TrainConfig config, std::string resolved_ini, Communicator& comm);
  ~Trainer();

  // Trains until max steps or early stopping, evaluates the best adapters on the
  // validation and test splits, and (rank 0) writes the run folder's outputs.
  // Checkpoints every checkpoint_every steps / checkpoint_minutes and at the end.
  // Returns false when it stopped for SIGTERM/SIGUSR1 after writing a checkpoint
  // (the tool then exits with kExitPreempted).
  bool run();
  // Collective: writes a checkpoint of the current state; returns its folder.
  std::string save_checkpoint();

  StepStats step();
  // Every task's figures on every rank.
  EvalSummary evaluate(Split split);

  // State, for tests and checkpoints.
  const TrainConfig& config() const { return cfg_; }
  const std::vector<std::string>& task_names() const { return task_names_; }
  int64_t num_tasks() const { return static_cast<int64_t>(task_names_.size()); }
  // Run-task indices owned by this rank, in bank-row order.
  const std::vector<int64_t>& local_tasks() const { return local_; }
  const std::vector<int>& owners() const { return owner_; }
  AdapterBank& bank() { return *bank_; }
  CausalLM& model() { return *model_; }
  Communicator& comm() { return comm_; }
  // Theta [P] (undefined at tau = inf).
  torch::Tensor theta() const { return theta_; }
  // The adapter row of a local task (the shared row at tau = inf).
  torch::Tensor task_row(int64_t local_index) const;
  int64_t global_step() const { return step_; }
  int64_t total_steps() const { return total_steps_; }
  int64_t steps_per_epoch() const { return sampler_->steps_per_epoch(); }
  const EvalSummary& best_validation() const { return best_val_; }

  // Optimizer and early-stopping state (for checkpoints).
  AdamW& rows_optimizer() { return *rows_opt_; }
  AdamW* theta_optimizer() { return theta_opt_.get(); }
  struct EarlyStop {
    double best_nll = INFINITY;
    int64_t best_step = 0;
    int64_t bad_evals = 0;
    bool stopped = false;
    torch::Tensor best_rows, best_theta;  // copies at best_step
    std::vector<std::pair<int64_t, double>> history;  // (step, macro validation NLL) per evaluation
  };
  EarlyStop& early_stop() { return early_; }
  void set_global_step(int64_t s) { step_ = s; }
  // The checkpoint this run resumed from ("" for a fresh start).
  const std::string& resumed_from() const { return resumed_from_; }

 private:
  void setup_tasks();
  void setup_model_and_data();
  void init_adapters();
  // Loads the checkpoint that checkpoint.resume names, if any.
  void resume();
  OrderedJson checkpoint_meta() const;
  void check_resumable(const Json& meta) const;
  // Rows of this rank's tasks in the global batch of `step`, grouped by task.
  std::vector<RowRef> local_rows(int64_t step);
  void evaluate_and_track();
  void finish();
  int64_t global_steps_per_epoch() const;
  void write_results();
  void export_adapters();
  void log_step(const StepStats& s);
  // Scales the rows' and Theta's gradients to a global norm of at most grad_clip;
  // rows_sq: the squared norm of the rows' gradient over all ranks (a device scalar).
  void clip_gradients(const torch::Tensor& rows_sq, torch::Tensor& theta_grad);
  // The NumericError of a step whose loss is not finite somewhere (collective).
  [[noreturn]] void throw_non_finite_loss(const std::vector<std::vector<RowRef>>& chunks,
                                          const std::vector<torch::Tensor>& chunk_nll);
  // DistError unless the replicated state (Theta, or the shared adapter) is
  // bit-identical on every rank.
  void check_replicas();

  TrainConfig cfg_;
  std::string resolved_ini_;
  Communicator& comm_;
  std::unique_ptr<RunFolder> run_;
  std::shared_ptr<CausalLM> model_;
  std::unique_ptr<DatasetReader> reader_;
  std::unique_ptr<BatchBuilder> builder_;
  std::unique_ptr<Evaluator> evaluator_;
  std::unique_ptr<AdapterBank> bank_;
  std::unique_ptr<GlobalSampler> sampler_;
  std::unique_ptr<AdamW> rows_opt_, theta_opt_;
  std::unique_ptr<Checkpointer> checkpointer_;
  std::string resumed_from_;
  std::string manifest_hash_;  // XXH3 of the dataset's manifest.json, read once
  int64_t last_checkpoint_step_ = -1;
  torch::Tensor theta_;
  PriorKind prior_kind_ = PriorKind::Gaussian;

  std::vector<std::string> task_names_;    // the run's tasks, in manifest order
  std::vector<int64_t> manifest_index_;    // run task -> manifest task
  std::vector<int64_t> train_docs_, train_targets_;
  std::vector<double> weight_;             // w_d by run task
  std::vector<int> owner_;                 // run task -> rank
  std::vector<int64_t> local_;             // bank row -> run task
  std::vector<int64_t> local_of_;          // run task -> bank row, or -1
  int64_t pad_id_ = 1;
  int64_t step_ = 0, total_steps_ = 0;
  EarlyStop early_;
  EvalSummary base_val_, best_val_, final_test_;
  std::vector<double> distances_;  // ||theta_d - Theta|| at the best step, by run task
  Convergence convergence_;        // assessed when training ends
  std::string last_checkpoint_;    // named in NaN errors
  double train_seconds_ = 0;
  int64_t train_tokens_ = 0;
};

}  // namespace bora
