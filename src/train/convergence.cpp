#include "train/convergence.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"

namespace bora {

Convergence assess_convergence(const std::vector<std::pair<int64_t, double>>& history, bool stopped_early,
                               int64_t patience, double tol) {
  Convergence c;
  c.evaluations = static_cast<int64_t>(history.size());
  const int64_t w = patience > 0 ? patience : 3;
  if (history.empty()) {
    c.reason = "no validation evaluation";
    return c;
  }
  size_t best = 0;
  for (size_t i = 1; i < history.size(); ++i)
    if (history[i].second < history[best].second) best = i;
  c.evals_since_best = static_cast<int64_t>(history.size() - 1 - best);
  // The best NLL w evaluations before the end (or the first one) against the best now.
  const size_t from = history.size() > size_t(w) ? history.size() - 1 - size_t(w) : 0;
  double before = history[0].second;
  for (size_t i = 1; i <= from; ++i) before = std::min(before, history[i].second);
  c.recent_drop = std::isfinite(before) && before != 0 ? (before - history[best].second) / std::fabs(before) : INFINITY;
  char drop[32];
  std::snprintf(drop, sizeof drop, "%.2g%%", 100 * c.recent_drop);
  const int64_t best_step = history[best].first, last_step = history.back().first;
  if (stopped_early) {
    c.converged = true;
    c.reason = cat("early stopping fired at step ", last_step, " (best at step ", best_step, ")");
  } else if (c.evals_since_best >= w) {
    c.converged = true;
    c.reason = cat("no better validation NLL in the last ", c.evals_since_best, " evaluations (best at step ",
                   best_step, " of ", last_step, ")");
  } else if (history.size() > 1 && c.recent_drop <= tol) {
    c.converged = true;
    c.reason = cat("on a plateau: the best validation NLL fell by ", drop, " over the last ", w,
                   " evaluations (best at step ", best_step, " of ", last_step, ")");
  } else {
    c.reason = cat("the budget ran out while the validation NLL was still falling (", drop, " over the last ",
                   std::min<int64_t>(w, c.evaluations - 1), " evaluations; best at step ", best_step, " of ",
                   last_step, ")");
  }
  return c;
}

}  // namespace bora
