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
//                      or [ sum_d of the likelihood gradients | scalars ]  (noncentered)
//                      or [ the shared adapter's gradient | scalars ]      (tau = inf)
//                      or [ sum_d theta_d after the step | scalars ]       (mean)
//              read the scalars (loss, NLL, tokens, non-finite flags, ...) to the
//                host: the step's only host synchronisation
//              AdamW on the rows, and on Theta (identically on every rank);
//                noncentered: every row then moves with Theta
//
// Tasks absent from a minibatch still move: R covers all of them every step. Each
// task's mean NLL is normalised by its target tokens in the GLOBAL minibatch, which
// this rank knows because all of a task's rows are on the rank that owns it — so
// micro-batching and the number of ranks change nothing but float summation order.
//
// The parts, each readable alone: train/task_plan.h (which tasks, on which rank,
// in which row), train/train_state.h (what a checkpoint holds, one table of tensor
// names for save and resume), train/results.h (results.json/md, the exported
// adapters), train/evaluator.h, train/batch.h, bora/prior.h, bora/sampler.h.
#pragma once

#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "adapters/bank.h"
#include "bora/sampler.h"
#include "checkpoint/checkpoint.h"
#include "data/dataset.h"
#include "dist/communicator.h"
#include "model/causal_lm.h"
#include "core/progress.h"
#include "train/adamw.h"
#include "train/batch.h"
#include "train/evaluator.h"
#include "train/prune.h"
#include "train/run_folder.h"
#include "train/task_plan.h"
#include "train/train_config.h"
#include "train/train_state.h"

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
  // Loads the base onto `device` (World::select_device), the dataset (this rank's
  // shards only), builds the adapters of this rank's tasks and initialises them, or
  // loads them from a checkpoint (checkpoint.resume; see checkpoint/checkpoint.h).
  Trainer(TrainConfig config, std::string resolved_ini, Communicator& comm, torch::Device device);
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

  // State, for tests.
  const TrainConfig& config() const { return cfg_; }
  const TaskPlan& plan() const { return *plan_; }
  const std::vector<std::string>& task_names() const { return plan_->names(); }
  // Run-task indices owned by this rank, in slot (bank-row) order.
  const std::vector<int64_t>& local_tasks() const { return plan_->local_tasks(); }
  AdapterBank& bank() { return *bank_; }
  CausalLM& model() { return *model_; }
  // Theta [P] (undefined at tau = inf).
  torch::Tensor theta() const { return theta_; }
  int64_t global_step() const { return state_.step; }
  const EarlyStop& early_stop() const { return state_.early; }
  AdamW& rows_optimizer() { return *rows_opt_; }
  AdamW* theta_optimizer() { return theta_opt_.get(); }
  // The rung at which pruning stopped this run (0: it was not pruned).
  int64_t pruned_at_rung() const { return pruned_rung_; }
  // The checkpoint this run resumed from ("" for a fresh start).
  const std::string& resumed_from() const { return resumed_from_; }

 private:
  void load_model_and_data(torch::Device device);
  void init_adapters();
  void make_sampler();
  // Loads the checkpoint that checkpoint.resume names, if any.
  void resume();
  OrderedJson checkpoint_meta() const;
  void check_resumable(const Json& meta) const;
  TrainTensors tensors() const { return {bank_->rows(), rows_opt_.get(), theta_, theta_opt_.get(), &state_.early}; }

  // The parts of step(), in its order.
  std::vector<RowRef> local_rows(int64_t step);
  struct Likelihood;
  Likelihood likelihood(const std::vector<RowRef>& rows, torch::Tensor& buffer, StepStats& st);
  void add_prior(torch::Tensor& buffer);
  void share_host_scalars(torch::Tensor& buffer, int64_t tokens, int64_t sequences);
  void read_scalars(torch::Tensor& buffer, StepStats& st, const Likelihood& l);
  // Scales the rows' and Theta's gradients to a global norm of at most grad_clip;
  // rows_sq: the squared norm of the rows' gradient over all ranks (a device scalar).
  void clip_gradients(const torch::Tensor& rows_sq, torch::Tensor& theta_grad);
  // The NumericError of a step whose loss is not finite somewhere (collective).
  [[noreturn]] void throw_non_finite_loss(const Likelihood& l);
  // DistError unless the replicated state (Theta, or the shared adapter) is
  // bit-identical on every rank.
  void check_replicas();

  void evaluate_and_track();
  // prune = asha, at an evaluation that is a rung: reports to the leaderboard (rank
  // 0) and shares its verdict; true when this run stops here.
  bool pruned_at(int64_t step);
  void finish();
  void log_step(const StepStats& s);

  TrainConfig cfg_;
  std::string resolved_ini_;
  Communicator& comm_;
  std::unique_ptr<RunFolder> run_;
  std::unique_ptr<TaskPlan> plan_;
  std::shared_ptr<CausalLM> model_;
  std::unique_ptr<DatasetReader> reader_;
  std::unique_ptr<BatchBuilder> builder_;
  std::unique_ptr<Evaluator> evaluator_;
  std::unique_ptr<AdapterBank> bank_;
  std::unique_ptr<GlobalSampler> sampler_;
  std::unique_ptr<AdamW> rows_opt_, theta_opt_;
  std::unique_ptr<Checkpointer> checkpointer_;
  torch::Tensor theta_;
  TrainState state_;
  Stopwatch life_;                      // since this process started the run
  double rank_seconds_before_ = 0;      // the checkpoint's, at resume
  int64_t eval_every_ = 0;              // steps between evaluations: one rung
  std::unique_ptr<Leaderboard> board_;  // rank 0, prune = asha
  std::string board_name_;              // this run on the board: its folder's name (tau_<tau>)
  int64_t pruned_rung_ = 0;             // > 0: pruned there, at step pruned_rung_ * eval_every_
  int64_t total_steps_ = 0;
  std::string manifest_hash_;      // XXH3 of the dataset's manifest.json, read once
  std::string resumed_from_;
  std::string last_checkpoint_;    // named in NaN errors
  int64_t last_checkpoint_step_ = -1;
};

}  // namespace bora
