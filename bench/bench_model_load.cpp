// bench_model_load: loading a 1.3 GB safetensors checkpoint beside a plain read of
// its bytes. Claim: "a 1.3 GB checkpoint loads in about the time of reading its
// bytes", and without a second full copy in memory.
//
// Writes an opt-350m-shaped checkpoint with random weights (hidden 1024, 24 post-LN
// layers, 16 heads, ffn 4096, word_embed_proj_dim 512, vocab 50272, 2048 positions:
// ~331 M parameters, ~1.3 GB F32) into --dir, then times, side by side, median of
// --reps (round-robin, so that machine noise hits every variant alike):
//   read     plain sequential read() of the file into an already-faulted buffer
//            (the reference), and into newly allocated memory (a non-mmap loader)
//   mmap     plain mmap of the file + a sum over its bytes (no LibTorch); also with
//            the page table filled first by madvise(MADV_POPULATE_READ), and the
//            sum alone over pages already mapped (the arithmetic's own cost)
//   lazy     load_causal_lm: config, header, zero-copy views of the mapping
//   touch    load_causal_lm + a sum over every parameter (what a first forward or
//            a copy to the GPU does: every byte is read once)
// with the page cache warm (the file read once first) and cold (its pages dropped
// with posix_fadvise(DONTNEED), checked with mincore). A fresh child process then
// reports resident memory after load and after touch (VmHWM, RssAnon, RssFile from
// /proc/self/status): the weights must be file-backed pages, not anonymous copies.
//
//   bench_model_load [--dir /tmp/bora_bench_model_load] [--reps 9] [--cold_reps 5] [--keep]
#include <fcntl.h>
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "core/json.h"
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

// kB values of VmHWM, VmRSS, RssAnon, RssFile.
std::map<std::string, int64_t> proc_status() {
  std::map<std::string, int64_t> out;
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    for (const char* k : {"VmHWM", "VmRSS", "RssAnon", "RssFile"}) {
      std::string key = std::string(k) + ":";
      if (line.rfind(key, 0) == 0) out[k] = std::stoll(line.substr(key.size()));
    }
  }
  return out;
}

struct Fd {
  int fd = -1;
  explicit Fd(const std::string& path) {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    BORA_CHECK(fd >= 0, IoError, "cannot open '", path, "': ", std::strerror(errno));
  }
  ~Fd() { ::close(fd); }
};

uint64_t file_size(const std::string& path) { return std::filesystem::file_size(path); }

void read_into(const std::string& path, char* buf) {
  Fd f(path);
  uint64_t size = file_size(path), done = 0;
  while (done < size) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(16u << 20, size - done));
    ssize_t n = ::read(f.fd, buf + done, want);
    if (n < 0 && errno == EINTR) continue;
    BORA_CHECK(n > 0, IoError, "read '", path, "': ", std::strerror(errno));
    done += static_cast<uint64_t>(n);
  }
}

// (a) read() in 16 MiB pieces into `buf` (allocated and faulted once, outside the timing).
double time_read(const std::string& path, std::vector<char>& buf) {
  Stopwatch clock;
  read_into(path, buf.data());
  return clock.seconds();
}

// read() into newly allocated memory (what a loader without mmap does: the kernel
// also faults in and zeroes every page of the destination). Freed outside the timing.
double time_read_fresh(const std::string& path) {
  Stopwatch clock;
  std::unique_ptr<char[]> buf(new char[file_size(path)]);
  read_into(path, buf.get());
  double t = clock.seconds();
  return t;
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14
#endif

uint64_t sum_words(const void* p, uint64_t size) {
  const uint64_t* w = static_cast<const uint64_t*>(p);
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t n = size / 8, i = 0;
  for (; i + 4 <= n; i += 4) s0 += w[i], s1 += w[i + 1], s2 += w[i + 2], s3 += w[i + 3];
  for (; i < n; ++i) s0 += w[i];
  return s0 + s1 + s2 + s3;
}

// Plain mmap + a sum over every 8-byte word (the plain form of "touch every byte"):
// pages faulted in by the sum, or first mapped in one madvise(MADV_POPULATE_READ).
// *again: a second sum over the now-mapped pages (the cost of the arithmetic alone).
double time_mmap_touch(const std::string& path, bool populate, uint64_t* checksum, double* again) {
  Stopwatch clock;
  Fd f(path);
  uint64_t size = file_size(path);
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, f.fd, 0);
  BORA_CHECK(p != MAP_FAILED, IoError, "mmap '", path, "': ", std::strerror(errno));
  if (populate && ::madvise(p, size, MADV_POPULATE_READ) != 0) {
    ::munmap(p, size);
    return -1;  // kernel without MADV_POPULATE_READ
  }
  *checksum = sum_words(p, size);
  double t = clock.seconds();
  if (again) {
    Stopwatch c2;
    BORA_CHECK(sum_words(p, size) == *checksum, InternalError, "mmap checksum changed");
    *again = c2.seconds();
  }
  ::munmap(p, size);
  return t;
}

