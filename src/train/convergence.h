// Whether a training run had converged when it ended, from its validation history.
//
// A sweep compares values of tau only if every run was trained to convergence; a
// run cut off by its step budget while still improving is a run at another stage
// of training, not another tau. The verdict, with w = patience (3 when patience is
// 0, i.e. early stopping is off):
//
//   converged        early stopping fired (w evaluations without a better NLL), or
//                    the best evaluation is w or more evaluations old, or the best
//                    validation NLL fell by at most `tol` (relative) over the last
//                    w evaluations: a plateau
//   not converged    otherwise: the budget ran out while the NLL was still falling
//
// With patience > 0 a run that did not stop early always has its best among its
// last w evaluations, so it converged only on a plateau.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace bora {

struct Convergence {
  bool converged = false;
  std::string reason;           // one sentence for logs, results.md and the report
  int64_t evaluations = 0;      // validation evaluations in the history
  int64_t evals_since_best = 0;
  double recent_drop = 0;       // relative fall of the best NLL over the last w evaluations
};

// history: (step, macro validation NLL) of every evaluation, in order.
Convergence assess_convergence(const std::vector<std::pair<int64_t, double>>& history, bool stopped_early,
                               int64_t patience, double tol);

}  // namespace bora
