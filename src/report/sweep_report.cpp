#include "report/sweep_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <numeric>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/log.h"
#include "core/options.h"

namespace bora {
namespace {

std::string tau_text(double tau) { return std::isinf(tau) ? "inf" : format_double(tau); }

std::string fmt(double v, int digits = 2) {
  if (!std::isfinite(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// A learning rate as people write it: 3e-3 x 10 prints as 0.03, not 0.030000000000000002.
std::string lr_text(double lr) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", lr);
  return buf;
}

std::vector<double> ranks(const std::vector<double>& v) {
  std::vector<size_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> r(v.size());
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    while (j + 1 < idx.size() && v[idx[j + 1]] == v[idx[i]]) ++j;
    for (size_t k = i; k <= j; ++k) r[idx[k]] = 0.5 * double(i + j) + 1;  // average rank of ties
    i = j + 1;
  }
  return r;
}

// x positions of taus on a log axis, with 0 one decade left of the smallest finite
// tau > 0 and inf one decade right of the largest.
std::vector<double> tau_positions(const std::vector<SweepRun>& runs) {
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& r : runs)
    if (r.tau > 0 && std::isfinite(r.tau)) {
      lo = std::min(lo, std::log10(r.tau));
      hi = std::max(hi, std::log10(r.tau));
    }
  if (!std::isfinite(lo)) lo = hi = 0;
  std::vector<double> x;
  for (const auto& r : runs) x.push_back(r.tau == 0 ? lo - 1 : std::isinf(r.tau) ? hi + 1 : std::log10(r.tau));
  return x;
}

void run_gnuplot(const std::string& dir, const std::string& name, const std::string& script) {
  const std::string path = dir + "/" + name + ".gp";
  write_file_atomic(path, script);
  BORA_CHECK(std::system("command -v gnuplot > /dev/null") == 0, IoError,
             "gnuplot is not installed (launch/install-deps.sh installs it; --plots false skips the plots)");
  const std::string cmd = "cd '" + dir + "' && gnuplot '" + name + ".gp' 2> '" + name + ".gp.log'";
  if (std::system(cmd.c_str()) != 0) {
    std::string log = read_file(path + ".log");
    log = log.substr(0, log.find('\n', log.find_first_not_of("\n")));
    BORA_THROW(IoError, "gnuplot failed on ", path, ": ", log, " (", path, ".log)");
  }
}

}  // namespace

double spearman(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() < 2 || x.size() != y.size()) return NAN;
  std::vector<double> rx = ranks(x), ry = ranks(y);
  const double n = double(x.size()), mx = (n + 1) / 2;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxy += (rx[i] - mx) * (ry[i] - mx);
    sxx += (rx[i] - mx) * (rx[i] - mx);
    syy += (ry[i] - mx) * (ry[i] - mx);
  }
  return sxx > 0 && syy > 0 ? sxy / std::sqrt(sxx * syy) : NAN;
}

// results.json's "pruned": {"rung": k, ...} (train/prune.h), or 0.
static int64_t pruned_rung_of(const Json& results) {
  const auto p = results.find("pruned");
  return p != results.end() && p->is_object() ? p->at("rung").get<int64_t>() : 0;
}

std::vector<std::string> sweep_run_dirs(const std::string& sweep) {
  BORA_CHECK(std::filesystem::is_directory(sweep), ConfigError, "sweep folder '", sweep, "' does not exist");
  std::vector<std::string> runs;
  for (const auto& e : std::filesystem::directory_iterator(sweep))
    if (e.is_directory() && e.path().filename() != "report" && std::filesystem::exists(e.path() / "config.ini"))
      runs.push_back(e.path().string());
  std::sort(runs.begin(), runs.end());
  return runs;
}

