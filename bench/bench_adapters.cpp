// bench_adapters: the multi-task adapter bank on CPU. Claims:
//   1. a batch mixing 16 tasks trains at >= 0.8x the throughput of the same batch
//      with a single adapter, and >= 2x a loop that runs the tasks one by one;
//   2. adding a task costs its adapter tensors (and their optimizer state) only.
//
// Throughput: one training step = bind + target_nll + bora::backward (no optimizer
// update: it is T x P element-wise work, the same in every variant), on a small OPT
// (default hidden 256, 4 layers, 4 heads, ffn 1024, vocab 4096, pre-LN) with LoRA
// r=16 on q_proj,v_proj, a batch of --tasks x --rows_per_task rows of --seq tokens,
// rows grouped by task. Variants, timed round-robin (median of --reps):
//   single     a bank of 1 task: every row uses the same adapter (plain matmuls)
//   gather     the 16-task batch, strategy gather (index_select + bmm)
//   segments   the 16-task batch, strategy segments (one matmul per task segment)
//   loop       a loop over the 16 tasks, each task's rows in its own fwd + bwd
// and two diagnostics: "single" cut into the loop's batch sizes (one adapter, 16
// steps of 3 rows: what the loop costs without any multi-task work), and the
// 16-task batch through a bank of --big_bank tasks (the per-step cost of a larger
// bank), with both strategies.
//
// On CPU, (b)/(c) measures the loop's per-call overhead (dispatch, autograd, small
// matmuls that one core runs), not adapters: the "single, loop's sizes" row is the
// loop without any multi-task work and costs the same. The ratio therefore depends
// on a task's share of the batch and on the model's width; bench/adapters_grid.sh
// prints it over both.
//
// Memory: for 1, 16 and 128 tasks, the bytes that the bank (rows + gradient
// buffer) and an AdamW state (m and v, two more [T, P] tensors) allocate, measured
// with glibc mallinfo2() (in use + mmapped) around their construction, against the
// analytic 4 buffers x P floats x 4 bytes per task.
//
//   OMP_NUM_THREADS=1 bench_adapters [--rows_per_task 3] [--seq 64] [--reps 7]
#include <ATen/CPUGeneratorImpl.h>
#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <vector>

#include "adapters/adapter_config.h"
#include "adapters/bank.h"
#include "core/error.h"
#include "core/main.h"
#include "core/options.h"
#include "core/progress.h"
#include "model/causal_lm.h"
#include "model/opt.h"

