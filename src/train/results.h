// A finished run's outputs in its folder (rank 0 writes, train/run_folder.h):
//   results.json, results.md   per-task and overall perplexities at the best step,
//                              ||theta_d - Theta||, convergence, budget and timing
//   adapters/<task>/, theta/   the final adapters (PEFT for plain LoRA, bora's
//                              format otherwise), adapters/shared/ at tau = inf
#pragma once

#include <string>
#include <vector>

#include "adapters/bank.h"
#include "model/causal_lm.h"
#include "train/convergence.h"
#include "train/run_folder.h"
#include "train/task_plan.h"
#include "train/train_config.h"
#include "train/train_state.h"

namespace bora {

// What the end of training adds to the state: the test split at the best step, each
// task's distance to Theta there, and the convergence verdict.
struct RunOutcome {
  EvalSummary test;
  std::vector<double> distances;  // ||theta_d - Theta|| by task (0 at tau = inf)
  Convergence convergence;
  int64_t total_steps = 0;        // the budget
  std::string adapter;            // AdapterSpec::describe()
  int64_t pruned_rung = 0;        // > 0: pruned there (train/prune.h)
  int64_t pruned_step = 0;
};

// {macro_ppl, micro_ppl, macro_nll, micro_nll}: a summary as results.json and
// metrics.jsonl write it.
OrderedJson summary_json(const EvalSummary& s);

// results.json and results.md (rank 0).
void write_results(const RunFolder& run, const TrainConfig& config, const TaskPlan& plan, const TrainState& state,
                   const RunOutcome& outcome);

// Collective: the rows travel to rank 0, which writes every task's final adapter
// and Theta into the run folder.
void export_adapters(Communicator& comm, const RunFolder& run, const TaskPlan& plan, const AdapterBank& bank,
                     const CausalLM& model, const torch::Tensor& theta, const std::string& model_dir);

}  // namespace bora
