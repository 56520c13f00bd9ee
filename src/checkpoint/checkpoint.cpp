#include "checkpoint/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <cstdio>
#include <algorithm>
#include <atomic>
#include <thread>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/options.h"

namespace bora {
namespace fs = std::filesystem;

namespace {

volatile std::sig_atomic_t g_stop_signal = 0;

extern "C" void on_stop_signal(int sig) { g_stop_signal = sig; }

// Runs fn(0) .. fn(n - 1) on up to `threads` threads (this one included). Files of
// a checkpoint are independent: several in flight keep the storage busy while one
// waits on an fsync or a first read. The first exception (by index) is rethrown.
void parallel_for(size_t n, size_t threads, const std::function<void(size_t)>& fn) {
  std::vector<std::exception_ptr> errors(n);
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i; (i = next++) < n;) {
      try {
        fn(i);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < std::min(threads, n); ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
}

const std::set<std::string>& resume_safe_keys() {
  // Output, logging, evaluation cadence and performance knobs. micro_batch and
  // device change only the order of float sums; data may move (the manifest's hash
  // is checked instead); eval_every and patience are the "eval interval" a user
  // tunes while a long run is underway.
  static const std::set<std::string> keys = {
      "run_dir",      "resume",          "checkpoint_every", "checkpoint_minutes", "keep_checkpoints",
      "eval_every",   "patience",        "eval_batch",       "eval_base",          "log_every",
      "threads",      "device",          "micro_batch",      "replica_check_every", "export_adapters",
      "data",         "tokenizer"};
  return keys;
}

std::string read_text_or_empty(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return "";
  return read_file(path);
}

}  // namespace

void install_stop_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // a signal must not fail a read(2) or an MPI call
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
}
bool stop_requested() { return g_stop_signal != 0; }
void reset_stop_request() { g_stop_signal = 0; }

void CheckpointConfig::declare(OptionTable& t) {
  t.group("checkpoints");
  t.add("checkpoint_every", &every_steps, "write a checkpoint every N optimizer steps (0 = off)");
  t.add("checkpoint_minutes", &every_minutes, "write a checkpoint every T minutes of training (0 = off)");
  t.add("keep_checkpoints", &keep, "complete checkpoints kept (the newest; the best is kept as well)");
  t.add("resume", &resume,
        "'' = fresh start (refused when run_dir has checkpoints), auto = the newest loadable checkpoint of "
        "run_dir or a fresh start when there is none, or the path of a checkpoint folder");
}

void CheckpointConfig::validate() const {
  BORA_CHECK(every_steps >= 0, ConfigError, "checkpoint_every must be >= 0, got ", every_steps);
  BORA_CHECK(every_minutes >= 0, ConfigError, "checkpoint_minutes must be >= 0, got ", every_minutes);
  BORA_CHECK(keep >= 1, ConfigError, "keep_checkpoints must be >= 1, got ", keep);
}

bool is_resume_safe_key(const std::string& key) { return resume_safe_keys().count(key) > 0; }

std::map<std::string, std::string> parse_resolved_ini(const std::string& ini) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start < ini.size()) {
    size_t end = ini.find('\n', start);
    if (end == std::string::npos) end = ini.size();
    std::string line = ini.substr(start, end - start);
    start = end + 1;
    if (line.empty() || line[0] == '#' || line[0] == ';' || line[0] == '[') continue;
    const size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    auto trim = [](std::string s) {
      const size_t a = s.find_first_not_of(" \t\r"), b = s.find_last_not_of(" \t\r");
      return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
    };
    out[trim(line.substr(0, eq))] = trim(line.substr(eq + 1));
  }
  return out;
}

std::vector<std::string> run_defining_differences(const std::map<std::string, std::string>& saved,
                                                  const std::map<std::string, std::string>& now) {
  std::set<std::string> keys;
  for (const auto& kv : saved) keys.insert(kv.first);
  for (const auto& kv : now) keys.insert(kv.first);
  std::vector<std::string> out;
  for (const auto& k : keys) {
    if (is_resume_safe_key(k)) continue;
    auto a = saved.find(k), b = now.find(k);
    const std::string va = a == saved.end() ? "(absent)" : a->second;
    const std::string vb = b == now.end() ? "(absent)" : b->second;
    if (va != vb) out.push_back(cat(k, ": '", va, "' -> '", vb, "'"));
  }
  return out;
}