SweepReport read_sweep(const std::vector<std::string>& run_dirs) {
  SweepReport rep;
  for (const auto& dir : run_dirs) {
    const std::string path = dir + "/results.json";
    if (!std::filesystem::exists(path)) {
      rep.missing.push_back(dir + " (no results.json: not finished, or not a run folder)");
      BORA_WARN("sweep: ", dir, " has no results.json; left out of the tables");
      continue;
    }
    try {
      Json j = read_json_file(path);
      SweepRun r;
      r.dir = dir;
      r.tau = j.at("tau").is_string() ? parse_double("tau", j.at("tau").get<std::string>()) : j.at("tau").get<double>();
      r.lr = j.at("lr").get<double>();
      r.val_macro = j.at("validation").at("macro_ppl").get<double>();
      r.val_micro = j.at("validation").at("micro_ppl").get<double>();
      r.test_macro = j.at("test").at("macro_ppl").get<double>();
      r.test_micro = j.at("test").at("micro_ppl").get<double>();
      r.best_step = j.value("best_step", int64_t(0));
      r.steps = j.value("steps", int64_t(0));
      r.train_seconds = j.value("train_seconds", 0.0);
      r.tokens_per_s = j.value("tokens_per_s", 0.0);
      r.ranks = j.value("ranks", 1);
      if (j.contains("converged")) {
        r.converged = j.at("converged").get<bool>() ? 1 : 0;
        r.convergence = j.at("convergence").value("reason", std::string());
      } else {
        r.convergence = "unknown: results.json from a bora without convergence reports";
      }
      r.steps_per_epoch = j.contains("budget") ? j.at("budget").value("steps_per_epoch", int64_t(0)) : 0;
      r.total_steps = j.contains("budget") ? j.at("budget").value("total_steps", r.steps) : r.steps;
      r.pruned_rung = pruned_rung_of(j);
      r.rank_seconds_measured = j.contains("rank_seconds");
      r.rank_seconds = r.rank_seconds_measured ? j.at("rank_seconds").get<double>() : r.train_seconds * r.ranks;
      for (const auto& t : j.at("tasks"))
        r.tasks.push_back({t.at("name").get<std::string>(), t.at("train_documents").get<int64_t>(),
                           t.at("validation_ppl").get<double>(), t.at("test_ppl").get<double>(),
                           t.value("distance_to_theta", 0.0)});
      rep.runs.push_back(std::move(r));
    } catch (const nlohmann::json::exception& e) {
      rep.missing.push_back(dir + " (results.json unreadable: " + e.what() + ")");
      BORA_WARN("sweep: ", path, " is not a complete results file; left out of the tables");
    }
  }
  BORA_CHECK(!rep.runs.empty(), ConfigError, "no run of the sweep has results (", run_dirs.size(), " folders given)");
  std::stable_sort(rep.runs.begin(), rep.runs.end(), [](const SweepRun& a, const SweepRun& b) { return a.tau < b.tau; });
  for (size_t i = 1; i < rep.runs.size(); ++i)
    BORA_CHECK(rep.runs[i].tau != rep.runs[i - 1].tau, ConfigError, "runs ", rep.runs[i - 1].dir, " and ",
               rep.runs[i].dir, " have the same tau ", tau_text(rep.runs[i].tau));
  for (const auto& t : rep.runs[0].tasks) rep.task_names.push_back(t.name);
  for (const auto& r : rep.runs) {
    std::vector<std::string> names;
    for (const auto& t : r.tasks) names.push_back(t.name);
    BORA_CHECK(names == rep.task_names, ConfigError, "run ", r.dir, " has other tasks than ", rep.runs[0].dir,
               ": a sweep compares runs of the same tasks");
  }
  // Best tau per task, and the gain of the best over tau = 0 against task size.
  std::vector<double> sizes, gains;
  const SweepRun* zero = rep.runs.front().tau == 0 ? &rep.runs.front() : nullptr;
  for (size_t t = 0; t < rep.task_names.size(); ++t) {
    size_t best = 0;
    for (size_t r = 1; r < rep.runs.size(); ++r)
      if (rep.runs[r].tasks[t].val_ppl < rep.runs[best].tasks[t].val_ppl) best = r;
    rep.best_run.push_back(best);
    if (zero) {
      sizes.push_back(double(zero->tasks[t].train_documents));
      gains.push_back((zero->tasks[t].val_ppl - rep.runs[best].tasks[t].val_ppl) / zero->tasks[t].val_ppl);
    }
  }
  rep.size_gain_correlation = zero ? spearman(sizes, gains) : NAN;
  return rep;
}

