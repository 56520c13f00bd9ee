// What a checkpoint holds of a run, apart from its configuration: the step, early
// stopping's record, the evaluation sums, time and tokens so far (TrainState, in
// meta.json), and the tensors of the adapters, Theta and AdamW, named by ONE table
// (state_tensors) that both the save and the resume go through, so that the two
// cannot drift apart:
//
//   tasks/<task>/{theta, exp_avg, exp_avg_sq, best}   each local task's row (tau < inf)
//   shared/{theta, exp_avg, exp_avg_sq, best}        Theta, or the one shared adapter
//                                                    at tau = inf (exp_avg*: only with
//                                                    an optimizer, i.e. not theta_update
//                                                    = mean)
#pragma once

#include <torch/types.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/json.h"
#include "train/adamw.h"
#include "train/evaluator.h"
#include "train/task_plan.h"

namespace bora {

struct EarlyStop {
  double best_nll = INFINITY;
  int64_t best_step = 0;
  int64_t bad_evals = 0;  // evaluations since the best, counted with early stopping off too
  bool stopped = false;    // exhausted(patience) at the last evaluation, or at resume
  bool exhausted(int64_t patience) const { return patience > 0 && bad_evals >= patience; }
  torch::Tensor best_rows, best_theta;  // copies at best_step
  std::vector<std::pair<int64_t, double>> history;  // (step, macro validation NLL) per evaluation
};

struct TrainState {
  int64_t step = 0;  // optimizer steps done
  EarlyStop early;
  EvalSummary base_val, best_val;
  double train_seconds = 0;
  // Wall-clock seconds x ranks of every process of the run, start-up, evaluations and
  // checkpoints included, summed over resumes up to the last checkpoint: the
  // compute a sweep spends (bora-report). Time after the last checkpoint of a
  // preempted process is not counted.
  double rank_seconds = 0;
  int64_t train_tokens = 0;

  // Writes the state's fields of meta.json ("early_stop", "base_validation",
  // "best_validation", "train_seconds", "rank_seconds", "train_tokens"; the trainer writes "step"
  // with the run's identity); reads all of them back, "step" included.
  void to_meta(OrderedJson& meta) const;
  void from_meta(const Json& meta);
};

// The trainable tensors of one rank and their optimizer state.
struct TrainTensors {
  torch::Tensor rows;   // the bank's rows [R, P]
  const AdamW* rows_opt = nullptr;
  torch::Tensor theta;  // Theta [P]; undefined at tau = inf
  const AdamW* theta_opt = nullptr;  // null with theta_update = mean
  const EarlyStop* early = nullptr;  // best_rows / best_theta
};

// One stored tensor: `task` ("" for shared/) and `key` name it; `tensor` is a view of
// the live state, written from on save and read into on resume.
struct StateTensor {
  std::string task, key;
  torch::Tensor tensor;
  std::string stored_name() const;  // tasks/<task>/<key> or shared/<key> (checkpoint/checkpoint.h)
};

// This rank's tensors of a checkpoint: its tasks' rows (none at tau = inf, where
// the one row is shared/), and shared/ when `with_shared` (rank 0 writes it; every
// rank reads it).
std::vector<StateTensor> state_tensors(const TaskPlan& plan, bool one_shared_row, const TrainTensors& t,
                                       bool with_shared);

}  // namespace bora
