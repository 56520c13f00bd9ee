// bench_dist_scaling: weak scaling of task-parallel BoRA, 1 -> N ranks with the
// tasks (and the global batch) multiplied by N, so that every rank has the same
// work as the single rank had. It runs the real tool, `mpirun -np k bora-train`,
// and reads the per-step timing breakdown that bora-train writes to metrics.jsonl.
//
//   bench_dist_scaling [--ranks 2] [--steps 30] [--warmup 5] [--hidden 128]
//                      [--layers 4] [--batch 16] [--r 16] [--repeats 3] [--work DIR]
//
// Every sequence has the same length (the corpus is cut into 800-character
// documents, longer than max_len = 128 tokens), so a step's work is fixed and the
// MEDIAN step time over steps and repeats is a robust figure on a machine shared
// with other jobs. Printed side by side, for sampler = global and = balanced:
//   step time, tokens/s, efficiency = step time with 1 rank / step time with N,
//   and the step's split into compute, all-reduce, data and optimizer (means).
// The "all-reduce" time of a step includes waiting for the slowest rank (with the
// global sampler the ranks' shares of a batch vary from step to step); the pure
// cost of the collective is measured apart: the median of K all-reduces of
// |Theta| + 8 float64, each after a barrier (`--allreduce P`, under mpirun).
// Claim checked (exit 1 when it fails): efficiency >= 0.85 with the balanced sampler.
#include <torch/torch.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "core/main.h"
#include "core/progress.h"
#include "dist/world.h"

namespace fs = std::filesystem;

namespace {

struct Options {
  int ranks = 2;
  int steps = 30;
  int warmup = 5;
  int hidden = 128;
  int layers = 4;
  int batch = 16;  // sequences per rank per step
  int rank_r = 16;
  int repeats = 3;
  std::string work = "/tmp/bora_bench_dist";
  int64_t allreduce = 0;  // > 0: the collective micro-benchmark mode (under mpirun)
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      BORA_CHECK(i + 1 < argc, ConfigError, a, " needs a value");
      return argv[++i];
    };
    if (a == "--ranks") o.ranks = std::stoi(next());
    else if (a == "--steps") o.steps = std::stoi(next());
    else if (a == "--warmup") o.warmup = std::stoi(next());
    else if (a == "--hidden") o.hidden = std::stoi(next());
    else if (a == "--layers") o.layers = std::stoi(next());
    else if (a == "--batch") o.batch = std::stoi(next());
    else if (a == "--r") o.rank_r = std::stoi(next());
    else if (a == "--repeats") o.repeats = std::stoi(next());
    else if (a == "--work") o.work = next();
    else if (a == "--allreduce") o.allreduce = std::stoll(next());
    else BORA_THROW(ConfigError, "unknown option ", a, " (see the header of bench/bench_dist_scaling.cpp)");
  }
  BORA_CHECK(o.steps > o.warmup && o.ranks >= 2, ConfigError, "need --steps > --warmup and --ranks >= 2");
  return o;
}

std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

// Busy CPU seconds of the whole machine (all cores) from /proc/stat.
double machine_busy_seconds() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  double user, nice, system, idle, iowait, irq, softirq, steal;
  in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  return (user + nice + system + irq + softirq + steal) / double(sysconf(_SC_CLK_TCK));
}

// CPU seconds of this process's finished descendants (mpirun and its ranks).
double children_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_CHILDREN, &u);
  return double(u.ru_utime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec) + double(u.ru_stime.tv_sec) +
         1e-6 * double(u.ru_stime.tv_usec);
}

std::string self_dir() { return fs::read_symlink("/proc/self/exe").parent_path().string(); }

void run(const std::string& cmd) {
  const int rc = std::system(cmd.c_str());
  BORA_CHECK(rc == 0, InternalError, "command failed (", rc, "): ", cmd);
}

// Eight large English fortune files: rank k of N gets tasks 2k, 2k+1.
const std::vector<std::string> kFiles = {"computers", "cookie",   "songs-poems", "definitions",
                                         "people",    "science",  "norm",        "politics"};

// The file's text (without the '%' separator lines) cut at spaces into documents
// of at least 800 characters, in data_prep's folder format.
void write_chunked(const std::string& from, const std::string& to) {
  std::ifstream in(from);
  BORA_CHECK(in, IoError, "cannot read ", from);
  std::string text, line;
  while (std::getline(in, line))
    if (line != "%") text += line + " ";
  std::ofstream out(to);
  size_t start = 0;
  while (start + 800 < text.size()) {
    size_t end = text.find(' ', start + 800);
    if (end == std::string::npos) break;
    out << text.substr(start, end - start) << "\n%\n";
    start = end + 1;
  }
  BORA_CHECK(out, IoError, "cannot write ", to);
}

std::string mpirun(int np) {
  return "OMP_NUM_THREADS=1 mpirun --allow-run-as-root --oversubscribe --mca btl self,vader --bind-to none -np " +
         std::to_string(np) + " ";
}