Checkpointer::Checkpointer(CheckpointConfig config, std::string run_dir, Communicator& comm)
    : cfg_(std::move(config)), run_dir_(std::move(run_dir)), root_(run_dir_ + "/checkpoints"), comm_(comm),
      last_save_(std::chrono::steady_clock::now()) {}

std::string Checkpointer::step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step_%08lld", static_cast<long long>(step));
  return buf;
}

std::vector<std::pair<int64_t, std::string>> Checkpointer::list_complete(const std::string& root) {
  std::vector<std::pair<int64_t, std::string>> out;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return out;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string name = e.path().filename().string();
    long long step = -1;
    char tail = 0;
    if (std::sscanf(name.c_str(), "step_%lld%c", &step, &tail) != 1 || step < 0) continue;
    if (!fs::is_regular_file(e.path() / "COMPLETE", ec)) continue;
    out.emplace_back(step, e.path().string());
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  return out;
}

bool Checkpointer::due_by_steps(int64_t step) const {
  return cfg_.every_steps > 0 && step % cfg_.every_steps == 0;
}

bool Checkpointer::due_by_time() const {
  if (cfg_.every_minutes <= 0) return false;
  const double minutes = std::chrono::duration<double>(std::chrono::steady_clock::now() - last_save_).count() / 60.0;
  return minutes >= cfg_.every_minutes;
}

std::string Checkpointer::save(int64_t step, const CheckpointPayload& payload) {
  const std::string name = step_name(step);
  const std::string tmp = root_ + "/." + name + ".tmp", final_dir = root_ + "/" + name;
  std::error_code ec;
  if (comm_.rank() == 0) {
    fs::remove_all(tmp, ec);  // the leftovers of a save that crashed at this step
    make_dirs(tmp + "/tasks");
    make_dirs(tmp + "/rng");
  }
  comm_.barrier();

  // Every rank: its tasks and its generator states, each file fsync'ed; four files
  // at a time, so that one file's fsync overlaps the next one's writing.
  std::vector<std::pair<std::string, const NamedTensors*>> todo;
  for (const auto& [task, tensors] : payload.tasks) todo.emplace_back("tasks/" + task + ".safetensors", &tensors);
  todo.emplace_back("rng/rank_" + std::to_string(comm_.rank()) + ".safetensors", &payload.rng);
  if (comm_.rank() == 0) todo.emplace_back("shared.safetensors", &payload.shared);
  std::vector<std::pair<uint64_t, int64_t>> written(todo.size());  // digest, bytes
  parallel_for(todo.size(), 4, [&](size_t i) {
    const std::string path = tmp + "/" + todo[i].first;
    written[i].first = save_safetensors(path, *todo[i].second);
    written[i].second = static_cast<int64_t>(fs::file_size(path));
  });  // the first failing file's IoError, as a sequential save would throw
  OrderedJson files = OrderedJson::object();
  for (size_t i = 0; i < todo.size(); ++i)
    files[todo[i].first] = OrderedJson{{"bytes", written[i].second}, {"xxh3", hex64(written[i].first)}};
  const std::vector<std::string> parts = comm_.gather_bytes(files.dump(), 0);

  if (comm_.rank() == 0) {
    OrderedJson meta = payload.meta;
    OrderedJson all = OrderedJson::object();
    for (const auto& part : parts) {
      const OrderedJson rank_files = OrderedJson::parse(part);
      for (const auto& [rel, entry] : rank_files.items()) all[rel] = entry;
    }
    meta["files"] = all;
    write_json_file_atomic(tmp + "/meta.json", meta);
    fsync_path(tmp + "/tasks");
    fsync_path(tmp + "/rng");
    // A folder of this name from an abandoned branch of the run (a resume from an
    // older checkpoint) is replaced only once the new one is in place.
    const std::string old = root_ + "/." + name + ".old";
    const bool replacing = fs::exists(final_dir, ec);
    if (replacing) {
      fs::remove_all(old, ec);
      rename_durable(final_dir, old);
    }
    rename_durable(tmp, final_dir);
    write_file_atomic(final_dir + "/COMPLETE", cat(name, "\n"));
    if (replacing) fs::remove_all(old, ec);
    prune();
  }
  comm_.barrier();  // nobody goes on (or exits) before the checkpoint is complete
  last_save_ = std::chrono::steady_clock::now();
  return final_dir;
}

