// bench_trainer: the cost of BoRA's multi-task bookkeeping and prior.
//
// Claim (issue "bora-train"): tokens/s of a training step with 25 tasks under the
// prior is within 15% of the same step with a single adapter and tau = 0, on this
// CPU with a small OPT config; and peak memory is reported against the analytic sum
// base + adapters + optimizer state + activations.
//
// Both variants see exactly the same token sequences: a synthetic dataset of 25
// tasks, and a copy where they are pooled into one task. Each variant runs in a
// child process (this binary with --variant), so that peak RSS is its own.
//   bench_trainer [--steps 20] [--tasks 25] [--hidden 256] [--layers 4] [--seq 64]
#include <sys/resource.h>

#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/fs.h"
#include "core/main.h"
#include "core/options.h"
#include "core/progress.h"
#include "data/dataset_writer.h"
#include "dist/communicator.h"
#include "model/opt.h"
#include "model/tokenizer.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using namespace bora;

namespace {

struct BenchConfig {
  int64_t steps = 20, warmup = 3, tasks = 25, hidden = 256, layers = 4, seq = 64, batch = 64, micro = 16;
  int64_t per_task = 96;  // training sequences per task
  std::string dir = "/tmp/bora_bench_trainer", variant, strategy = "auto";
};

int64_t vm_hwm_kb() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  return 0;
}
int64_t vm_rss_kb() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  return 0;
}

// Model folder with a GPT-2 tokenizer cut to 4000 merges, and the two datasets.
void make_inputs(const BenchConfig& b) {
  fs::remove_all(b.dir);
  make_dirs(b.dir);
  const std::string gpt2 = std::string(BORA_SOURCE_DIR) + "/.deps/gpt2/";
  Tokenizer tok = Tokenizer::from_files(gpt2 + "vocab.json", gpt2 + "merges.txt").truncated(4000);
  OptConfig c;
  c.vocab_size = tok.vocab_size();
  c.hidden_size = b.hidden;
  c.num_hidden_layers = b.layers;
  c.num_attention_heads = 4;
  c.ffn_dim = 4 * b.hidden;
  c.max_position_embeddings = 256;
  c.pad_token_id = tok.pad_id();
  c.bos_token_id = c.eos_token_id = tok.eos_id();
  OptForCausalLM m(c, torch::kFloat32);
  m.init_random(1);
  m.save_pretrained(b.dir + "/model", torch::kFloat32);
  tok.save(b.dir + "/model");

  Manifest info;
  info.created_by = "bench_trainer";
  info.tokenizer_identity = tok.identity_hex();
  info.vocab_size = tok.vocab_size();
  info.bos_id = info.eos_id = tok.eos_id();
  info.max_len = b.seq;
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int32_t> id(4, int32_t(tok.vocab_size()) - 1);
  TaskSequences pooled;
  pooled.name = pooled.source_name = "pooled";
  std::vector<TaskSequences> tasks;
  for (int64_t t = 0; t < b.tasks; ++t) {
    TaskSequences ts;
    char name[32];
    std::snprintf(name, sizeof name, "task%03lld", static_cast<long long>(t));
    ts.name = ts.source_name = name;
    for (Split s : kAllSplits) {
      const int64_t n = s == Split::Train ? b.per_task : 4;
      for (int64_t i = 0; i < n; ++i) {
        std::vector<int32_t> ids(size_t(b.seq));
        for (auto& x : ids) x = id(rng);
        ids[0] = tok.eos_id();
        ts.splits[int(s)].add(ids.data(), b.seq, 4, i, false);
        pooled.splits[int(s)].add(ids.data(), b.seq, 4, int64_t(pooled.splits[int(s)].size()), false);
      }
    }
    ts.rows = ts.documents();
    tasks.push_back(std::move(ts));
  }
  pooled.rows = pooled.documents();
  DatasetWriteOptions o;
  o.tasks_per_shard = 0;
  {
    DatasetWriter w(b.dir + "/tasks", info, o);
    for (auto& t : tasks) w.add_task(t);
    w.finish();
  }
  DatasetWriter w(b.dir + "/pooled", info, o);
  w.add_task(pooled);
  w.finish();
}

