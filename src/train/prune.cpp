#include "train/prune.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"

namespace bora {

void PruneConfig::declare(OptionTable& t) {
  t.group("pruning (a tau sweep; docs/bora.md, \"Pruned sweeps\")");
  t.add_choice("prune", &kind, kPruneNames,
               "asha: report the validation perplexity at every evaluation (a rung) to the sweep folder's "
               "leaderboard.json and stop when not in the best 1/prune_eta of the runs at that rung; none: train to "
               "the end (a pruned run resumed with none ends as if never pruned)")
      .resume_safe();
  t.add("prune_eta", &eta, "pruning keeps the best ceil(n / eta) of the n runs that have reached a rung (>= 2)")
      .resume_safe();
  t.add("prune_min_rungs", &min_rungs,
        "the first rung (evaluation) at which a run may be pruned; earlier rungs are only recorded (>= 1)")
      .resume_safe();
}

void PruneConfig::validate() const {
  BORA_CHECK(eta >= 2, ConfigError, "prune_eta must be >= 2 (keep the best 1/eta of the runs at a rung), got ", eta);
  BORA_CHECK(min_rungs >= 1, ConfigError, "prune_min_rungs must be >= 1 (rung 1 is the first evaluation), got ",
             min_rungs);
}

void PruneConfig::check_rungs(int64_t steps_per_rung, int64_t total_steps) const {
  if (!on()) return;
  BORA_CHECK(min_rungs * steps_per_rung <= total_steps, ConfigError, "prune_min_rungs = ", min_rungs,
             " is the evaluation at step ", min_rungs * steps_per_rung, ", past this run's end at step ", total_steps,
             " (", total_steps / steps_per_rung, " rungs of ", steps_per_rung,
             " steps): lower prune_min_rungs or eval_every, or prune = none");
}

RungVerdict judge_rung(std::vector<std::pair<std::string, double>> reached, const std::string& run, int64_t eta) {
  std::sort(reached.begin(), reached.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second < b.second : a.first < b.first;
  });
  RungVerdict v;
  v.judged = true;
  v.reached = static_cast<int64_t>(reached.size());
  v.kept = std::max<int64_t>(1, (v.reached + eta - 1) / eta);
  const auto it = std::find_if(reached.begin(), reached.end(), [&](const auto& e) { return e.first == run; });
  BORA_CHECK(it != reached.end(), InternalError, "judge_rung: run ", run, " is not among the runs of its rung");
  v.place = static_cast<int64_t>(it - reached.begin()) + 1;
  v.keep = v.place <= v.kept;
  return v;
}

Leaderboard::Leaderboard(std::string sweep_dir, BoardIdentity identity, RunLockOptions lock)
    : dir_(std::move(sweep_dir)), path_(dir_ + "/" + kFile), id_(std::move(identity)), lock_(lock) {
  lock_.name = "leaderboard.lock";
  lock_.what = "the leaderboard of sweep folder";
  lock_.dying_grace_s = 0;
  // Writers hold it for milliseconds; a minute of contention means a stuck file system.
  lock_.wait_s = 60;
}

Json Leaderboard::load() const {
  if (!std::filesystem::exists(path_))
    return Json{{"format", "bora-leaderboard"}, {"version", 1}, {"dataset", id_.dataset},
                {"steps_per_rung", id_.steps_per_rung}, {"runs", Json::object()}};
  Json b = read_json_file(path_);
  BORA_CHECK(b.is_object() && b.value("format", std::string()) == "bora-leaderboard", FormatError, path_,
             " is not a bora leaderboard (no \"format\": \"bora-leaderboard\")");
  BORA_CHECK(b.value("version", 0) == 1, FormatError, path_, " has leaderboard version ", b.value("version", 0),
             "; this bora reads version 1");
  BORA_CHECK(b.contains("runs") && b["runs"].is_object(), FormatError, path_, " has no \"runs\" object");
  const std::string dataset = b.value("dataset", std::string());
  BORA_CHECK(dataset == id_.dataset, ConfigError, "sweep folder ", dir_,
             " holds the leaderboard of another dataset (manifest hash ", dataset, "; this run's data has ",
             id_.dataset, "): runs compared at a rung must train on the same data; give this sweep its own folder");
  const int64_t spr = b.value("steps_per_rung", int64_t(0));
  BORA_CHECK(spr == id_.steps_per_rung, ConfigError, "sweep folder ", dir_, "'s leaderboard has a rung every ", spr,
             " steps, this run every ", id_.steps_per_rung,
             " (eval_every): runs are compared at equal steps; use the sweep's eval_every or another folder");
  return b;
}

int64_t Leaderboard::pruned_at(const std::string& run) const {
  const Json b = load();
  const auto r = b["runs"].find(run);
  if (r == b["runs"].end() || !r->contains("pruned") || (*r)["pruned"].is_null()) return 0;
  return (*r)["pruned"].value("rung", int64_t(0));
}

RungVerdict Leaderboard::report(const std::string& run, double tau, int ranks, int64_t rung, int64_t step, double ppl,
                                const PruneConfig& prune) {
  RunLock lock(dir_, lock_);
  Json b = load();
  Json& me = b["runs"][run];
  me["tau"] = std::isinf(tau) ? Json("inf") : Json(tau);
  me["ranks"] = ranks;
  me["rungs"][std::to_string(rung)] = Json{{"step", step}, {"ppl", ppl}};
  if (!me.contains("pruned")) me["pruned"] = nullptr;
  RungVerdict v;
  if (rung >= prune.min_rungs) {
    std::vector<std::pair<std::string, double>> reached;
    for (const auto& [name, r] : b["runs"].items()) {
      const auto at = r["rungs"].find(std::to_string(rung));
      if (at != r["rungs"].end()) reached.emplace_back(name, (*at)["ppl"].get<double>());
    }
    v = judge_rung(std::move(reached), run, prune.eta);
    if (!v.keep) me["pruned"] = Json{{"rung", rung}, {"step", step}, {"place", v.place}, {"reached", v.reached}};
  }
  const std::string tmp = temp_path_for(path_);
  write_file_synced(tmp, b.dump(1) + "\n");
  if (before_rename) before_rename();
  lock.verify("update " + path_);
  rename_durable(tmp, path_);
  return v;
}

}  // namespace bora
