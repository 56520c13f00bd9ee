// bench_data_prep: data_prep's throughput in MB/s of raw text, beside the tokenizer
// alone on the same documents with the same threads. Claim: >= 5 MB/s on 2 cores.
//
// Corpus: the fortunes files repeated to about --mb MB (one task per file). Each
// measurement gets a freshly loaded tokenizer, so none starts with a warm BPE cache.
//
//   bench_data_prep [--mb 50] [--threads 0] [--dir /tmp/bora_bench_data_prep]
#include <atomic>
#include <cstdio>
#include <thread>

#include "bench/bench_data_common.h"
#include "core/main.h"
#include "core/options.h"
#include "core/progress.h"
#include "data_prep/corpus.h"
#include "data_prep/prepare.h"

namespace bora {
namespace {

// Tokenizer alone: encode every document of the corpus on `threads` threads.
double tokenizer_only_seconds(const Corpus& corpus, const Tokenizer& tok, int threads) {
  std::atomic<int64_t> next{0}, sink{0};  // sink: the token count, so nothing is optimised away
  const int64_t n = static_cast<int64_t>(corpus.records.size());
  Stopwatch clock;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      std::vector<int32_t> ids;
      int64_t count = 0;
      for (int64_t b; (b = next.fetch_add(64)) < n;)
        for (int64_t i = b; i < std::min(n, b + 64); ++i) {
          ids.clear();
          tok.encode_into(corpus.records[i].text, &ids);
          count += static_cast<int64_t>(ids.size());
        }
      sink += count;
    });
  for (auto& th : pool) th.join();
  double s = clock.seconds();
  if (sink.load() == 0) std::printf("  (no tokens?)\n");
  return s;
}

int run(int argc, char** argv) {
  double mb = 50;
  int threads = 0;
  std::string dir = "/tmp/bora_bench_data_prep";
  OptionTable table("bench_data_prep", "data_prep throughput beside the tokenizer alone");
  table.add("mb", &mb, "corpus size in MB (the fortunes repeated)");
  table.add("threads", &threads, "threads for both (0: hardware threads)");
  table.add("dir", &dir, "scratch folder (deleted at the end)");
  if (!table.parse(argc, argv)) return 0;
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  int64_t once = 0;
  for (const auto& f : bench::fortune_files()) once += static_cast<int64_t>(f.second.size());
  int copies = std::max(1, static_cast<int>(mb * 1e6 / static_cast<double>(once) + 0.5));
  std::string corpus_dir = dir + "/corpus";
  int64_t bytes = bench::write_repeated_corpus(corpus_dir, copies);
  std::printf("corpus: %d fortune files x %d copies = %.1f MB, %d threads\n",
              static_cast<int>(bench::fortune_files().size()), copies, bytes / 1e6, threads);

  PrepConfig cfg;
  cfg.input = corpus_dir;
  cfg.vocab = bench::gpt2_dir() + "/vocab.json";
  cfg.merges = bench::gpt2_dir() + "/merges.txt";
  cfg.min_docs = 0;
  cfg.max_docs = 0;
  cfg.min_text_chars = 0;
  cfg.max_tasks = 0;
  cfg.threads = threads;
  cfg.progress = false;
  cfg.overwrite = true;

  // Each measurement twice, the faster counts: the first run of a process also pays
  // for growing the heap (page faults are costly on a VM) and the machine is shared.
  // 1. The tokenizer alone (its load time excluded, as for data_prep).
  double tok_s = 1e9;
  for (int k = 0; k < 2; ++k) {
    Corpus corpus = read_text_folder(corpus_dir, cfg.corpus_options());
    Tokenizer tok = bench::load_gpt2();
    tok_s = std::min(tok_s, tokenizer_only_seconds(corpus, tok, threads));
  }
  // 2. data_prep, reference max_len (long documents are cut: their tail is not encoded),
  // and 3. with no truncation: every token of every document, like the tokenizer.
  auto prep = [&](int64_t max_len, const std::string& out) {
    PrepResult best;
    best.seconds = 1e9;
    for (int k = 0; k < 2; ++k) {
      Tokenizer tok = bench::load_gpt2();
      cfg.out = dir + "/" + out;
      cfg.max_len = max_len;
      PrepResult r = run_data_prep(cfg, tok);
      if (r.seconds < best.seconds) best = r;
    }
    return best;
  };
  PrepResult r256 = prep(256, "ds256");
  PrepResult rall = prep(int64_t(1) << 30, "dsall");

  auto mbps = [&](double s) { return static_cast<double>(bytes) / 1e6 / s; };
  std::printf("\n%-34s %10s %10s %12s\n", "", "seconds", "MB/s", "vs tokenizer");
  std::printf("%-34s %10.2f %10.2f %12s\n", "tokenizer alone (encode only)", tok_s, mbps(tok_s), "1.00");
  std::printf("%-34s %10.2f %10.2f %12.2f\n", "data_prep, max_len 256", r256.seconds, mbps(r256.seconds),
              tok_s / r256.seconds);
  std::printf("%-34s %10.2f %10.2f %12.2f\n", "data_prep, no truncation", rall.seconds, mbps(rall.seconds),
              tok_s / rall.seconds);
  std::printf("  phases (read+select+split / tokenize / write):  %.2f / %.2f / %.2f s (max_len 256),"
              "  %.2f / %.2f / %.2f s (no truncation)\n",
              r256.read_seconds, r256.tokenize_seconds, r256.write_seconds, rall.read_seconds,
              rall.tokenize_seconds, rall.write_seconds);
  std::printf("  output: %.1f MB (max_len 256), %.1f MB (no truncation)\n", r256.output_bytes / 1e6,
              rall.output_bytes / 1e6);
  double worst = std::min(mbps(r256.seconds), mbps(rall.seconds));
  std::printf("\nclaim: data_prep >= 5 MB/s of raw text: %s (%.2f MB/s)\n", worst >= 5 ? "PASS" : "FAIL", worst);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return worst >= 5 ? 0 : 1;
}

}  // namespace
}  // namespace bora

int main(int argc, char** argv) {
  return bora::guarded_main("bench_data_prep", [&] { return bora::run(argc, argv); });
}