void Checkpointer::prune() {
  std::vector<std::pair<int64_t, std::string>> complete = list_complete(root_);
  int64_t kept = 0;
  for (const auto& [step, dir] : complete) {
    std::error_code ec;
    const bool resumed = !resumed_from_.empty() && fs::equivalent(dir, resumed_from_, ec);
    const bool keep = kept < cfg_.keep || step == protected_step_ || resumed;
    if (kept < cfg_.keep) ++kept;
    if (keep) continue;
    // COMPLETE goes first: a prune interrupted half-way leaves an incomplete folder,
    // never a "complete" one with files missing.
    fs::remove(dir + "/COMPLETE", ec);
    fs::remove_all(dir, ec);
    if (ec) BORA_WARN("could not delete old checkpoint ", dir, ": ", ec.message());
  }
}

std::string Checkpointer::read_all_verified(const OpenedCheckpoint& opened, const std::vector<FileTensors>& files,
                                            int threads) {
  std::vector<std::string> problems(files.size());
  parallel_for(files.size(), static_cast<size_t>(std::max(1, threads)), [&](size_t i) {
    try {
      problems[i] = read_verified(opened, files[i].first, *files[i].second);
    } catch (const std::exception& e) {  // e.g. out of memory: a problem of this checkpoint
      problems[i] = cat(opened.dir, "/", files[i].first, ": ", e.what());
    }
  });
  for (const auto& p : problems)
    if (!p.empty()) return p;
  return "";
}

std::string Checkpointer::read_verified(const OpenedCheckpoint& opened, const std::string& rel,
                                        std::map<std::string, torch::Tensor>& tensors) {
  const Json& table = opened.meta.at("files");
  if (!table.contains(rel)) return cat(rel, " is not listed in meta.json");
  const Json& entry = table[rel];
  const std::string path = opened.dir + "/" + rel;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return cat(path, ": ", std::strerror(errno));
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  ::fstat(fd, &st);
  const int64_t want = entry.value("bytes", int64_t(-1));
  if (st.st_size != want) return cat(path, " has ", st.st_size, " bytes, meta.json says ", want);
  // The whole file is wanted, in order: start reading all of it ahead now.
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);

  // One pass in file order: every byte is read once, hashed once, and lands where
  // it is used (the digest covers the header too: it is part of the file).
  Hasher digest;
  uint64_t offset = 0;
  // 8 MiB reads, each hashed right after it lands: large enough that a cold read
  // streams (1 MiB preads measured 0.5 GB/s here against 4 GB/s), small enough
  // that the hash finds most of the piece still in the cache.
  auto read_into = [&](void* dst, uint64_t n) -> bool {
    auto* p = static_cast<char*>(dst);
    for (uint64_t done = 0; done < n;) {
      const ssize_t k = ::pread(fd, p + done, std::min<uint64_t>(n - done, 8ULL << 20), static_cast<off_t>(offset + done));
      if (k <= 0) return false;
      digest.update(p + done, static_cast<size_t>(k));
      done += static_cast<uint64_t>(k);
    }
    offset += n;
    return true;
  };
  uint8_t len_bytes[8];
  if (!read_into(len_bytes, 8)) return cat(path, ": cannot read the header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len_bytes[i];
  if (n > static_cast<uint64_t>(st.st_size) - 8) return cat(path, ": header length ", n, " runs past the end of the file");
  std::string head(8 + n, '\0');
  std::memcpy(head.data(), len_bytes, 8);
  if (!read_into(head.data() + 8, n)) return cat(path, ": cannot read the header");
  StHeader header;
  try {
    header = parse_st_header(reinterpret_cast<const uint8_t*>(head.data()), static_cast<uint64_t>(st.st_size), path);
  } catch (const Error& e) {
    return e.message();
  }
  for (const auto& [name, t] : tensors)
    if (t.defined() && !header.find(name)) return cat(path, ": no tensor '", name, "'");
  std::vector<StTensorInfo> order = header.tensors;
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.begin < b.begin; });
  for (const StTensorInfo& info : order) {
    if (header.data_start + info.begin != offset) return cat(path, ": tensor '", info.name, "' is not contiguous");
    const auto dtype = to_torch_dtype(info.dtype);
    auto it = tensors.find(info.name);
    torch::Tensor dst = it != tensors.end() && it->second.defined() ? it->second : torch::Tensor();
    if (dst.defined() && (dst.scalar_type() != dtype || dst.sizes() != c10::IntArrayRef(info.shape)))
      return cat(path, ": tensor '", info.name, "' is ", c10::IntArrayRef(info.shape), " ", dtype, ", this run expects ",
                 dst.sizes(), " ", dst.scalar_type());
    const bool direct = dst.defined() && dst.device().is_cpu() && dst.is_contiguous();
    torch::Tensor buf = direct ? dst : torch::empty(info.shape, torch::TensorOptions().dtype(dtype));
    if (!read_into(buf.data_ptr(), info.end - info.begin)) return cat(path, ": cannot read tensor '", info.name, "'");
    if (!dst.defined()) tensors[info.name] = buf;
    else if (!direct) dst.copy_(buf);
  }
  if (offset != static_cast<uint64_t>(st.st_size)) return cat(path, ": ", st.st_size - offset, " bytes after the last tensor");
  const std::string got = hex64(digest.digest());
  if (got != entry.value("xxh3", std::string()))
    return cat(path, " has checksum ", got, ", meta.json says ", entry.value("xxh3", std::string()));
  return "";
}

