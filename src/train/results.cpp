#include "train/results.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include "adapters/export.h"
#include "core/error.h"
#include "core/options.h"

namespace bora {

OrderedJson summary_json(const EvalSummary& s) {
  return OrderedJson{{"macro_ppl", s.macro_ppl()}, {"micro_ppl", s.micro_ppl()},
                     {"macro_nll", s.macro_nll}, {"micro_nll", s.micro_nll}};
}

void write_results(const RunFolder& run, const TrainConfig& config, const TaskPlan& plan, const TrainState& state,
                   const RunOutcome& outcome) {
  if (!run.writer()) return;
  const EvalSummary &best = state.best_val, &base = state.base_val, &test = outcome.test;
  const Convergence& conv = outcome.convergence;
  const double tau = config.bora.tau;
  OrderedJson tasks = OrderedJson::array();
  for (int64_t t = 0; t < plan.num_tasks(); ++t) {
    OrderedJson e = {{"name", plan.name(t)},
                     {"train_documents", plan.train_documents(t)},
                     {"train_target_tokens", plan.train_targets(t)},
                     {"validation_ppl", best.tasks[size_t(t)].ppl()},
                     {"test_ppl", test.tasks[size_t(t)].ppl()},
                     {"validation_tokens", best.tasks[size_t(t)].tokens},
                     {"test_tokens", test.tasks[size_t(t)].tokens},
                     {"distance_to_theta", outcome.distances[size_t(t)]}};
    if (!base.tasks.empty()) e["base_validation_ppl"] = base.tasks[size_t(t)].ppl();
    tasks.push_back(e);
  }
  OrderedJson r = {{"tau", std::isinf(tau) ? OrderedJson("inf") : OrderedJson(tau)},
                   {"lr", config.effective_lr()},
                   {"prior", name_of(kPriorNames, config.bora.prior)},
                   {"adapter", outcome.adapter},
                   {"ranks", plan.world()},
                   {"steps", state.step},
                   {"best_step", state.early.best_step},
                   {"stopped_early", state.early.stopped},
                   {"converged", conv.converged},
                   {"convergence",
                    {{"reason", conv.reason},
                     {"evaluations", conv.evaluations},
                     {"evaluations_since_best", conv.evals_since_best},
                     {"recent_relative_drop",
                      std::isfinite(conv.recent_drop) ? OrderedJson(conv.recent_drop) : OrderedJson(nullptr)},
                     {"patience", config.patience},
                     {"tolerance", config.converge_tol}}},
                   {"budget",
                    {{"epochs", config.epochs},
                     {"max_steps", config.max_steps},
                     {"total_steps", outcome.total_steps},
                     {"steps_per_epoch", plan.steps_per_epoch(config.batch_size)}}},
                   {"lr_rule", config.lr_per_tau > 0 ? "tau * lr_per_tau" : "constant"},
                   {"pruned", outcome.pruned_rung > 0
                                  ? OrderedJson{{"rung", outcome.pruned_rung},
                                                {"step", outcome.pruned_step},
                                                {"eta", config.prune.eta}}
                                  : OrderedJson(nullptr)},
                   {"train_seconds", state.train_seconds},
                   {"rank_seconds", state.rank_seconds},
                   {"train_tokens", state.train_tokens},
                   {"tokens_per_s", state.train_seconds > 0 ? double(state.train_tokens) / state.train_seconds : 0.0},
                   {"validation", summary_json(best)},
                   {"test", summary_json(test)}};
  if (!base.tasks.empty()) r["base_validation"] = summary_json(base);
  r["tasks"] = tasks;
  run.write_json("results.json", r);

  std::string md = cat("# BoRA results: tau = ", std::isinf(tau) ? "inf" : format_double(tau), ", lr = ",
                       format_double(config.effective_lr()), "\n\n", "Adapter: ", outcome.adapter,
                       ". Best step ", state.early.best_step, " of ", state.step, ". Perplexities at the best step.\n\n",
                       conv.converged ? "Converged: " : "**Not converged**: ", conv.reason,
                       conv.converged ? ".\n\n" : "; these are the figures of an unfinished run.\n\n",
                       "| task | train docs | train tokens | base val ppl | val ppl | test ppl | ‖θ_d − Θ‖ |\n",
                       "|---|---:|---:|---:|---:|---:|---:|\n");
  char buf[512];
  for (int64_t t = 0; t < plan.num_tasks(); ++t) {
    std::snprintf(buf, sizeof buf, "| %s | %lld | %lld | %.2f | %.2f | %.2f | %.4f |\n", plan.name(t).c_str(),
                  static_cast<long long>(plan.train_documents(t)), static_cast<long long>(plan.train_targets(t)),
                  base.tasks.empty() ? NAN : base.tasks[size_t(t)].ppl(), best.tasks[size_t(t)].ppl(),
                  test.tasks[size_t(t)].ppl(), outcome.distances[size_t(t)]);
    md += buf;
  }
  std::snprintf(buf, sizeof buf, "| **overall (macro)** | | | %.2f | %.2f | %.2f | |\n| overall (micro) | | | %.2f | %.2f | %.2f | |\n",
                base.tasks.empty() ? NAN : base.macro_ppl(), best.macro_ppl(), test.macro_ppl(),
                base.tasks.empty() ? NAN : base.micro_ppl(), best.micro_ppl(), test.micro_ppl());
  md += buf;
  run.write_text("results.md", md);
}

void export_adapters(Communicator& comm, const RunFolder& run, const TaskPlan& plan, const AdapterBank& bank,
                     const CausalLM& model, const torch::Tensor& theta, const std::string& model_dir) {
  // Rows travel to rank 0, which alone writes the run folder.
  const bool unified = !theta.defined();
  const int64_t P = bank.row_size();
  std::string mine;
  if (!unified || comm.rank() == 0) {
    torch::Tensor rows = bank.rows().to(torch::kCPU).contiguous();
    for (int64_t slot = 0; slot < (unified ? 1 : plan.num_local()); ++slot) {
      const int64_t t = unified ? -1 : plan.task_of_slot(slot);
      mine.append(reinterpret_cast<const char*>(&t), 8);
      mine.append(reinterpret_cast<const char*>(rows[slot].data_ptr<float>()), size_t(P) * 4);
    }
  }
  std::vector<std::string> parts = comm.gather_bytes(mine, 0);
  if (comm.rank() != 0) return;
  run.verify_lock("export the adapters");
  AdapterBank out(bank.spec(), model.shape(), unified ? 1 : plan.num_tasks() + 1, torch::kCPU);
  torch::NoGradGuard g;
  for (const auto& part : parts)
    for (size_t off = 0; off + 8 <= part.size(); off += 8 + size_t(P) * 4) {
      int64_t t;
      std::memcpy(&t, part.data() + off, 8);
      std::memcpy(out.rows()[t < 0 ? 0 : t].data_ptr<float>(), part.data() + off + 8, size_t(P) * 4);
    }
  const std::string base_name = peft_base_model_name(model_dir);
  auto write = [&](int64_t row, const std::string& dir) {
    const AdapterSpec& s = out.spec();
    // PEFT's format where PEFT can read it; bora's own for the tied family (or a
    // lora preset that trains u or v as well).
    if (s.preset == "lora" && is_plain_lora(s)) export_peft(out, model, row, dir, base_name);
    else export_adapter(out, row, dir);
  };
  if (unified) {
    write(0, run.path("adapters/shared"));
  } else {
    for (int64_t t = 0; t < plan.num_tasks(); ++t) write(t, run.path("adapters/" + plan.name(t)));
    out.rows()[plan.num_tasks()].copy_(theta.cpu());
    export_adapter(out, plan.num_tasks(), run.path("theta"));
  }
}

}  // namespace bora
