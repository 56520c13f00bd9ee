// Per-task negative log-likelihood of a split, and the perplexities users compare.
//
//   per-task perplexity  exp(mean NLL over the task's target tokens of the split)
//   macro (overall)      exp(mean over tasks of the per-task mean NLL)   (the paper's)
//   micro                exp(total NLL / total target tokens)            (token-weighted)
//
// Each rank evaluates its own tasks (in micro-batches that mix tasks through the
// adapter bank); gather_task_evals() assembles every task's sums on every rank.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "adapters/bank.h"
#include "data/dataset.h"
#include "dist/communicator.h"
#include "model/causal_lm.h"

namespace bora {

struct TaskEval {
  double nll_sum = 0;  // summed over target tokens, in float64
  int64_t tokens = 0;
  double nll() const { return tokens ? nll_sum / double(tokens) : NAN; }
  double ppl() const { return std::exp(nll()); }
};

struct EvalSummary {
  std::vector<TaskEval> tasks;  // by run task index
  double macro_nll = NAN, micro_nll = NAN;
  double macro_ppl() const { return std::exp(macro_nll); }
  double micro_ppl() const { return std::exp(micro_nll); }
};
EvalSummary summarize(std::vector<TaskEval> tasks);

class Evaluator {
 public:
  // tasks[i]: manifest index of local task i; bank_rows[i]: its adapter row.
  Evaluator(CausalLM& model, DatasetReader& reader, std::vector<int64_t> tasks,
            std::vector<int64_t> bank_rows, int64_t batch_rows, int64_t pad_id, bool drop_prompt = false);
  // Sums per local task; bank == nullptr evaluates the base model alone.
  std::vector<TaskEval> run(const AdapterBank* bank, Split split);

 private:
  CausalLM& model_;
  DatasetReader& reader_;
  std::vector<int64_t> tasks_, bank_rows_;
  int64_t batch_rows_, pad_id_;
  bool drop_prompt_;
};

// Every rank's local sums -> all tasks (by run index) on every rank.
std::vector<TaskEval> gather_task_evals(Communicator& comm, const std::vector<int64_t>& local_run_index,
                                        const std::vector<TaskEval>& local, int64_t num_tasks);

}  // namespace bora
