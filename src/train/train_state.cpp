#include "train/train_state.h"

#include "checkpoint/checkpoint.h"

namespace bora {
namespace {

// Per-task evaluation sums (the summary is recomputed on load).
OrderedJson eval_sums_json(const EvalSummary& s) {
  OrderedJson a = OrderedJson::array();
  for (const auto& t : s.tasks) a.push_back(OrderedJson{{"nll_sum", t.nll_sum}, {"tokens", t.tokens}});
  return a;
}

EvalSummary eval_sums_from_json(const Json& a) {
  std::vector<TaskEval> tasks;
  for (const auto& e : a) tasks.push_back({e.at("nll_sum").get<double>(), e.at("tokens").get<int64_t>()});
  return tasks.empty() ? EvalSummary{} : summarize(std::move(tasks));
}

OrderedJson finite_or_null(double v) { return std::isfinite(v) ? OrderedJson(v) : OrderedJson(nullptr); }

}  // namespace

void TrainState::to_meta(OrderedJson& meta) const {
  OrderedJson history = OrderedJson::array();
  for (const auto& [s, nll] : early.history) history.push_back({s, finite_or_null(nll)});
  meta["early_stop"] = {{"best_nll", finite_or_null(early.best_nll)},
                        {"best_step", early.best_step},
                        {"bad_evals", early.bad_evals},
                        {"stopped", early.stopped},
                        {"history", history}};
  meta["base_validation"] = eval_sums_json(base_val);
  meta["best_validation"] = eval_sums_json(best_val);
  meta["train_seconds"] = train_seconds;
  meta["rank_seconds"] = rank_seconds;
  meta["train_tokens"] = train_tokens;
}

void TrainState::from_meta(const Json& m) {
  step = m.at("step").get<int64_t>();
  const Json& es = m.at("early_stop");
  early.best_nll = es.at("best_nll").is_null() ? INFINITY : es.at("best_nll").get<double>();
  early.best_step = es.at("best_step").get<int64_t>();
  early.bad_evals = es.at("bad_evals").get<int64_t>();
  early.stopped = es.at("stopped").get<bool>();
  early.history.clear();
  for (const auto& h : es.value("history", Json::array()))  // absent in checkpoints before convergence reports
    early.history.emplace_back(h.at(0).get<int64_t>(), h.at(1).is_null() ? INFINITY : h.at(1).get<double>());
  base_val = eval_sums_from_json(m.at("base_validation"));
  best_val = eval_sums_from_json(m.at("best_validation"));
  train_seconds = m.at("train_seconds").get<double>();
  rank_seconds = m.value("rank_seconds", 0.0);  // absent before pruned sweeps
  train_tokens = m.at("train_tokens").get<int64_t>();
}

std::string StateTensor::stored_name() const {
  return task.empty() ? checkpoint_shared_tensor(key) : checkpoint_task_tensor(task, key);
}

std::vector<StateTensor> state_tensors(const TaskPlan& plan, bool one_shared_row, const TrainTensors& t,
                                       bool with_shared) {
  std::vector<StateTensor> out;
  // A parameter's value, AdamW moments and early stopping's best copy; row < 0 is
  // the whole (1-D) tensor.
  auto add = [&out](const std::string& task, const torch::Tensor& param, const AdamW* opt, const torch::Tensor& best,
                    int64_t row) {
    auto pick = [row](const torch::Tensor& x) { return row < 0 ? x : x[row]; };
    out.push_back({task, "theta", pick(param)});
    if (opt) {
      out.push_back({task, "exp_avg", pick(opt->exp_avg())});
      out.push_back({task, "exp_avg_sq", pick(opt->exp_avg_sq())});
    }
    out.push_back({task, "best", pick(best)});
  };
  if (!one_shared_row)
    for (int64_t slot = 0; slot < plan.num_local(); ++slot)
      add(plan.name(plan.task_of_slot(slot)), t.rows, t.rows_opt, t.early->best_rows, plan.bank_row(slot));
  if (with_shared) {
    if (one_shared_row) add("", t.rows, t.rows_opt, t.early->best_rows, 0);
    else add("", t.theta, t.theta_opt, t.early->best_theta, -1);
  }
  return out;
}

}  // namespace bora
