// compare_runs: checks that training runs with different numbers of ranks computed
// the same thing. The first run folder is the reference; every other one must have
// the same tasks and, per task,
//   adapters   ||a - b|| / ||a||  over all tensors of run/adapters/<task>/*.safetensors
//              (and of run/theta/ when present)                   <= --tol
//   results    |a - b| / |a| of validation_ppl and test_ppl in results.json <= --tol
// Prints one line per task with the largest differences; exit 0 when all hold,
// 1 otherwise (and 2 on a missing or unreadable file).
//
//   compare_runs --tol 1e-5 runs/np1 runs/np2 runs/np3
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "core/main.h"
#include "model/safetensors.h"

namespace fs = std::filesystem;

namespace {

// name -> tensor (float64, CPU) of every .safetensors file in `dir`, keys
// prefixed by the file name so that two files never collide.
std::map<std::string, torch::Tensor> read_folder(const std::string& dir) {
  BORA_CHECK(fs::is_directory(dir), IoError, "no adapter folder ", dir);
  std::map<std::string, torch::Tensor> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".safetensors") continue;
    bora::SafetensorsFile f = bora::SafetensorsFile::open(e.path().string());
    for (const auto& t : f.tensors())
      out[e.path().filename().string() + ":" + t.name] = f.tensor(t).to(torch::kFloat64).clone();
  }
  BORA_CHECK(!out.empty(), IoError, "no .safetensors tensors in ", dir);
  return out;
}

// ||a - b|| / ||a|| over all tensors of two folders (the same names and shapes).
double folder_rel_diff(const std::string& a_dir, const std::string& b_dir) {
  auto a = read_folder(a_dir), b = read_folder(b_dir);
  BORA_CHECK(a.size() == b.size(), FormatError, a_dir, " has ", a.size(), " tensors, ", b_dir, " has ",
             b.size());
  double diff_sq = 0, ref_sq = 0;
  for (const auto& [name, ta] : a) {
    auto it = b.find(name);
    BORA_CHECK(it != b.end(), FormatError, b_dir, " lacks tensor ", name);
    BORA_CHECK(ta.sizes() == it->second.sizes(), FormatError, "tensor ", name, " differs in shape");
    diff_sq += (ta - it->second).pow(2).sum().item<double>();
    ref_sq += ta.pow(2).sum().item<double>();
  }
  BORA_CHECK(ref_sq > 0, DataError, a_dir, " holds only zeros: nothing to compare against");
  return std::sqrt(diff_sq / ref_sq);
}

double rel(double a, double b) { return std::fabs(a - b) / std::max(std::fabs(a), 1e-300); }

struct Options {
  double tol = 1e-5;
  std::vector<std::string> runs;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--tol" && i + 1 < argc) o.tol = std::stod(argv[++i]);
    else o.runs.push_back(a);
  }
  BORA_CHECK(o.runs.size() >= 2, ConfigError, "usage: compare_runs [--tol T] REF_RUN RUN [RUN ...]");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  return bora::guarded_main("compare_runs", [&] {
    const Options o = parse(argc, argv);
    const bora::Json ref = bora::read_json_file(o.runs[0] + "/results.json");
    bool ok = true;
    for (size_t k = 1; k < o.runs.size(); ++k) {
      const std::string& run = o.runs[k];
      const bora::Json res = bora::read_json_file(run + "/results.json");
      std::printf("%s (ranks %d) vs %s (ranks %d), tolerance %.1e\n", run.c_str(), res.value("ranks", -1),
                  o.runs[0].c_str(), ref.value("ranks", -1), o.tol);
      BORA_CHECK(res["tasks"].size() == ref["tasks"].size(), DataError, run, " has ", res["tasks"].size(),
                 " tasks, the reference ", ref["tasks"].size());
      BORA_CHECK(res.value("steps", -1) == ref.value("steps", -2), DataError, run, " ran ",
                 res.value("steps", -1), " steps, the reference ", ref.value("steps", -2));
      const bool shared = fs::is_directory(o.runs[0] + "/adapters/shared");
      std::printf("  %-16s %12s %12s %12s\n", "task", "adapter", "val ppl", "test ppl");
      for (size_t t = 0; t < ref["tasks"].size(); ++t) {
        const bora::Json& a = ref["tasks"][t];
        const bora::Json& b = res["tasks"][t];
        const std::string name = a["name"].get<std::string>();
        BORA_CHECK(b["name"].get<std::string>() == name, DataError, "task ", t, " is '", name,
                   "' in the reference and '", b["name"].get<std::string>(), "' in ", run);
        const std::string sub = shared ? "shared" : name;
        const double da = folder_rel_diff(o.runs[0] + "/adapters/" + sub, run + "/adapters/" + sub);
        const double dv = rel(a["validation_ppl"].get<double>(), b["validation_ppl"].get<double>());
        const double dt = rel(a["test_ppl"].get<double>(), b["test_ppl"].get<double>());
        const bool good = da <= o.tol && dv <= o.tol && dt <= o.tol;
        ok = ok && good;
        std::printf("  %-16s %12.3e %12.3e %12.3e%s\n", name.c_str(), da, dv, dt, good ? "" : "  <-- over tolerance");
      }
      if (fs::is_directory(o.runs[0] + "/theta")) {
        const double d = folder_rel_diff(o.runs[0] + "/theta", run + "/theta");
        ok = ok && d <= o.tol;
        std::printf("  %-16s %12.3e%s\n", "Theta", d, d <= o.tol ? "" : "  <-- over tolerance");
      }
    }
    std::printf("%s\n", ok ? "SAME within tolerance" : "DIFFERENT");
    return ok ? 0 : 1;
  });
}
