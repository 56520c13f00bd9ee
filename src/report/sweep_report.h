// The report of a tau sweep: reads the results.json of each run folder and writes
// the tables and figures users compare (the paper's Table 1, its appendix table,
// and Figures 2 to 4):
//
//   table1.md / .csv   overall perplexity per tau, with the learning rate
//   table2.md / .csv   per-task perplexity for every tau, best tau per task marked
//   report.md          both tables, the verdict, the runs that are missing, the
//                      rank correlation between task size and the gain over tau = 0
//   ppl_vs_tau.png, ppl_vs_tau_tasks.png, distance_vs_size.png, gain_vs_size.png
//
// Perplexities are the validation split's at each run's best step (as the paper
// reports them); test perplexities are in the CSV files too. A run folder without
// results.json is reported and skipped; the rest is still tabulated.
//
// Table 1 marks every run that had not converged (train/convergence.h), and the
// verdict names the best tau only when every run converged: a sweep that compares
// runs at different stages of training compares nothing. A run that ASHA pruned
// (train/prune.h) is marked with its rung and does not hold the verdict back: it
// lost to other runs at equal steps. The compute line sums rank-seconds, and
// estimates what a full sweep would have spent (or measures it, --full). Parts that need tau = 0
// or tau = inf (the gain over them, its correlation with task size) are skipped
// with a note when the sweep lacks them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace bora {

struct SweepTask {
  std::string name;
  int64_t train_documents = 0;
  double val_ppl = 0, test_ppl = 0, distance = 0;
};

struct SweepRun {
  std::string dir;
  double tau = 0;  // inf for the unified run
  double lr = 0;
  double val_macro = 0, val_micro = 0, test_macro = 0, test_micro = 0;
  int64_t best_step = 0, steps = 0;
  double train_seconds = 0, tokens_per_s = 0;
  int ranks = 1;
  // 1 converged, 0 not (the budget ran out while improving), -1 unknown (a
  // results.json of a bora before convergence reports).
  int converged = -1;
  std::string convergence;  // why, in one sentence
  int64_t steps_per_epoch = 0;
  int64_t total_steps = 0;      // the budget
  int64_t pruned_rung = 0;      // > 0: ASHA stopped it at this rung
  // Compute spent: wall seconds x ranks of the whole run (results.json
  // rank_seconds); runs of a bora before pruned sweeps have only their training
  // time (train_seconds x ranks), and rank_seconds_measured says so.
  double rank_seconds = 0;
  bool rank_seconds_measured = true;
  std::vector<SweepTask> tasks;
};

struct SweepReport {
  std::vector<SweepRun> runs;          // sorted by tau (inf last)
  std::vector<std::string> missing;    // run folders without usable results, with why
  std::vector<std::string> task_names;
  // best_tau[t]: index into runs of the lowest validation perplexity of task t.
  std::vector<size_t> best_run;
  // Spearman rank correlation between task size (training documents) and the
  // relative gain of the best tau over tau = 0 (NaN without a tau = 0 run).
  double size_gain_correlation = 0;
};

// The run folders of a sweep folder: its subfolders with a config.ini (sorted);
// ConfigError when the folder does not exist.
std::vector<std::string> sweep_run_dirs(const std::string& sweep);
// Reads every run folder; ConfigError when none has results.
SweepReport read_sweep(const std::vector<std::string>& run_dirs);
// For scripts that continue a sweep (launch/sweep.sh --until_converged): one line
// per run folder, "<dir> <converged: yes|no|pruned|unknown|missing> <budget in epochs>",
// the budget being the run's total steps over its steps per epoch, rounded up.
std::string sweep_status(const std::vector<std::string>& run_dirs);
// The index of the sweep's winner: the lowest validation perplexity among the runs
// that were not pruned (among all when every run was).
size_t sweep_winner(const SweepReport& report);
// One line: "verdict: tau = 10 has the lowest validation perplexity (macro) of N
// converged runs[; pruned: ...]" or "no verdict: runs tau = 1, tau = 10 had not converged".
std::string sweep_verdict(const SweepReport& report);
// Writes tables (and plots when `plots`) into `out`; returns Table 1 and Table 2 as
// Markdown for printing.
// `full`: optional, a full sweep of the same taus to compare compute and winner with.
std::string write_report(const SweepReport& report, const std::string& out, bool plots,
                         const SweepReport* full = nullptr);

// The compute of a sweep, in rank-seconds: spent, and what running every pruned run
// to its step budget at its own pace would have added (an upper bound on the full
// sweep: early stopping may have ended such a run sooner).
struct SweepCompute {
  double spent = 0, full_estimate = 0;
  int pruned = 0;
  bool all_measured = true;
};
SweepCompute sweep_compute(const SweepReport& report);
// Lines for report.md: the compute, and with `full` (the same taus trained without
// pruning) the measured ratio and how far this sweep's winner is from the full one's.
std::string compute_lines(const SweepReport& report, const SweepReport* full);

// Spearman's rho with average ranks for ties.
double spearman(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace bora