// (b) lazy load; (c) load + a sum over every parameter. The model is destroyed
// outside the timing (like the read baseline's buffer).
double time_load(const std::string& dir, bool touch, double* total) {
  torch::NoGradGuard no_grad;
  Stopwatch clock;
  std::shared_ptr<CausalLM> m = load_causal_lm(dir);
  double s = 0;
  if (touch)
    for (const auto& p : m->parameters()) s += p.sum().item<double>();
  double t = clock.seconds();
  if (total) *total = s;
  return t;
}

// Drops the file's pages from the page cache; returns the resident fraction after.
double resident_fraction(const std::string& path) {
  Fd f(path);
  uint64_t size = file_size(path);
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, f.fd, 0);
  BORA_CHECK(p != MAP_FAILED, IoError, "mmap '", path, "': ", std::strerror(errno));
  long page = ::sysconf(_SC_PAGESIZE);
  std::vector<unsigned char> vec((size + page - 1) / page);
  BORA_CHECK(::mincore(p, size, vec.data()) == 0, IoError, "mincore: ", std::strerror(errno));
  ::munmap(p, size);
  size_t res = 0;
  for (unsigned char c : vec) res += c & 1;
  return static_cast<double>(res) / static_cast<double>(vec.size());
}

double drop_cache(const std::string& path) {
  {
    Fd f(path);
    ::fdatasync(f.fd);
    ::posix_fadvise(f.fd, 0, 0, POSIX_FADV_DONTNEED);
  }
  return resident_fraction(path);
}

OptConfig opt350m_shape(int64_t layers, int64_t hidden, int64_t heads, int64_t ffn, int64_t proj,
                        int64_t vocab, int64_t positions) {
  OptConfig c;
  c.vocab_size = vocab;
  c.hidden_size = hidden;
  c.num_hidden_layers = layers;
  c.num_attention_heads = heads;
  c.ffn_dim = ffn;
  c.word_embed_proj_dim = proj;
  c.max_position_embeddings = positions;
  c.do_layer_norm_before = false;  // opt-350m: post-LN, no final layer norm
  c.validate("bench_model_load");
  return c;
}

// The child process: resident memory of a fresh process after load and touch.
int rss_probe(const std::string& dir) {
  torch::NoGradGuard no_grad;
  auto print = [](const char* stage) {
    auto s = proc_status();
    std::printf("rss %s %lld %lld %lld\n", stage, static_cast<long long>(s["VmHWM"]),
                static_cast<long long>(s["RssAnon"]), static_cast<long long>(s["RssFile"]));
  };
  (void)torch::ones({1}).sum().item<float>();  // LibTorch's own start-up memory
  print("start");
  std::shared_ptr<CausalLM> m = load_causal_lm(dir);
  print("load");
  double s = 0;
  for (const auto& p : m->parameters()) s += p.sum().item<double>();
  print("touch");
  std::printf("sum %.17g\n", s);
  std::fflush(stdout);
  return 0;
}