struct Timing {
  double step_s = 0, tokens_per_s = 0, compute = 0, allreduce = 0, data = 0, optimizer = 0;
  double others = 0;          // cores busy with OTHER processes during the run (mean)
  std::vector<double> steps;  // every counted step's time, for the median over repeats
  double tokens = 0;          // target tokens per step (mean)
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The steps after the warm-up: their times, the mean breakdown, tokens per step.
Timing read_metrics(const std::string& path, int warmup) {
  std::ifstream in(path);
  BORA_CHECK(in, IoError, "cannot read ", path);
  Timing t;
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    bora::Json j = bora::parse_json(line, path);
    if (!j.contains("step_s") || j["step"].get<int64_t>() <= warmup) continue;
    t.steps.push_back(j["step_s"].get<double>());
    t.compute += j["compute_s"].get<double>();
    t.allreduce += j["allreduce_s"].get<double>();
    t.data += j["data_s"].get<double>();
    t.optimizer += j["optimizer_s"].get<double>();
    t.tokens += j["tokens"].get<double>();
    ++n;
  }
  BORA_CHECK(n > 0, DataError, path, " has no step after the warm-up");
  for (double* v : {&t.compute, &t.allreduce, &t.data, &t.optimizer, &t.tokens}) *v /= n;
  return t;
}

// Repeats pooled: median step time; breakdown as shares of the mean step.
Timing pool(const std::vector<Timing>& runs) {
  Timing p;
  double mean_step = 0;
  for (const Timing& t : runs) {
    p.steps.insert(p.steps.end(), t.steps.begin(), t.steps.end());
    p.compute += t.compute / runs.size();
    p.allreduce += t.allreduce / runs.size();
    p.data += t.data / runs.size();
    p.optimizer += t.optimizer / runs.size();
    p.tokens += t.tokens / runs.size();
    p.others += t.others / runs.size();
  }
  for (double s : p.steps) mean_step += s / p.steps.size();
  for (double* v : {&p.compute, &p.allreduce, &p.data, &p.optimizer}) *v /= mean_step;
  p.step_s = median(p.steps);
  p.tokens_per_s = p.tokens / p.step_s;
  return p;
}

Timing train(const Options& o, const std::string& bin, int np, const std::string& sampler, int repeat) {
  std::string tasks;
  for (int i = 0; i < 2 * np; ++i) tasks += (i ? "," : "") + kFiles[size_t(i)];
  const std::string run_dir = o.work + "/runs/" + sampler + "_np" + std::to_string(np) + "_" + std::to_string(repeat);
  fs::remove_all(run_dir);
  const double busy0 = machine_busy_seconds(), ours0 = children_cpu_seconds();
  bora::Stopwatch wall;
  run(mpirun(np) + bin + "/bora-train --model " + o.work + "/model --data " + o.work + "/data --tasks " + tasks +
      " --run_dir " + run_dir + " --sampler " + sampler + " --batch_size " + std::to_string(o.batch * np) +
      " --micro_batch " + std::to_string(o.batch) + " --max_steps " + std::to_string(o.steps) +
      " --adapter_r " + std::to_string(o.rank_r) + " --tau 10 --lr 1e-4 --threads 1 --eval_base false" +
      " --eval_every 1000000 --patience 0 --log_every 1 --export_adapters false --replica_check_every 100" +
      " --eval_batch 64" +
      " > " + run_dir + ".log 2>&1");
  Timing t = read_metrics(run_dir + "/metrics.jsonl", o.warmup);
  // What the rest of the machine used meanwhile: a shared machine's load explains
  // a poor efficiency better than any figure of ours.
  t.others = std::max(0.0, (machine_busy_seconds() - busy0) - (children_cpu_seconds() - ours0)) / wall.seconds();
  return t;
}