std::string sweep_status(const std::vector<std::string>& run_dirs) {
  std::ostringstream os;
  for (const auto& dir : run_dirs) {
    const std::string path = dir + "/results.json";
    if (!std::filesystem::exists(path)) {
      os << dir << " missing 0\n";
      continue;
    }
    const Json j = read_json_file(path);
    const char* conv = pruned_rung_of(j) > 0                       ? "pruned"
                       : !j.contains("converged")   ? "unknown"
                       : j.at("converged").get<bool>() ? "yes"
                                                       : "no";
    int64_t epochs = 0;
    if (j.contains("budget")) {
      const int64_t total = j.at("budget").at("total_steps").get<int64_t>();
      const int64_t per = std::max<int64_t>(1, j.at("budget").at("steps_per_epoch").get<int64_t>());
      epochs = (total + per - 1) / per;
    }
    os << dir << " " << conv << " " << epochs << "\n";
  }
  return os.str();
}

// The winner: the lowest validation perplexity among the runs that were not pruned
// (a pruned run lost at equal steps; its figure is from an earlier stage), or among
// all runs when every run was pruned.
size_t sweep_winner(const SweepReport& rep) {
  const auto key = [](const SweepRun& x) { return std::make_pair(x.pruned_rung > 0, x.val_macro); };
  return size_t(std::min_element(rep.runs.begin(), rep.runs.end(),
                                 [&](const SweepRun& a, const SweepRun& b) { return key(a) < key(b); }) -
                rep.runs.begin());
}

std::string sweep_verdict(const SweepReport& rep) {
  std::string unconverged, pruned, lower;
  size_t n_pruned = 0;
  const size_t best = sweep_winner(rep);
  for (size_t r = 0; r < rep.runs.size(); ++r) {
    if (rep.runs[r].pruned_rung > 0 && rep.runs[r].val_macro < rep.runs[best].val_macro)
      lower += (lower.empty() ? "" : ", ") + std::string("tau = ") + tau_text(rep.runs[r].tau);
    if (rep.runs[r].pruned_rung > 0) {
      ++n_pruned;
      pruned += (pruned.empty() ? "" : ", ") + std::string("tau = ") + tau_text(rep.runs[r].tau) + " at rung " +
                std::to_string(rep.runs[r].pruned_rung);
    } else if (rep.runs[r].converged != 1) {
      unconverged += (unconverged.empty() ? "" : ", ") + std::string("tau = ") + tau_text(rep.runs[r].tau) +
                     (rep.runs[r].converged < 0 ? " (unknown)" : "");
    }
  }
  if (!unconverged.empty())
    return "no verdict: runs " + unconverged + " had not converged (continue them: launch/sweep.sh --until_converged)";
  return "verdict: tau = " + tau_text(rep.runs[best].tau) + " has the lowest validation perplexity (macro, " +
         fmt(rep.runs[best].val_macro) + ") of " + std::to_string(rep.runs.size() - n_pruned) + " converged runs" +
         (pruned.empty() ? "" : "; pruned: " + pruned) +
         (lower.empty() ? ""
                        : " (pruned " + lower +
                              " had reached a lower figure before it lost at its rung: resume it with prune = none to "
                              "compare converged runs)");
}

SweepCompute sweep_compute(const SweepReport& rep) {
  SweepCompute c;
  for (const auto& x : rep.runs) {
    c.spent += x.rank_seconds;
    c.all_measured = c.all_measured && x.rank_seconds_measured;
    if (x.pruned_rung > 0 && x.steps > 0) {
      ++c.pruned;
      c.full_estimate += x.rank_seconds / double(x.steps) * double(std::max(x.total_steps, x.steps));
    } else {
      c.full_estimate += x.rank_seconds;
    }
  }
  return c;
}

