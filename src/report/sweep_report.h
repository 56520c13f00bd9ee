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
// runs at different stages of training compares nothing. Parts that need tau = 0
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

// Reads every run folder; ConfigError when none has results.
SweepReport read_sweep(const std::vector<std::string>& run_dirs);
// For scripts that continue a sweep (launch/sweep.sh --until_converged): one line
// per run folder, "<dir> <converged: yes|no|unknown|missing> <budget in epochs>",
// the budget being the run's total steps over its steps per epoch, rounded up.
std::string sweep_status(const std::vector<std::string>& run_dirs);
// One line: "verdict: tau = 10 has the lowest validation perplexity (macro) of N
// converged runs" or "no verdict: runs tau = 1, tau = 10 had not converged".
std::string sweep_verdict(const SweepReport& report);
// Writes tables (and plots when `plots`) into `out`; returns Table 1 and Table 2 as
// Markdown for printing.
std::string write_report(const SweepReport& report, const std::string& out, bool plots);

// Spearman's rho with average ranks for ties.
double spearman(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace bora