// Under mpirun: K all-reduces of n float64 (the trainer's step buffer) after a barrier.
int allreduce_bench(int argc, char** argv, int64_t n) {
  bora::World world(&argc, &argv);
  std::unique_ptr<bora::Communicator> comm = bora::make_communicator(world, torch::kCPU);
  torch::Tensor buf = torch::randn({n}, torch::kFloat64);
  const int K = 200;
  for (int i = 0; i < 10; ++i) comm->all_reduce_sum(buf);
  // The median of K timed calls, each after a barrier: robust to a rank being
  // descheduled now and then on a shared machine.
  std::vector<double> times;
  for (int i = 0; i < K; ++i) {
    comm->barrier();
    bora::Stopwatch w;
    comm->all_reduce_sum(buf);
    times.push_back(w.seconds());
  }
  std::sort(times.begin(), times.end());
  const double per = comm->all_reduce_scalar(times[K / 2], bora::ReduceOp::Max);
  if (world.rank() == 0) std::printf("%.9f\n", per);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return bora::guarded_main("bench_dist_scaling", [&] {
    const Options o = parse(argc, argv);
    if (o.allreduce > 0) return allreduce_bench(argc, argv, o.allreduce);
    BORA_CHECK(2 * o.ranks <= int(kFiles.size()), ConfigError, "at most ", kFiles.size() / 2, " ranks");
    const std::string bin = self_dir();
    fs::create_directories(o.work + "/corpus");
    fs::create_directories(o.work + "/runs");
    for (const std::string& f : kFiles) write_chunked("/usr/share/games/fortunes/" + f, o.work + "/corpus/" + f);
    const std::string enc = std::string(BORA_SOURCE_DIR) + "/.deps/gpt2";
    run(bin + "/bora-make-model --out " + o.work + "/model --vocab " + enc + "/vocab.json --merges " + enc +
        "/merges.txt --keep_merges 2000 --hidden_size " + std::to_string(o.hidden) + " --num_layers " +
        std::to_string(o.layers) + " --num_heads 4 --ffn_dim " + std::to_string(4 * o.hidden) +
        " --max_positions 256 > /dev/null 2>&1");
    fs::remove_all(o.work + "/data");
    run(bin + "/data_prep --input " + o.work + "/corpus --tokenizer " + o.work + "/model --out " + o.work +
        "/data --min_docs 0 --max_docs 0 --max_tasks 0 --max_len 128 --split_fractions 0.9,0.05,0.05 --threads 1"
        " --progress false --overwrite true > /dev/null 2>&1");
    // |Theta| for LoRA r on q_proj, v_proj: per layer and site A [r, h] + B [h, r].
    const int64_t theta = int64_t(o.layers) * 2 * 2 * o.rank_r * o.hidden;
    FILE* p = popen((mpirun(o.ranks) + bin + "/bench_dist_scaling --allreduce " + std::to_string(theta + 8)).c_str(), "r");
    char buf[64] = {0};
    BORA_CHECK(p && std::fgets(buf, sizeof buf, p), InternalError, "the all-reduce benchmark printed nothing");
    pclose(p);
    const double pure_allreduce = std::atof(buf);

    std::printf("weak scaling, 1 -> %d ranks (1 thread each; %d cores; load average at start %s)\n", o.ranks,
                int(sysconf(_SC_NPROCESSORS_ONLN)), loadavg().c_str());
    std::printf("model: OPT %d layers, hidden %d; LoRA r=%d on q_proj,v_proj: |Theta| = %lld (%.0f kB fp64 per step)\n",
                o.layers, o.hidden, o.rank_r, static_cast<long long>(theta), (theta + 8) * 8 / 1e3);
    std::printf("per rank: 2 tasks, %d sequences of 128 tokens per step; %d steps, the first %d not counted; "
                "%d repeats\n", o.batch, o.steps, o.warmup, o.repeats);
    std::printf("pure all-reduce of |Theta| + 8 float64 over %d ranks (MPI, shared memory): %.1f us (median)\n\n",
                o.ranks, pure_allreduce * 1e6);
    std::printf("%-9s %5s %6s %9s %10s %6s %8s %9s %7s %7s %9s %7s\n", "sampler", "ranks", "tasks", "step ms",
                "tokens/s", "eff", "compute", "allreduce", "data", "optim", "ar share", "others");
    bool ok = true;
    for (const std::string sampler : {"global", "balanced"}) {
      // Interleaved, so that a burst of load elsewhere hits both alike.
      std::vector<Timing> ones, manys;
      for (int rep = 0; rep < o.repeats; ++rep) {
        ones.push_back(train(o, bin, 1, sampler, rep));
        manys.push_back(train(o, bin, o.ranks, sampler, rep));
      }
      const Timing one = pool(ones), many = pool(manys);
      const double e = one.step_s / many.step_s;
      for (int k : {1, o.ranks}) {
        const Timing& t = k == 1 ? one : many;
        const std::string eff = k == 1 ? "" : std::to_string(int(std::round(e * 100))) + "%";
        std::printf("%-9s %5d %6d %9.1f %10.0f %6s %7.1f%% %8.1f%% %6.1f%% %6.1f%% %8.2f%% %7.2f\n", sampler.c_str(),
                    k, 2 * k, t.step_s * 1e3, t.tokens_per_s, eff.c_str(), 100 * t.compute, 100 * t.allreduce,
                    100 * t.data, 100 * t.optimizer, 100 * pure_allreduce / t.step_s, t.others);
      }
      std::printf("%-9s weak-scaling efficiency: %.1f%%\n", sampler.c_str(), 100 * e);
      if (sampler == "balanced") ok = e >= 0.85;
    }
    std::printf("load average at the end: %s\n", loadavg().c_str());
    std::printf("\nstep ms: median over steps and repeats; compute .. optim: shares of the mean step;\n"
                "'allreduce' = time in the step's all-reduce call, waiting for the slowest rank included;\n"
                "'ar share' = the pure collective (measured above) / the median step;\n"
                "'others' = cores used by other processes during those runs (of %d): a shared machine's load.\n",
                int(sysconf(_SC_NPROCESSORS_ONLN)));
    std::printf("claim: efficiency >= 85%% with sampler = balanced: %s\n", ok ? "HOLDS" : "FAILS");
    return ok ? 0 : 1;
  });
}