// One variant in this process: prints "tokens_per_s peak_rss_kb analytic_bytes".
int run_variant(const BenchConfig& b) {
  const int64_t rss0 = vm_rss_kb();
  TrainConfig c;
  c.model = b.dir + "/model";
  const bool multi = b.variant == "multi";
  c.data = b.dir + (multi ? "/tasks" : "/pooled");
  c.run_dir = b.dir + "/run_" + b.variant;
  c.batch_size = b.batch;
  c.micro_batch = b.micro;
  c.max_steps = b.steps + b.warmup;
  c.optim.lr = 1e-4;
  c.adapter.r = 16;
  c.adapter.alpha = 16;
  c.adapter.strategy = parse_name(kAdapterStrategyNames, "strategy", b.strategy);
  c.eval_base = false;
  c.bora.tau = multi ? 10.0 : 0.0;
  LocalCommunicator comm;
  Trainer trainer(c, "", comm, torch::kCPU);
  double seconds = 0;
  int64_t tokens = 0;
  for (int64_t s = 0; s < b.warmup + b.steps; ++s) {
    StepStats st = trainer.step();
    if (s >= b.warmup) {
      seconds += st.seconds;
      tokens += st.tokens;
    }
  }
  // Analytic bytes: base weights + adapters (rows, grad, m, v) + Theta (+ m, v) +
  // activations of one micro-batch (saved per layer: ~9 d + 2 ffn floats per token
  // and the attention probabilities, plus logits and log-softmax of the targets).
  int64_t base = 0;
  for (const auto& p : trainer.model().parameters()) base += p.numel() * 4;
  const int64_t P = trainer.bank().row_size(), T = trainer.bank().num_tasks();
  const int64_t adapters = 4 * T * P * 4 + (multi ? 3 * P * 4 : 0);
  const int64_t d = b.hidden, f = 4 * b.hidden, S = b.seq, V = trainer.model().shape().vocab_size;
  const int64_t act = b.micro * S * (b.layers * (9 * d + 2 * f + 2 * 4 * S) + 2 * V) * 4;
  std::printf("%.1f %lld %lld %lld %lld %lld %lld\n", double(tokens) / seconds, static_cast<long long>(vm_hwm_kb()),
              static_cast<long long>(rss0), static_cast<long long>(base), static_cast<long long>(adapters),
              static_cast<long long>(act), static_cast<long long>(P));
  return 0;
}

}  // namespace

int run(int argc, char** argv) {
  BenchConfig b;
  OptionTable t("bench_trainer", "Tokens/s and memory of a 25-task BoRA step vs a single-adapter tau = 0 step.");
  t.add("steps", &b.steps, "timed steps per variant");
  t.add("warmup", &b.warmup, "untimed steps first");
  t.add("tasks", &b.tasks, "tasks of the multi-task variant");
  t.add("per_task", &b.per_task, "training sequences per task");
  t.add("hidden", &b.hidden, "hidden size");
  t.add("layers", &b.layers, "layers");
  t.add("seq", &b.seq, "tokens per sequence");
  t.add("batch", &b.batch, "sequences per step");
  t.add("micro", &b.micro, "sequences per micro-batch");
  t.add("dir", &b.dir, "scratch folder");
  t.add("strategy", &b.strategy, "adapter_strategy of the multi-task variant: auto | gather | segments");
  t.add("variant", &b.variant, "internal: run one variant in this process");
  if (!t.parse(argc, argv)) return 0;
  torch::set_num_threads(1);
  if (!b.variant.empty()) return run_variant(b);

  make_inputs(b);
  double tps[2] = {0, 0};
  long long row[2][7];
  const char* variants[2] = {"single", "multi"};
  for (int v = 0; v < 2; ++v) {
    std::string cmd = std::string(argv[0]) + " --variant " + variants[v];
    for (const char* k : {"steps", "warmup", "tasks", "per_task", "hidden", "layers", "seq", "batch", "micro", "dir", "strategy"})
      cmd += std::string(" --") + k + " " + t.values().at(k);
    FILE* p = popen(cmd.c_str(), "r");
    double x = 0;
    if (!p || std::fscanf(p, "%lf %lld %lld %lld %lld %lld %lld", &x, &row[v][0], &row[v][1], &row[v][2], &row[v][3],
                          &row[v][4], &row[v][5]) != 7) {
      std::fprintf(stderr, "variant %s failed\n", variants[v]);
      return 1;
    }
    pclose(p);
    tps[v] = x;
  }
  std::printf("bench_trainer: OPT hidden %lld x %lld layers, %lld x %lld tokens per step, LoRA r=16 on q_proj,v_proj, 1 thread\n",
              (long long)b.hidden, (long long)b.layers, (long long)b.batch, (long long)b.seq);
  std::printf("  %-34s %12s %14s %14s\n", "variant", "tokens/s", "peak RSS MB", "analytic MB");
  for (int v = 0; v < 2; ++v) {
    const double analytic = double(row[v][2] + row[v][3] + row[v][4]) / 1e6;
    std::printf("  %-34s %12.0f %14.1f %14.1f   (base %.1f + adapters/optimizer %.2f + activations %.1f; RSS before load %.1f)\n",
                v ? "25 tasks, tau = 10 (gaussian prior)" : "1 adapter, tau = 0 (pooled data)", tps[v],
                double(row[v][0]) / 1024.0, analytic, row[v][2] / 1e6, row[v][3] / 1e6, row[v][4] / 1e6,
                double(row[v][1]) / 1024.0);
  }
  const double overhead = 1.0 - tps[1] / tps[0];
  std::printf("  overhead of the prior and multi-task bookkeeping: %.1f%% (target <= 15%%): %s\n", 100 * overhead,
              overhead <= 0.15 ? "PASS" : "FAIL");
  fs::remove_all(b.dir);
  return overhead <= 0.15 ? 0 : 1;
}

int main(int argc, char** argv) {
  return guarded_main("bench_trainer", [&] { return run(argc, argv); });
}
