// bench_data_reader: the dataset reader beside a plain read of the same token bytes.
// Claims: >= 50 M tokens/s sequential from a warm page cache, >= 100 k sequences/s
// random access by index.
//
// Data: the fortunes corpus tokenized with GPT-2 (max_len 256), its sequences copied
// into --tasks tasks in a different order each, written with the default data_prep
// settings (one task per shard, deflate level 6, Fletcher32, 16 Ki-token chunks).
// "Plain" is the same uint16 tokens in one flat file, read with pread (sequential)
// or copied from memory (random), widened to int32 as the reader does.
//
// --sweep adds the table that chose the default deflate level and chunk size.
//
//   bench_data_reader [--tasks 20] [--rank_tasks 4] [--reads 1000000] [--sweep]
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <random>

#include "bench/bench_data_common.h"
#include "core/main.h"
#include "core/options.h"
#include "core/progress.h"
#include "data/dataset.h"
#include "data/dataset_writer.h"
#include "data_prep/prepare.h"

namespace bora {
namespace {

struct Seq {
  std::vector<int32_t> tokens;
  int32_t prompt_len;
};

// Every sequence of a small real dataset (the fortunes, tokenized once).
std::vector<Seq> real_sequences(const std::string& dir, const Tokenizer& tok) {
  PrepConfig cfg;
  cfg.input = bench::kFortunes;
  cfg.out = dir + "/fortunes";
  cfg.vocab = bench::gpt2_dir() + "/vocab.json";
  cfg.merges = bench::gpt2_dir() + "/merges.txt";
  cfg.min_docs = 0;
  cfg.max_docs = 0;
  cfg.min_text_chars = 0;
  cfg.max_tasks = 0;
  cfg.progress = false;
  cfg.overwrite = true;
  run_data_prep(cfg, tok);
  DatasetReader r(cfg.out, {});
  std::vector<Seq> out;
  Sequence s;
  for (int64_t t : r.open_tasks())
    for (Split sp : kAllSplits)
      for (int64_t i = 0; i < r.size(t, sp); ++i) {
        r.read(t, sp, i, &s);
        out.push_back(Seq{s.tokens, s.prompt_len});
      }
  return out;
}

struct Bench {
  std::string dir;
  std::vector<TaskSequences> tasks;  // what was written, for the plain baselines
  int64_t total_tokens = 0;
  double write_seconds = 0;
  int64_t bytes_on_disk = 0;
};

Bench build(const std::string& dir, const std::vector<Seq>& pool, int ntasks, int level, int64_t chunk,
            const Manifest& info) {
  Bench b;
  b.dir = dir;
  std::mt19937_64 rng(12345);
  for (int t = 0; t < ntasks; ++t) {
    std::vector<size_t> order(pool.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    TaskSequences ts;
    char name[32];
    std::snprintf(name, sizeof name, "task-%03d", t);
    ts.name = ts.source_name = name;
    for (size_t k = 0; k < order.size(); ++k) {
      const Seq& s = pool[order[k]];
      int split = k % 4 < 2 ? 0 : (k % 4 == 2 ? 1 : 2);  // 50 / 25 / 25
      ts.splits[split].add(s.tokens.data(), static_cast<int64_t>(s.tokens.size()), s.prompt_len,
                           static_cast<int64_t>(k), false);
      b.total_tokens += static_cast<int64_t>(s.tokens.size());
    }
    ts.rows = ts.documents();
    b.tasks.push_back(std::move(ts));
  }
  DatasetWriteOptions o;
  o.shard.deflate_level = level;
  o.shard.chunk_tokens = chunk;
  o.tasks_per_shard = 1;
  o.overwrite = true;
  Stopwatch clock;
  DatasetWriter w(dir, info, o);
  for (const TaskSequences& t : b.tasks) w.add_task(t);
  Manifest m = w.finish();
  b.write_seconds = clock.seconds();
  for (const ShardInfo& s : m.shards) b.bytes_on_disk += s.bytes;
  return b;
}

// Reads every shard once so that the page cache holds them.
void warm_page_cache(const std::string& dir) {
  for (const auto& e : std::filesystem::directory_iterator(dir)) (void)read_file(e.path().string());
}

// Sequential: every sequence of every task, in order, through a fresh reader.
double sequential_reader(const Bench& b, int64_t* tokens) {
  Stopwatch clock;
  DatasetReader r(b.dir, {});
  Sequence s;
  int64_t n = 0;
  for (int64_t t : r.open_tasks())
    for (Split sp : kAllSplits)
      for (int64_t i = 0; i < r.size(t, sp); ++i) {
        r.read(t, sp, i, &s);
        n += static_cast<int64_t>(s.tokens.size());
      }
  *tokens = n;
  return clock.seconds();
}

double sequential_reader_range(const Bench& b) {
  Stopwatch clock;
  DatasetReader r(b.dir, {});
  std::vector<int32_t> tok, plen;
  std::vector<int64_t> off;
  int64_t n = 0;
  for (int64_t t : r.open_tasks())
    for (Split sp : kAllSplits)
      for (int64_t i = 0; i < r.size(t, sp); i += 512) {
        r.read_range(t, sp, i, std::min(r.size(t, sp), i + 512), &tok, &off, &plen);
        n += static_cast<int64_t>(tok.size());
      }
  if (n != b.total_tokens) std::printf("  (read_range count mismatch)\n");
  return clock.seconds();
}

// The plain baseline: the same tokens as one flat uint16 file, pread in 1 MiB blocks.
double sequential_plain(const std::string& path, bool widen) {
  int fd = ::open(path.c_str(), O_RDONLY);
  BORA_CHECK(fd >= 0, IoError, "cannot open ", path);
  std::vector<uint16_t> buf(1 << 19);
  std::vector<int32_t> wide(buf.size());
  int64_t off = 0, sum = 0;
  Stopwatch clock;
  while (true) {
    ssize_t n = ::pread(fd, buf.data(), buf.size() * 2, off);
    if (n <= 0) break;
    off += n;
    size_t k = static_cast<size_t>(n) / 2;
    if (widen) {
      for (size_t i = 0; i < k; ++i) wide[i] = buf[i];
      sum += wide[k / 2];
    } else {
      sum += buf[k / 2];
    }
  }
  double s = clock.seconds();
  ::close(fd);
  if (sum == 42) std::printf(" ");
  return s;
}

struct Pick {
  int64_t task;  // manifest index = position in Bench::tasks
  int split;
  int64_t i;
};

std::vector<Pick> random_picks(const Bench& b, int64_t first_task, int64_t ntasks, int64_t count) {
  std::mt19937_64 rng(7);
  std::vector<Pick> v;
  v.reserve(static_cast<size_t>(count));
  for (int64_t k = 0; k < count; ++k) {
    int64_t t = first_task + static_cast<int64_t>(rng() % static_cast<uint64_t>(ntasks));
    int s = static_cast<int>(rng() % 3);
    int64_t n = b.tasks[t].splits[s].size();
    v.push_back(Pick{t, s, static_cast<int64_t>(rng() % static_cast<uint64_t>(n))});
  }
  return v;
}

double random_reader(DatasetReader& r, const std::vector<Pick>& picks, int64_t* tokens) {
  Sequence s;
  int64_t n = 0;
  Stopwatch clock;
  for (const Pick& p : picks) {
    r.read(p.task, kAllSplits[p.split], p.i, &s);
    n += static_cast<int64_t>(s.tokens.size());
  }
  *tokens = n;
  return clock.seconds();
}

double random_plain(const Bench& b, const std::vector<Pick>& picks,
                    const std::vector<std::array<std::vector<uint16_t>, 3>>& mem) {
  std::vector<int32_t> out;
  int64_t sum = 0;
  Stopwatch clock;
  for (const Pick& p : picks) {
    const SplitSequences& ss = b.tasks[p.task].splits[p.split];
    const uint16_t* src = mem[p.task][p.split].data() + ss.offsets[p.i];
    size_t len = ss.offsets[p.i + 1] - ss.offsets[p.i];
    out.resize(len);
    for (size_t k = 0; k < len; ++k) out[k] = src[k];
    sum += out[len / 2];
  }
  double s = clock.seconds();
  if (sum == 42) std::printf(" ");
  return s;
}

void sweep(const std::string& dir, const std::vector<Seq>& pool, const Manifest& info) {
  std::printf("\n--sweep: 8 tasks, deflate level x chunk size (uint16 tokens), best of 3\n");
  std::printf("%6s %8s %9s %10s %14s %16s\n", "level", "chunk", "size %", "write MB/s", "seq M tok/s",
              "random seq/s*");
  for (int level : {0, 1, 4, 6, 9})
    for (int64_t chunk : {4096, 16384, 65536}) {
      Bench b = build(dir + "/sweep", pool, 8, level, chunk, info);
      warm_page_cache(b.dir);
      int64_t toks = 0, rt = 0;
      double s = 1e9, rs = 1e9;
      std::vector<Pick> picks = random_picks(b, 0, 8, 20000);
      for (int k = 0; k < 3; ++k) {  // best of three: the machine may be shared
        s = std::min(s, sequential_reader(b, &toks));
        ReaderOptions one;
        one.cache_bytes = 1;  // every read of another chunk decompresses it
        DatasetReader r(b.dir, {}, one);
        rs = std::min(rs, random_reader(r, picks, &rt));
      }
      std::printf("%6d %8lld %8.1f%% %10.1f %14.1f %16.0f\n", level, static_cast<long long>(chunk),
                  100.0 * b.bytes_on_disk / (2.0 * b.total_tokens), 2.0 * b.total_tokens / 1e6 / b.write_seconds,
                  toks / 1e6 / s, picks.size() / rs);
    }
  std::printf("  * random with a one-chunk cache: every read decompresses a chunk (worst case)\n");
}

int run(int argc, char** argv) {
  int ntasks = 20, rank_tasks = 4;
  int64_t reads = 1000000;
  bool do_sweep = false, keep = false;
  std::string dir = "/tmp/bora_bench_data_reader";
  OptionTable table("bench_data_reader", "dataset reader beside plain reads of the same bytes");
  table.add("tasks", &ntasks, "tasks in the dataset (each ~2.4 M tokens)");
  table.add("rank_tasks", &rank_tasks, "tasks read at random (one rank's share; fits the default cache)");
  table.add("reads", &reads, "random reads to time");
  table.add("sweep", &do_sweep, "also print the deflate level x chunk size table");
  table.add("dir", &dir, "scratch folder (deleted at the end unless --keep)");
  table.add("keep", &keep, "keep the scratch folder (the dataset is <dir>/ds)");
  if (!table.parse(argc, argv)) return 0;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);

  Tokenizer tok = bench::load_gpt2();
  std::vector<Seq> pool = real_sequences(dir, tok);
  Manifest info;
  info.created_by = "bench_data_reader";
  info.tokenizer_identity = tok.identity_hex();
  info.vocab_size = tok.vocab_size();
  info.bos_id = info.eos_id = tok.eos_id();
  info.max_len = 256;
  PrepConfig defaults;
  Bench b = build(dir + "/ds", pool, ntasks, defaults.compression, defaults.chunk_tokens, info);
  std::printf("dataset: %d tasks, %.1f M tokens (%.1f MB as uint16), %.1f MB on disk, written at %.0f MB/s\n",
              ntasks, b.total_tokens / 1e6, 2e-6 * b.total_tokens, b.bytes_on_disk / 1e6,
              2e-6 * b.total_tokens / b.write_seconds);

  // The plain copy: the same tokens in the reader's order, one flat file.
  std::string plain = dir + "/plain.u16";
  {
    std::string bytes;
    bytes.reserve(static_cast<size_t>(b.total_tokens) * 2);
    for (const TaskSequences& t : b.tasks)
      for (const SplitSequences& s : t.splits)
        for (int32_t id : s.tokens) {
          uint16_t u = static_cast<uint16_t>(id);
          bytes.append(reinterpret_cast<const char*>(&u), 2);
        }
    write_file_atomic(plain, bytes);
  }
  warm_page_cache(b.dir);
  (void)read_file(plain);

  // Sequential, best of 3.
  double seq = 1e9, seq_range = 1e9, p_raw = 1e9, p_wide = 1e9;
  int64_t toks = 0;
  for (int k = 0; k < 3; ++k) {
    seq = std::min(seq, sequential_reader(b, &toks));
    seq_range = std::min(seq_range, sequential_reader_range(b));
    p_raw = std::min(p_raw, sequential_plain(plain, false));
    p_wide = std::min(p_wide, sequential_plain(plain, true));
  }
  double mt = static_cast<double>(toks) / 1e6;
  std::printf("\nsequential, warm page cache (%.1f M tokens)      M tokens/s   reader/plain\n", mt);
  std::printf("  %-44s %10.1f %12.4f\n", "reader: read() per sequence", mt / seq, p_raw / seq);
  std::printf("  %-44s %10.1f %12.4f\n", "reader: read_range() of 512 sequences", mt / seq_range, p_raw / seq_range);
  std::printf("  %-44s %10.1f %12s\n", "plain pread of the uint16 tokens", mt / p_raw, "1");
  std::printf("  %-44s %10.1f %12s\n", "plain pread + widen to int32", mt / p_wide, "");

  // Random: one rank's tasks, cache warmed by one sequential pass.
  std::vector<std::array<std::vector<uint16_t>, 3>> mem(b.tasks.size());
  for (size_t t = 0; t < b.tasks.size(); ++t)
    for (int s = 0; s < 3; ++s)
      mem[t][s].assign(b.tasks[t].splits[s].tokens.begin(), b.tasks[t].splits[s].tokens.end());
  std::vector<std::string> mine;
  for (int t = 0; t < rank_tasks; ++t) mine.push_back(b.tasks[t].name);
  DatasetReader r(b.dir, mine);
  std::vector<Pick> warm = random_picks(b, 0, rank_tasks, reads / 4);
  int64_t rt = 0;
  (void)random_reader(r, warm, &rt);
  std::vector<Pick> picks = random_picks(b, 0, rank_tasks, reads);
  double rs = random_reader(r, picks, &rt);
  double ps = random_plain(b, picks, mem);
  auto st = r.cache_stats();
  std::printf("\nrandom access by index, %d tasks (%lld reads)        k seq/s  M tokens/s reader/plain\n",
              rank_tasks, static_cast<long long>(reads));
  std::printf("  %-44s %8.0f %10.1f %12.3f\n", "reader: read(task, split, i), warm cache", picks.size() / rs / 1e3,
              rt / rs / 1e6, ps / rs);
  std::printf("  %-44s %8.0f %10.1f %12s\n", "plain memcpy + widen from memory", picks.size() / ps / 1e3,
              rt / ps / 1e6, "1");
  std::printf("  cache: %.1f MB in %lld chunks, %.4f%% misses\n", st.bytes / 1e6,
              static_cast<long long>(st.chunks), 100.0 * st.misses / std::max<int64_t>(1, st.hits + st.misses));
  // The same over every task: more than the default 64 MiB cache, so reads miss.
  {
    DatasetReader all(b.dir, {});
    std::vector<Pick> p = random_picks(b, 0, ntasks, reads / 10);
    int64_t t2 = 0;
    double s2 = random_reader(all, p, &t2);
    auto st2 = all.cache_stats();
    std::printf("  %-44s %8.0f %10.1f   (%.1f%% chunk misses)\n", "reader, all tasks (more than the cache)",
                p.size() / s2 / 1e3, t2 / s2 / 1e6, 100.0 * st2.misses / std::max<int64_t>(1, st2.hits + st2.misses));
  }

  bool ok_seq = mt / seq >= 50, ok_rand = picks.size() / rs >= 100e3;
  std::printf("\nclaim: sequential >= 50 M tokens/s: %s (%.1f)\n", ok_seq ? "PASS" : "FAIL", mt / seq);
  std::printf("claim: random >= 100 k sequences/s: %s (%.0f k)\n", ok_rand ? "PASS" : "FAIL",
              picks.size() / rs / 1e3);
  if (do_sweep) sweep(dir, pool, info);
  if (!keep) std::filesystem::remove_all(dir);
  return ok_seq && ok_rand ? 0 : 1;
}

}  // namespace
}  // namespace bora

int main(int argc, char** argv) {
  return bora::guarded_main("bench_data_reader", [&] { return bora::run(argc, argv); });
}