int run(int argc, char** argv) {
  std::string dir = "/tmp/bora_bench_model_load";
  int reps = 9, cold_reps = 5;
  bool keep = false, cold = true;
  int64_t layers = 24, hidden = 1024, heads = 16, ffn = 4096, proj = 512, vocab = 50272, positions = 2048;
  std::string probe;
  OptionTable table("bench_model_load", "safetensors checkpoint load beside a plain read of its bytes");
  table.group("benchmark");
  table.add("dir", &dir, "scratch folder for the checkpoint (deleted at the end unless --keep)");
  table.add("keep", &keep, "keep the checkpoint (and reuse it if present, with the same shape)");
  table.add("reps", &reps, "timed repetitions per variant, warm page cache (median reported)");
  table.add("cold", &cold, "also time with the file's pages dropped from the page cache");
  table.add("cold_reps", &cold_reps, "timed repetitions per variant, cold page cache");
  table.group("model shape (defaults: opt-350m)");
  table.add("layers", &layers, "decoder layers");
  table.add("hidden", &hidden, "hidden size");
  table.add("heads", &heads, "attention heads");
  table.add("ffn", &ffn, "ffn_dim");
  table.add("proj", &proj, "word_embed_proj_dim");
  table.add("vocab", &vocab, "vocabulary size");
  table.add("positions", &positions, "max_position_embeddings");
  table.group("internal");
  table.add("rss_probe", &probe, "(internal) load the checkpoint in <dir> and print resident memory");
  if (!table.parse(argc, argv)) return 0;
  if (!probe.empty()) return rss_probe(probe);
  BORA_CHECK(reps > 0 && cold_reps > 0, ConfigError, "reps and cold_reps must be > 0");

  const OptConfig config = opt350m_shape(layers, hidden, heads, ffn, proj, vocab, positions);
  const std::string file = dir + "/model.safetensors";
  std::printf("bench_model_load: %d LibTorch thread(s), %ld online CPUs, load average %s\n",
              torch::get_num_threads(), ::sysconf(_SC_NPROCESSORS_ONLN), [] {
                std::ifstream f("/proc/loadavg");
                std::string a, b, c;
                f >> a >> b >> c;
                return a + " " + b + " " + c;
              }().c_str());

  // ---- write the checkpoint -------------------------------------------------------
  double saved_sum = 0;
  int64_t params = 0;
  {
    torch::NoGradGuard no_grad;
    auto model = std::make_shared<OptForCausalLM>(config, torch::kFloat32);
    for (const auto& p : model->parameters()) params += p.numel();
    bool reuse = keep && std::filesystem::exists(file) &&
                 std::filesystem::exists(dir + "/config.json") &&
                 OptConfig::from_json(read_json_file(dir + "/config.json"), dir).to_json() ==
                     [&] {
                       OptConfig c = config;
                       c.torch_dtype = "float32";
                       return c.to_json();
                     }();
    Stopwatch clock;
    if (reuse) {
      model.reset();
      saved_sum = 0;  // recomputed from the file below
      std::printf("reusing %s\n", file.c_str());
    } else {
      std::filesystem::remove_all(dir);
      model->init_random(42);
      double init_s = clock.seconds();
      for (const auto& p : model->parameters()) saved_sum += p.sum().item<double>();
      clock.reset();
      model->save_pretrained(dir, torch::kFloat32);
      std::printf("wrote %s: %.1f M parameters, %.3f GB, random init %.1f s, save (with fsync) %.1f s\n",
                  file.c_str(), params / 1e6, file_size(file) / 1e9, init_s, clock.seconds());
    }
  }
  ::malloc_trim(0);
  const uint64_t bytes = file_size(file);
  const double gb = static_cast<double>(bytes) / 1e9;

  // ---- warm page cache -----------------------------------------------------------
  std::vector<char> buf(bytes);
  std::memset(buf.data(), 0, buf.size());  // fault the buffer once, outside the timing
  (void)time_read(file, buf);              // warms the page cache
  std::printf("page cache: %.1f%% of the file resident after one read\n", 100 * resident_fraction(file));

  double load_sum = 0;
  uint64_t ck_first = 0;
  auto measure = [&](int n, bool drop) {
    std::map<std::string, std::vector<double>> t;
    double min_res = 1, max_res = 0;
    auto before = [&] {
      if (!drop) return;
      double r = drop_cache(file);
      min_res = std::min(min_res, r);
      max_res = std::max(max_res, r);
    };
    for (int r = 0; r < n; ++r) {
      before();
      t["read"].push_back(time_read(file, buf));
      before();
      t["fresh"].push_back(time_read_fresh(file));
      uint64_t ck = 0;
      double again = 0;
      before();
      t["mmap"].push_back(time_mmap_touch(file, false, &ck, &again));
      t["sum"].push_back(again);
      if (r == 0) ck_first = ck;
      BORA_CHECK(ck == ck_first, InternalError, "mmap checksum changed between runs");
      before();
      t["populate"].push_back(time_mmap_touch(file, true, &ck, nullptr));
      BORA_CHECK(t["populate"].back() < 0 || ck == ck_first, InternalError, "mmap checksum changed");
      before();
      t["lazy"].push_back(time_load(dir, false, nullptr));
      before();
      double s = 0;
      t["touch"].push_back(time_load(dir, true, &s));
      if (saved_sum == 0) saved_sum = s;
      BORA_CHECK(s == saved_sum, InternalError, "loaded weights sum to ", s, ", saved ", saved_sum);
      load_sum = s;
    }
    if (drop)
      std::printf("  (before each cold run: %.2f%% .. %.2f%% of the file resident)\n", 100 * min_res,
                  100 * max_res);
    std::map<std::string, double> med;
    for (auto& [k, v] : t) {
      med[k] = median(v);
      med[k + ".min"] = *std::min_element(v.begin(), v.end());
    }
    return med;
  };

  std::vector<std::pair<std::string, std::map<std::string, double>>> results;
  std::printf("\nmeasuring, page cache warm (%d reps)...\n", reps);
  results.emplace_back("warm", measure(reps, false));
  if (cold) {
    double r = drop_cache(file);
    if (r > 0.05) {
      std::printf("cold: posix_fadvise(DONTNEED) left %.1f%% of the file resident; skipped\n", 100 * r);
    } else {
      std::printf("measuring, page cache cold (%d reps)...\n", cold_reps);
      results.emplace_back("cold", measure(cold_reps, true));
    }
  }
  buf.clear();
  buf.shrink_to_fit();

  std::printf("\n%.3f GB checkpoint (%.1f M F32 parameters); median (and fastest) of the runs\n", gb,
              params / 1e6);
  std::printf("  %-6s %-48s %9s %8s %9s %9s %9s\n", "cache", "variant", "seconds", "GB/s", "vs read",
              "min s", "min ratio");
  const char* names[][2] = {{"read", "(a) read() into a buffer (reference)"},
                            {"fresh", "    read() into newly allocated memory"},
                            {"mmap", "    plain mmap + sum of every word (no LibTorch)"},
                            {"populate", "    plain mmap + MADV_POPULATE_READ + sum"},
                            {"sum", "    the sum alone, pages already mapped"},
                            {"lazy", "(b) load_causal_lm (lazy, zero-copy mmap)"},
                            {"touch", "(c) load_causal_lm + sum over every parameter"}};
  for (const auto& [cache, med] : results)
    for (const auto& [key, label] : names) {
      double s = med.at(key);
      if (s < 0) continue;
      std::printf("  %-6s %-48s %9.4f %8.2f %9.3f %9.4f %9.3f\n", cache.c_str(), label, s, gb / s,
                  s / med.at("read"), med.at(std::string(key) + ".min"),
                  med.at(std::string(key) + ".min") / med.at("read.min"));
    }

  // ---- resident memory in a fresh process ------------------------------------------
  std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
  std::string cmd = "'" + exe + "' --rss_probe '" + dir + "'";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  BORA_CHECK(pipe, IoError, "cannot run ", cmd);
  std::map<std::string, std::array<int64_t, 3>> rss;
  double probe_sum = 0;
  char line[512];
  while (std::fgets(line, sizeof line, pipe)) {
    std::istringstream is(line);
    std::string tag, stage;
    is >> tag;
    if (tag == "rss") {
      std::array<int64_t, 3> v{};
      is >> stage >> v[0] >> v[1] >> v[2];
      rss[stage] = v;
    } else if (tag == "sum") {
      is >> probe_sum;
    }
  }
  int rc = ::pclose(pipe);
  BORA_CHECK(rc == 0 && rss.size() == 3, InternalError, "the rss probe failed (", cmd, ")");
  std::printf("\nresident memory of a fresh process (MB; file %.0f MB)\n", bytes / 1e6);
  std::printf("  %-44s %9s %9s %9s\n", "stage", "VmHWM", "RssAnon", "RssFile");
  const char* stages[][2] = {{"start", "LibTorch started"},
                             {"load", "after load_causal_lm"},
                             {"touch", "after summing every parameter"}};
  for (const auto& [key, label] : stages) {
    const auto& v = rss.at(key);
    std::printf("  %-44s %9.0f %9.0f %9.0f\n", label, v[0] * 1.024e-3, v[1] * 1.024e-3, v[2] * 1.024e-3);
  }
  const double anon_growth = (rss["touch"][1] - rss["start"][1]) * 1024.0;
  std::printf("  anonymous memory added by load + touch: %.1f MB = %.2f%% of the file\n", anon_growth / 1e6,
              100 * anon_growth / bytes);

  const auto& warm = results.front().second;
  const double ratio_touch = warm.at("touch") / warm.at("read");
  std::printf("\n");
  for (const auto& [cache, m] : results)
    std::printf("ratios, %s: (c)/(a) = %.3f, (b)/(a) = %.4f; (c) / read() into new memory = %.3f, "
                "(c) / plain mmap + sum = %.3f\n",
                cache.c_str(), m.at("touch") / m.at("read"), m.at("lazy") / m.at("read"),
                m.at("touch") / m.at("fresh"), m.at("touch") / m.at("mmap"));
  const bool ok_time = ratio_touch <= 1.5;
  const bool ok_mem = anon_growth < 0.05 * static_cast<double>(bytes);
  const bool ok_sum = probe_sum == load_sum;
  std::printf("claim: load + touch within 1.5x of read(), warm: %s (%.2fx)\n", ok_time ? "PASS" : "FAIL",
              ratio_touch);
  std::printf("claim: no second copy (anonymous growth < 5%% of the file): %s (%.2f%%)\n",
              ok_mem ? "PASS" : "FAIL", 100 * anon_growth / bytes);
  std::printf("check: weights loaded equal those saved (sum %.9g): %s\n", load_sum, ok_sum ? "yes" : "NO");
  if (!keep) std::filesystem::remove_all(dir);
  return ok_time && ok_mem && ok_sum ? 0 : 1;
}

}  // namespace
}  // namespace bora

int main(int argc, char** argv) {
  return bora::guarded_main("bench_model_load", [&] { return bora::run(argc, argv); });
}
