// bora-report: the tables, plots and verdict of a tau sweep from its run folders.
//   bora-report --sweep runs/sweep                 (every subfolder with results.json)
//   bora-report --runs runs/tau0,runs/tau10,...   --out report/
//   bora-report --sweep runs/sweep --status        (per-run convergence, for scripts)
//   bora-report --sweep runs/pruned --full runs/sweep   (a pruned sweep against a full one)
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <optional>

#include "core/error.h"
#include "core/log.h"
#include "core/main.h"
#include "core/options.h"
#include "report/sweep_report.h"

int main(int argc, char** argv) {
  return bora::guarded_main("bora-report", [&] {
    std::string sweep, out, full;
    std::vector<std::string> runs;
    bool plots = true, status = false;
    bora::OptionTable t("bora-report",
                        "Writes Table 1 (overall perplexity per tau) and Table 2 (per-task perplexity, best tau marked) "
                        "as Markdown and CSV, and PNG plots (gnuplot), from the run folders of a tau sweep.");
    t.add("sweep", &sweep, "a folder whose subfolders are the sweep's runs");
    t.add("runs", &runs, "run folders, instead of --sweep");
    t.add("out", &out, "output folder (default: <sweep>/report)");
    t.add("full", &full,
          "a full sweep folder of the same taus: report.md then gives this sweep's compute as a share of its "
          "measured compute, and how far this sweep's winner is from its winner");
    t.add("plots", &plots, "write the PNG figures (needs gnuplot)");
    t.add("status", &status,
          "print one line per run for scripts: <dir> <converged: yes|no|unknown|missing> <budget in epochs>; no tables");
    if (!t.parse(argc, argv)) return 0;
    BORA_CHECK(!sweep.empty() || !runs.empty(), ConfigError, "give --sweep or --runs");
    if (!sweep.empty()) runs = bora::sweep_run_dirs(sweep);
    if (status) {
      std::cout << bora::sweep_status(runs);
      return 0;
    }
    if (out.empty()) out = (sweep.empty() ? std::string(".") : sweep) + "/report";
    bora::SweepReport rep = bora::read_sweep(runs);
    std::optional<bora::SweepReport> full_rep;
    if (!full.empty()) full_rep = bora::read_sweep(bora::sweep_run_dirs(full));
    std::cout << bora::write_report(rep, out, plots, full_rep ? &*full_rep : nullptr);
    if (!rep.missing.empty()) {
      std::cout << "\nMissing runs (left out):\n";
      for (const auto& m : rep.missing) std::cout << "  " << m << "\n";
    }
    BORA_INFO("report written to ", out, "/report.md");
    return 0;
  });
}