std::string compute_lines(const SweepReport& rep, const SweepReport* full) {
  const SweepCompute c = sweep_compute(rep);
  std::ostringstream os;
  const char* what = c.all_measured ? "rank-seconds" : "rank-seconds (some runs: training time only, an older bora)";
  os << "Compute: " << fmt(c.spent, 0) << " " << what << " spent";
  if (c.pruned > 0)
    os << "; a full sweep would have spent at most " << fmt(c.full_estimate, 0) << " (" << c.pruned
       << " pruned run(s) continued to their step budget at their own pace; early stopping may end them sooner): "
       << fmt(100 * c.spent / c.full_estimate, 0) << "%";
  os << ".\n";
  if (full) {
    const SweepCompute f = sweep_compute(*full);
    const SweepRun &mine = rep.runs[sweep_winner(rep)], &theirs = full->runs[sweep_winner(*full)];
    os << "Against the full sweep (" << full->runs.size() << " runs, " << fmt(f.spent, 0) << " rank-seconds"
       << (f.all_measured ? "" : ", some runs training time only") << "): this sweep spent "
       << fmt(100 * c.spent / f.spent, 1) << "% of it; winner tau = " << tau_text(mine.tau) << " ("
       << fmt(mine.val_macro) << "), the full sweep's tau = " << tau_text(theirs.tau) << " (" << fmt(theirs.val_macro)
       << "): " << (mine.tau == theirs.tau ? "the same tau, " : "another tau, ")
       << fmt(100 * (mine.val_macro / theirs.val_macro - 1), 2) << "% above it.\n";
  }
  return os.str();
}