std::optional<OpenedCheckpoint> Checkpointer::open_for_resume(
    const std::function<void(const Json& meta)>& check,
    const std::function<std::string(const OpenedCheckpoint& opened)>& load) {
  const std::string& mode = cfg_.resume;
  // Rank 0's view of the folder decides (nodes may see a shared file system late).
  std::vector<std::string> candidates;
  std::string listing;
  if (comm_.rank() == 0) {
    if (mode.empty()) {
      const auto existing = list_complete(root_);
      BORA_CHECK(existing.empty(), ConfigError, "run_dir ", run_dir_, " already holds checkpoints (newest ",
                 existing.front().second, "): pass resume = auto to continue that run, or choose another run_dir");
    } else if (mode == "auto") {
      for (const auto& c : list_complete(root_)) listing += c.second + "\n";
    } else {
      BORA_CHECK(fs::is_regular_file(mode + "/COMPLETE"), CheckpointError, "resume = ", mode,
                 " is not a complete checkpoint (no COMPLETE marker)");
      listing = mode + "\n";
    }
  }
  listing = comm_.all_gather_bytes(listing)[0];
  for (size_t a = 0, b; a < listing.size(); a = b + 1) {
    b = listing.find('\n', a);
    candidates.push_back(listing.substr(a, b - a));
  }
  if (candidates.empty()) {
    if (comm_.rank() == 0 && mode == "auto") BORA_INFO("resume = auto: no checkpoint in ", root_, ", starting fresh");
    return std::nullopt;
  }

  for (size_t i = 0; i < candidates.size(); ++i) {
    const std::string& dir = candidates[i];
    std::string meta_text = comm_.all_gather_bytes(comm_.rank() == 0 ? read_text_or_empty(dir + "/meta.json") : "")[0];
    std::string problem;
    Json meta;
    try {
      meta = parse_json(meta_text, dir + "/meta.json");
      BORA_CHECK(meta.value("format", std::string()) == "bora-checkpoint", FormatError, dir,
                 "/meta.json is not a bora checkpoint");
      BORA_CHECK(meta.value("version", 0) == kCheckpointFormatVersion, FormatError, dir,
                 "/meta.json has format version ", meta.value("version", 0), ", this build reads ",
                 kCheckpointFormatVersion);
    } catch (const Error& e) {
      problem = e.message();
    }
    if (problem.empty() && !meta.contains("files")) problem = "meta.json has no files table";
    if (problem.empty()) {
      check(meta);  // an incompatible run is the user's error: no fallback
      try {
        problem = load(OpenedCheckpoint{dir, meta});
      } catch (const Error& e) {
        problem = e.message();
      }
    }
    const bool ok_everywhere = comm_.all_reduce_scalar(problem.empty() ? 1.0 : 0.0, "min") > 0;
    if (ok_everywhere) {
      resumed_from_ = dir;
      if (comm_.rank() == 0) BORA_INFO("resuming from ", dir, " (step ", meta.value("step", int64_t(0)), ")");
      return OpenedCheckpoint{dir, std::move(meta)};
    }
    if (!problem.empty()) BORA_WARN("checkpoint ", dir, " is unusable: ", problem);
    BORA_CHECK(mode == "auto", CheckpointError, "cannot resume from ", dir, ": it failed verification (see the warning above)");
    if (comm_.rank() == 0) {
      if (i + 1 < candidates.size())
        BORA_WARN("falling back to the previous complete checkpoint ", candidates[i + 1]);
    }
  }
  BORA_THROW(CheckpointError, "resume = auto: none of the ", candidates.size(), " complete checkpoints in ", root_,
             " is loadable (see the warnings above); move them aside to start fresh");
}

}  // namespace bora