namespace bora {
namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int64_t heap_bytes() {
  struct mallinfo2 mi = ::mallinfo2();
  return static_cast<int64_t>(mi.uordblks + mi.hblkhd);
}

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

struct Batch {
  torch::Tensor ids, mask, targets;
  Batch rows(int64_t start, int64_t n) const {
    return {ids.narrow(0, start, n), mask.narrow(0, start, n), targets.narrow(0, start, n)};
  }
};

// Forward + backward of the mean target NLL of `b`, rows bound to `row_task`.
void step(CausalLM& model, const AdapterBank& bank, const Batch& b, const std::vector<int64_t>& row_task) {
  std::unique_ptr<LinearAdapter> adapter = bank.bind(row_task, /*training=*/true);
  torch::Tensor nll = target_nll(model, b.ids, b.mask, b.targets, adapter.get());
  torch::Tensor loss = nll.sum() / b.targets.sum();
  backward(loss);
}

AdapterSpec make_spec(const AdapterConfig& base, const ModelShape& shape, const std::string& strategy) {
  AdapterConfig c = base;
  c.strategy = parse_name(kAdapterStrategyNames, "adapter_strategy", strategy);
  c.validate();
  return AdapterSpec::resolve(c, shape);
}

// A bank whose rows are small random numbers (so that every task's adapter differs
// and is non-zero; the cost of a step does not depend on the values). Task t has
// the same row in every bank, so that the variants' gradients can be compared.
std::unique_ptr<AdapterBank> make_bank(const AdapterSpec& spec, const ModelShape& shape, int64_t tasks) {
  auto bank = std::make_unique<AdapterBank>(spec, shape, tasks);
  torch::NoGradGuard g;
  auto gen = at::detail::createCPUGenerator(99);
  bank->rows().normal_(0.0, 0.02, gen);  // row-major: row t does not depend on `tasks`
  return bank;
}

int run(int argc, char** argv) {
  int64_t hidden = 256, layers = 4, heads = 4, ffn = 1024, vocab = 4096;
  int64_t tasks = 16, rows_per_task = 3, seq = 64, big_bank = 128;
  int reps = 7, warmup = 2;
  AdapterConfig adapter;  // lora r=16 alpha 16 on q_proj,v_proj
  std::string mem_tasks = "1,16,128";
  OptionTable table("bench_adapters", "multi-task adapter bank: mixed batches vs one adapter vs a loop");
  table.group("model");
  table.add("hidden", &hidden, "hidden size");
  table.add("layers", &layers, "decoder layers");
  table.add("heads", &heads, "attention heads");
  table.add("ffn", &ffn, "ffn_dim");
  table.add("vocab", &vocab, "vocabulary size");
  table.group("batch");
  table.add("tasks", &tasks, "tasks mixed in one batch");
  table.add("rows_per_task", &rows_per_task, "rows of each task in the batch");
  table.add("seq", &seq, "tokens per row");
  table.add("big_bank", &big_bank, "also run the mixed batch through a bank of this many tasks (0: no)");
  table.add("reps", &reps, "timed steps per variant (median reported)");
  table.add("warmup", &warmup, "untimed steps per variant first");
  table.add("mem_tasks", &mem_tasks, "bank sizes for the memory table");
  adapter.declare(table);
  if (!table.parse(argc, argv)) return 0;
  BORA_CHECK(tasks >= 2 && rows_per_task >= 1 && seq >= 2 && reps >= 1, ConfigError,
             "need tasks >= 2, rows_per_task >= 1, seq >= 2, reps >= 1");
  torch::manual_seed(7);

  OptConfig cfg;
  cfg.vocab_size = vocab;
  cfg.hidden_size = hidden;
  cfg.num_hidden_layers = layers;
  cfg.num_attention_heads = heads;
  cfg.ffn_dim = ffn;
  cfg.max_position_embeddings = std::max<int64_t>(seq, 64);
  cfg.validate("bench_adapters");
  auto model = std::make_shared<OptForCausalLM>(cfg, torch::kFloat32);
  model->init_random(1);
  const ModelShape& shape = model->shape();

  const int64_t B = tasks * rows_per_task;
  Batch batch;
  batch.ids = torch::randint(3, vocab, {B, seq}, torch::kLong);
  batch.mask = torch::ones({B, seq}, torch::kLong);
  batch.targets = torch::ones({B, seq}, torch::kBool);
  batch.targets.select(1, 0).fill_(false);
  const double tokens = static_cast<double>(B * seq);

  std::vector<int64_t> mixed(static_cast<size_t>(B)), single(static_cast<size_t>(B), 0);
  for (int64_t b = 0; b < B; ++b) mixed[static_cast<size_t>(b)] = b / rows_per_task;

  AdapterSpec gather = make_spec(adapter, shape, "gather");
  AdapterSpec segments = make_spec(adapter, shape, "segments");
  AdapterSpec autos = make_spec(adapter, shape, "auto");
  auto bank1 = make_bank(autos, shape, 1);
  auto bank_g = make_bank(gather, shape, tasks);
  auto bank_s = make_bank(segments, shape, tasks);
  std::unique_ptr<AdapterBank> big_g, big_s;
  if (big_bank > tasks) {
    big_g = make_bank(gather, shape, big_bank);
    big_s = make_bank(segments, shape, big_bank);
  }

  std::printf("bench_adapters: %d LibTorch thread(s), load average %s\n", torch::get_num_threads(),
              loadavg().c_str());
  std::printf("model: OPT hidden %lld, %lld layers, %lld heads, ffn %lld, vocab %lld (%.1f M parameters, frozen)\n",
              static_cast<long long>(hidden), static_cast<long long>(layers), static_cast<long long>(heads),
              static_cast<long long>(ffn), static_cast<long long>(vocab), [&] {
                int64_t n = 0;
                for (const auto& p : model->parameters()) n += p.numel();
                return n / 1e6;
              }());
  std::printf("adapter: %s, P = %lld trainable floats per task\n", bank1->spec().describe().c_str(),
              static_cast<long long>(bank1->row_size()));
  std::printf("batch: %lld tasks x %lld rows x %lld tokens = %.0f tokens per step (fwd + bwd)\n",
              static_cast<long long>(tasks), static_cast<long long>(rows_per_task),
              static_cast<long long>(seq), tokens);
  std::printf("largest activation: LM-head logits, %lld x %lld floats = %.1f MB per batch, %.1f MB per task's rows\n\n",
              static_cast<long long>(B * (seq - 1)), static_cast<long long>(vocab), 4e-6 * B * (seq - 1) * vocab,
              4e-6 * rows_per_task * (seq - 1) * vocab);

  struct Variant {
    std::string key, label;
    std::function<void()> run;
  };
  std::vector<Variant> variants = {
      {"single", "(a) one adapter (bank of 1) for the whole batch",
       [&] { bank1->zero_grad(); step(*model, *bank1, batch, single); }},
      {"gather", "(b) " + std::to_string(tasks) + " tasks mixed, strategy gather",
       [&] { bank_g->zero_grad(); step(*model, *bank_g, batch, mixed); }},
      {"segments", "(b) " + std::to_string(tasks) + " tasks mixed, strategy segments",
       [&] { bank_s->zero_grad(); step(*model, *bank_s, batch, mixed); }},
      {"loop", "(c) loop over the " + std::to_string(tasks) + " tasks, fwd + bwd each",
       [&] {
         bank_s->zero_grad();
         for (int64_t t = 0; t < tasks; ++t)
           step(*model, *bank_s, batch.rows(t * rows_per_task, rows_per_task),
                std::vector<int64_t>(static_cast<size_t>(rows_per_task), t));
       }},
  };
  // The loop's batch size without the multi-task part: separates the cost of
  // small batches (per-op overhead, or the cache and page-fault behaviour of large
  // activations) from the cost of binding a task per call.
  variants.push_back({"single_split", "    one adapter, but " + std::to_string(tasks) + " steps of " +
                                          std::to_string(rows_per_task) + " rows (loop's sizes)",
                      [&] {
                        bank1->zero_grad();
                        std::vector<int64_t> zeros(static_cast<size_t>(rows_per_task), 0);
                        for (int64_t t = 0; t < tasks; ++t)
                          step(*model, *bank1, batch.rows(t * rows_per_task, rows_per_task), zeros);
                      }});
  if (big_g) {
    variants.push_back({"big_gather", "    " + std::to_string(tasks) + " tasks mixed, gather, bank of " + std::to_string(big_bank),
                        [&] { big_g->zero_grad(); step(*model, *big_g, batch, mixed); }});
    variants.push_back({"big_segments", "    " + std::to_string(tasks) + " tasks mixed, segments, bank of " + std::to_string(big_bank),
                        [&] { big_s->zero_grad(); step(*model, *big_s, batch, mixed); }});
  }
  // Same gradients whatever the strategy (a sanity check that the variants do the same work).
  {
    variants[1].run();
    variants[2].run();
    double diff = (bank_g->grad_rows() - bank_s->grad_rows()).abs().max().item<double>();
    double scale = bank_s->grad_rows().abs().max().item<double>();
    variants[3].run();
    // The loop averages each task's rows on its own: its gradient is tasks x the mixed one.
    double diff_loop =
        (bank_s->grad_rows() - bank_g->grad_rows() * static_cast<double>(tasks)).abs().max().item<double>() /
        static_cast<double>(tasks);
    std::printf("check: max |grad gather - grad segments| = %.2e, max |grad loop / %lld - grad gather| = %.2e "
                "(max |grad| %.2e)\n\n",
                diff, static_cast<long long>(tasks), diff_loop, scale);
  }

  for (int w = 0; w < warmup; ++w)
    for (auto& v : variants) v.run();
  std::map<std::string, std::vector<double>> times;
  for (int r = 0; r < reps; ++r)
    for (auto& v : variants) {
      Stopwatch clock;
      v.run();
      times[v.key].push_back(clock.seconds());
    }
  std::map<std::string, double> med;
  for (auto& [k, t] : times) med[k] = median(t);

  std::printf("training step (fwd + bwd), median of %d, load average %s\n", reps, loadavg().c_str());
  std::printf("  %-56s %9s %10s %8s %8s\n", "variant", "ms/step", "tokens/s", "vs (a)", "vs (c)");
  for (const auto& v : variants) {
    double s = med[v.key];
    std::printf("  %-56s %9.1f %10.0f %8.3f %8.3f\n", v.label.c_str(), 1e3 * s, tokens / s,
                med["single"] / s, med["loop"] / s);
  }
  const double g_a = med["single"] / med["gather"], g_c = med["loop"] / med["gather"];
  const double s_a = med["single"] / med["segments"], s_c = med["loop"] / med["segments"];
  std::printf("\nratios (throughput): gather (b)/(a) = %.3f, (b)/(c) = %.3f; segments (b)/(a) = %.3f, (b)/(c) = %.3f\n",
              g_a, g_c, s_a, s_c);
  const bool seg_faster = med["segments"] < med["gather"];
  std::printf("faster on this CPU: %s (by %.1f%%); the bank's auto choice is gather%s\n",
              seg_faster ? "segments" : "gather",
              100 * std::abs(med["gather"] / med["segments"] - 1.0),
              seg_faster ? " (this run says segments)" : " (agrees)");

  // ---- memory per task ------------------------------------------------------------
  std::printf("\nmemory: bank (rows + gradient) + AdamW m and v, measured with mallinfo2\n");
  std::printf("  %6s %14s %14s %14s %14s %8s\n", "tasks", "bank bytes", "+ m, v bytes", "bytes/task",
              "analytic/task", "ratio");
  const int64_t P = bank1->row_size();
  const double analytic = 4.0 * static_cast<double>(P) * 4.0;
  std::map<int64_t, int64_t> total_of;
  bool mem_ok = true;
  for (const std::string& s : split_list(mem_tasks)) {
    int64_t T = parse_int("mem_tasks", s);
    ::malloc_trim(0);
    int64_t h0 = heap_bytes();
    int64_t bank_bytes = 0, total = 0;
    {
      AdapterBank bank(segments, shape, T);
      bank_bytes = heap_bytes() - h0;
      torch::Tensor m = torch::zeros_like(bank.rows()), v = torch::zeros_like(bank.rows());
      total = heap_bytes() - h0;
    }
    total_of[T] = total;
    double per = static_cast<double>(total) / static_cast<double>(T);
    std::printf("  %6lld %14lld %14lld %14.0f %14.0f %8.4f\n", static_cast<long long>(T),
                static_cast<long long>(bank_bytes), static_cast<long long>(total), per, analytic, per / analytic);
    mem_ok = mem_ok && per / analytic < 1.05 && per / analytic > 0.95;
  }
  if (total_of.size() >= 2) {
    auto lo = total_of.begin(), hi = std::prev(total_of.end());
    double marginal = static_cast<double>(hi->second - lo->second) / static_cast<double>(hi->first - lo->first);
    std::printf("  marginal bytes per added task (%lld -> %lld tasks): %.0f = %.4f x analytic (4 x P x 4 B = %.0f)\n",
                static_cast<long long>(lo->first), static_cast<long long>(hi->first), marginal,
                marginal / analytic, analytic);
  }

  const bool ok_a = std::max(g_a, s_a) >= 0.8, ok_c = std::max(g_c, s_c) >= 2.0;
  std::printf("\nclaim: mixed >= 0.8x single adapter: %s (gather %.2f, segments %.2f)\n", ok_a ? "PASS" : "FAIL",
              g_a, s_a);
  std::printf("claim: mixed >= 2x loop over tasks: %s (gather %.2f, segments %.2f)\n", ok_c ? "PASS" : "FAIL", g_c,
              s_c);
  std::printf("claim: bytes per task = adapter + optimizer state (within 5%%): %s\n", mem_ok ? "PASS" : "FAIL");
  return ok_a && ok_c && mem_ok ? 0 : 1;
}

}  // namespace
}  // namespace bora

int main(int argc, char** argv) {
  return bora::guarded_main("bench_adapters", [&] { return bora::run(argc, argv); });
}