std::string write_report(const SweepReport& rep, const std::string& out, bool plots, const SweepReport* full) {
  make_dirs(out);
  const auto& runs = rep.runs;
  // ---- Table 1 -------------------------------------------------------------------
  std::ostringstream t1, c1;
  t1 << "| tau | lr | validation ppl (macro) | validation ppl (micro) | test ppl (macro) | best step | converged | tokens/s |\n"
     << "|---:|---:|---:|---:|---:|---:|:---:|---:|\n";
  c1 << "tau,lr,val_macro_ppl,val_micro_ppl,test_macro_ppl,test_micro_ppl,best_step,steps,train_seconds,tokens_per_s,ranks,"
        "converged,pruned_rung,rank_seconds\n";
  const size_t best_overall = sweep_winner(rep);
  for (size_t r = 0; r < runs.size(); ++r) {
    const auto& x = runs[r];
    const std::string mark = r == best_overall ? "**" : "";
    // A run cut off while improving is marked where its figures are read.
    const std::string conv = x.pruned_rung > 0 ? "pruned (rung " + std::to_string(x.pruned_rung) + ")"
                             : x.converged == 1 ? "yes"
                             : x.converged == 0 ? "**no**"
                                                : "?";
    t1 << "| " << tau_text(x.tau) << " | " << lr_text(x.lr) << " | " << mark << fmt(x.val_macro) << mark << " | "
       << fmt(x.val_micro) << " | " << fmt(x.test_macro) << " | " << x.best_step << " of " << x.steps << " | " << conv
       << " | " << fmt(x.tokens_per_s, 0) << " |\n";
    c1 << tau_text(x.tau) << "," << lr_text(x.lr) << "," << x.val_macro << "," << x.val_micro << "," << x.test_macro
       << "," << x.test_micro << "," << x.best_step << "," << x.steps << "," << x.train_seconds << "," << x.tokens_per_s
       << "," << x.ranks << "," << (x.converged == 1 ? "yes" : x.converged == 0 ? "no" : "unknown") << ","
       << x.pruned_rung << "," << x.rank_seconds << "\n";
  }
  // ---- Table 2 -------------------------------------------------------------------
  std::ostringstream t2, c2;
  t2 << "| task | train docs |";
  c2 << "task,train_documents";
  for (const auto& x : runs) {
    t2 << " tau = " << tau_text(x.tau) << " |";
    c2 << ",val_ppl_tau_" << tau_text(x.tau);
  }
  for (const auto& x : runs) c2 << ",test_ppl_tau_" << tau_text(x.tau);
  for (const auto& x : runs) c2 << ",distance_tau_" << tau_text(x.tau);
  t2 << " best tau |\n|---|---:|";
  c2 << ",best_tau\n";
  for (size_t i = 0; i < runs.size() + 1; ++i) t2 << "---:|";
  t2 << "\n";
  int best_intermediate = 0;
  for (size_t t = 0; t < rep.task_names.size(); ++t) {
    const size_t best = rep.best_run[t];
    t2 << "| " << rep.task_names[t] << " | " << runs[0].tasks[t].train_documents << " |";
    c2 << rep.task_names[t] << "," << runs[0].tasks[t].train_documents;
    for (size_t r = 0; r < runs.size(); ++r) {
      const std::string mark = r == best ? "**" : "";
      t2 << " " << mark << fmt(runs[r].tasks[t].val_ppl) << mark << " |";
      c2 << "," << runs[r].tasks[t].val_ppl;
    }
    for (const auto& x : runs) c2 << "," << x.tasks[t].test_ppl;
    for (const auto& x : runs) c2 << "," << x.tasks[t].distance;
    t2 << " " << tau_text(runs[best].tau) << " |\n";
    c2 << "," << tau_text(runs[best].tau) << "\n";
    best_intermediate += runs[best].tau > 0 && std::isfinite(runs[best].tau);
  }
  write_file_atomic(out + "/table1.md", t1.str());
  write_file_atomic(out + "/table1.csv", c1.str());
  write_file_atomic(out + "/table2.md", t2.str());
  write_file_atomic(out + "/table2.csv", c2.str());

  const bool has_zero = runs.front().tau == 0, has_inf = std::isinf(runs.back().tau);
  std::ostringstream notes;  // what the report could not say, and why
  for (const auto& x : runs)
    if (x.converged != 1 && x.pruned_rung == 0)
      notes << "- tau = " << tau_text(x.tau) << " had not converged: " << x.convergence << "\n";
  if (!has_zero) notes << "- no tau = 0 run: the gain over independent adapters and its correlation with task size are not reported\n";
  if (!has_zero && !has_inf) notes << "- neither tau = 0 nor tau = inf: gain_vs_size.png is not drawn\n";

  std::ostringstream md;
  const std::string compute = compute_lines(rep, full);
  md << "# BoRA tau sweep\n\n" << sweep_verdict(rep) << "\n\n" << compute << "\n## Table 1: overall validation perplexity per tau\n\n"
     << t1.str() << "\n## Table 2: per-task validation perplexity (best tau per task in bold)\n\n" << t2.str() << "\n"
     << best_intermediate << " of " << rep.task_names.size() << " tasks are best at an intermediate tau (0 < tau < inf).\n";
  if (std::isfinite(rep.size_gain_correlation))
    md << "Spearman rank correlation between task size (training documents) and the relative gain of its best tau "
          "over tau = 0: "
       << fmt(rep.size_gain_correlation, 3) << " (negative: smaller tasks gain more).\n";
  if (!notes.str().empty()) md << "\nNotes:\n" << notes.str();
  if (!rep.missing.empty()) {
    md << "\nMissing runs (left out):\n";
    for (const auto& m : rep.missing) md << "- " << m << "\n";
  }
  if (plots)
    md << "\nFigures: ppl_vs_tau.png, ppl_vs_tau_tasks.png, distance_vs_size.png"
       << (has_zero || has_inf ? ", gain_vs_size.png" : "") << "\n";
  write_file_atomic(out + "/report.md", md.str());

  if (plots) {
    // Data files first; the .gp scripts stay beside the PNGs so users can restyle them.
    const std::vector<double> x = tau_positions(runs);
    std::string xtics = "set xtics (";
    for (size_t r = 0; r < runs.size(); ++r) xtics += (r ? ", \"" : "\"") + tau_text(runs[r].tau) + "\" " + format_double(x[r]);
    xtics += ")\n";
    std::ostringstream overall, tasks_dat;
    for (size_t r = 0; r < runs.size(); ++r) overall << x[r] << " " << runs[r].val_macro << " " << runs[r].val_micro << "\n";
    write_file_atomic(out + "/ppl_vs_tau.dat", overall.str());
    for (size_t t = 0; t < rep.task_names.size(); ++t) {
      tasks_dat << "# " << rep.task_names[t] << "\n";
      for (size_t r = 0; r < runs.size(); ++r)
        tasks_dat << x[r] << " " << runs[r].tasks[t].val_ppl / (has_zero ? runs[0].tasks[t].val_ppl : 1.0) << "\n";
      tasks_dat << "\n\n";
    }
    write_file_atomic(out + "/ppl_vs_tau_tasks.dat", tasks_dat.str());
    const std::string head = "set terminal pngcairo size 900,560 font ',11'\nset grid\n";
    run_gnuplot(out, "ppl_vs_tau", head + "set output 'ppl_vs_tau.png'\nset title 'Validation perplexity against tau'\n" +
                                       xtics + "set xlabel 'tau (log scale)'\nset ylabel 'perplexity'\n"
                                       "plot 'ppl_vs_tau.dat' u 1:2 w lp lw 2 pt 7 t 'macro (mean NLL over tasks)', "
                                       "'' u 1:3 w lp lw 2 pt 5 t 'micro (token-weighted)'\n");
    std::string plot_tasks = "plot ";
    for (size_t t = 0; t < rep.task_names.size(); ++t)
      plot_tasks += (t ? ", " : "") + std::string("'ppl_vs_tau_tasks.dat' index ") + std::to_string(t) +
                    " u 1:2 w lp pt 7 ps 0.6 t '" + rep.task_names[t] + "'";
    run_gnuplot(out, "ppl_vs_tau_tasks",
                head + "set output 'ppl_vs_tau_tasks.png'\nset title 'Per-task validation perplexity against tau" +
                    (has_zero ? " (relative to tau = 0)" : "") + "'\n" + xtics +
                    "set key outside right font ',8'\nset xlabel 'tau (log scale)'\nset ylabel '" +
                    (has_zero ? "perplexity / perplexity at tau = 0" : "perplexity") + "'\n" + plot_tasks + "\n");
    std::ostringstream dist;
    std::string plot_dist = "plot ";
    int series = 0;
    for (size_t r = 0; r < runs.size(); ++r) {
      if (std::isinf(runs[r].tau)) continue;  // no Theta at tau = inf
      dist << "# tau " << tau_text(runs[r].tau) << "\n";
      for (const auto& t : runs[r].tasks) dist << t.train_documents << " " << t.distance << "\n";
      dist << "\n\n";
      plot_dist += (series ? ", " : "") + std::string("'distance_vs_size.dat' index ") + std::to_string(series) +
                   " u 1:2 w p pt 7 t 'tau = " + tau_text(runs[r].tau) + "'";
      ++series;
    }
    write_file_atomic(out + "/distance_vs_size.dat", dist.str());
    if (series)
      run_gnuplot(out, "distance_vs_size",
                  head + "set output 'distance_vs_size.png'\nset title '||theta_d - Theta|| against task size'\n"
                         "set logscale x\nset xlabel 'training documents'\nset ylabel '||theta_d - Theta||'\nset key outside right\n" +
                      plot_dist + "\n");
    if (has_zero || has_inf) {
      // Columns for the extremes the sweep has; the gain over a missing one is not a number.
      const SweepRun* inf = has_inf ? &runs.back() : nullptr;
      std::ostringstream gain;
      for (size_t t = 0; t < rep.task_names.size(); ++t) {
        const double best = runs[rep.best_run[t]].tasks[t].val_ppl;
        gain << runs[0].tasks[t].train_documents;
        if (has_zero) gain << " " << 100 * (runs[0].tasks[t].val_ppl - best) / runs[0].tasks[t].val_ppl;
        if (inf) gain << " " << 100 * (inf->tasks[t].val_ppl - best) / inf->tasks[t].val_ppl;
        gain << "\n";
      }
      write_file_atomic(out + "/gain_vs_size.dat", gain.str());
      std::string series;
      if (has_zero) series += "'gain_vs_size.dat' u 1:2 w p pt 7 ps 1.2 t 'over tau = 0'";
      if (inf)
        series += std::string(has_zero ? ", '' u 1:3" : "'gain_vs_size.dat' u 1:2") + " w p pt 5 ps 1.2 t 'over tau = inf'";
      run_gnuplot(out, "gain_vs_size",
                  head + "set output 'gain_vs_size.png'\nset title 'Relative improvement of the best tau against task size'\n"
                         "set logscale x\nset xlabel 'training documents'\nset ylabel 'improvement (%)'\nplot " +
                      series + "\n");
    }
  }
  return "## Table 1: overall validation perplexity per tau\n\n" + t1.str() +
         "\n## Table 2: per-task validation perplexity (best in bold)\n\n" + t2.str() +
         (notes.str().empty() ? "" : "\nNotes:\n" + notes.str()) + "\n" + sweep_verdict(rep) + "\n" + compute;
}

}  // namespace bora
