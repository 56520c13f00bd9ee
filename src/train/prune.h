// Pruning a tau sweep by asynchronous successive halving (ASHA, Li et al. 2020, in
// its stopping form): the options, the rung rule, and the leaderboard file that the
// runs of one sweep share, whatever launched them (launch/sweep.sh, a Slurm array,
// the group sweep) and on whatever hosts.
//
// Rungs fall at evaluations: rung k is the evaluation at step k * steps_per_rung
// (steps_per_rung = eval_every, one epoch by default). At every rung a run writes
// its best validation perplexity so far (macro) to <sweep folder>/leaderboard.json.
// From rung prune_min_rungs on, it is judged against the runs that have reached
// that rung, itself included: of n such runs, the best ceil(n / eta) go on, the
// others stop there (finish the step, write a checkpoint, record "pruned"). Runs
// that reach a rung later are judged against more runs, so a sequential sweep
// prunes its late runs hardest and never its first: launch/sweep.sh orders the taus
// for that (docs/bora.md, "Pruned sweeps").
//
// leaderboard.json:
//   {"format": "bora-leaderboard", "version": 1,
//    "dataset": "<hash of the dataset's manifest.json>", "steps_per_rung": 51,
//    "runs": {"tau_1": {"tau": 1, "ranks": 2,
//                       "rungs": {"1": {"step": 51, "ppl": 104.26}, ...},
//                       "pruned": null | {"rung": 3, "step": 153}}}}
// The runs of a sweep must compare the same thing at the same steps: a board of
// another dataset or another rung spacing is refused (a ConfigError naming both).
//
// Concurrency: a writer takes <sweep>/leaderboard.lock (RunLock's link(2) protocol,
// NFS-safe, waiting for a live holder), reads the board, changes it, writes
// a temporary file beside it, fsyncs it and renames it over the board, and
// lets go (the temp's name is fs.h's temp_path_for: one writer at a time holds
// the lock). A writer killed at any moment leaves the old board or the new one, never
// a mix, and a lock whose process is dead (or, from another host, whose heartbeat
// stopped for lock_stale_s) that the next writer takes over.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/options.h"
#include "train/run_lock.h"

namespace bora {

enum class PruneKind { None, Asha };
inline const Names<PruneKind> kPruneNames = {{"none", PruneKind::None}, {"asha", PruneKind::Asha}};

struct PruneConfig {
  PruneKind kind = PruneKind::None;
  int64_t eta = 3;        // keep the best 1/eta of the runs at a rung
  int64_t min_rungs = 2;  // the first rung at which a run may be pruned

  bool on() const { return kind != PruneKind::None; }
  // All resume-safe: a pruned run resumed with prune = none trains to its end.
  void declare(OptionTable& table);
  void validate() const;  // ConfigError: eta < 2, min_rungs < 1
  // ConfigError unless rung min_rungs falls within a run of total_steps steps.
  void check_rungs(int64_t steps_per_rung, int64_t total_steps) const;
};

// A run's verdict at one rung.
struct RungVerdict {
  bool judged = false;   // rung >= min_rungs: the rule applied
  bool keep = true;
  int64_t place = 1;     // 1 = best, among the runs that reached the rung
  int64_t reached = 1;   // runs that reached the rung, this one included
  int64_t kept = 1;      // max(1, ceil(reached / eta)): how many go on
};

// The rule on (run name, perplexity) pairs of one rung, `run` among them: sorted by
// perplexity (ties by name), the first max(1, ceil(n / eta)) are kept.
RungVerdict judge_rung(std::vector<std::pair<std::string, double>> reached, const std::string& run, int64_t eta);

// What a leaderboard must agree on with every run that writes to it.
struct BoardIdentity {
  std::string dataset;         // hash of manifest.json (as checkpoints record it)
  int64_t steps_per_rung = 0;  // the runs' eval_every in steps
};

class Leaderboard {
 public:
  static constexpr const char* kFile = "leaderboard.json";
  // The board of the sweep folder `sweep_dir` (created with the first report).
  // `lock` gives the staleness rules (the run's lock_* options).
  Leaderboard(std::string sweep_dir, BoardIdentity identity, RunLockOptions lock = {});

  // Under the lock: records `run`'s perplexity at `rung` (replacing an earlier
  // record of that rung: a resumed run reports it again), judges it when rung >=
  // prune.min_rungs, and records it as pruned there when it does not go on.
  RungVerdict report(const std::string& run, double tau, int ranks, int64_t rung, int64_t step, double ppl,
                     const PruneConfig& prune);
  // The rung at which `run` was pruned; 0 when it was not (or there is no board).
  // ConfigError when the folder holds a board of another dataset or rung spacing;
  // FormatError when the board is not one. Without the lock: the board is only
  // ever replaced whole.
  int64_t pruned_at(const std::string& run) const;
  const std::string& path() const { return path_; }

  // Test seam: runs with the lock held, the new board written to its temp file
  // and not yet renamed over the old one.
  std::function<void()> before_rename;

 private:
  Json load() const;  // an empty board when there is none; checks the identity
  std::string dir_, path_;
  BoardIdentity id_;
  RunLockOptions lock_;
};

}  // namespace bora
