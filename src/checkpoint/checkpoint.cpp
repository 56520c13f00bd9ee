#include "checkpoint/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <cstdio>
#include <algorithm>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/options.h"
#include "core/parallel.h"

namespace bora {
namespace fs = std::filesystem;

namespace {

std::string read_text_or_empty(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return "";
  return read_file(path);
}

}  // namespace

std::map<std::string, std::string> parse_resolved_ini(const std::string& ini) {
  std::map<std::string, std::string> out;
  for (auto& [key, value] : read_ini(ini, "the resolved configuration")) out[key] = value;
  return out;
}

std::vector<std::string> run_defining_differences(const std::map<std::string, std::string>& saved,
                                                  const std::map<std::string, std::string>& now,
                                                  const OptionTable& options) {
  const std::set<std::string> safe = options.resume_safe_keys();
  const std::map<std::string, std::string> defaults = options.values();
  std::set<std::string> keys;
  for (const auto& kv : saved) keys.insert(kv.first);
  for (const auto& kv : now) keys.insert(kv.first);
  std::vector<std::string> out;
  for (const auto& k : keys) {
    if (safe.count(k)) continue;
    auto a = saved.find(k), b = now.find(k), d = defaults.find(k);
    const std::string va = a != saved.end() ? a->second : d != defaults.end() ? d->second : "(absent)";
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
    make_dirs(tmp);
  }
  comm_.barrier();

  // Every rank: one file with its tasks, its generator states (and on rank 0 the
  // shared adapter), written sequentially and fsync'ed once, digests computed on
  // the way.
  NamedTensors mine;
  for (const auto& [task, tensors] : payload.tasks)
    for (const auto& [key, t] : tensors) mine.emplace_back(checkpoint_task_tensor(task, key), t);
  if (comm_.rank() == 0)
    for (const auto& [key, t] : payload.shared) mine.emplace_back(checkpoint_shared_tensor(key), t);
  for (const auto& [key, t] : payload.rng) mine.emplace_back(checkpoint_rng_prefix(comm_.rank()) + key, t);
  const std::string rel = checkpoint_rank_file(comm_.rank());
  const OrderedJson entry = write_checkpoint_file(tmp + "/" + rel, mine);
  const std::vector<std::string> parts = comm_.gather_bytes(OrderedJson{{rel, entry}}.dump(), 0);

  if (comm_.rank() == 0) {
    OrderedJson meta = payload.meta;
    OrderedJson all = OrderedJson::object();
    for (const auto& part : parts) {
      const OrderedJson rank_files = OrderedJson::parse(part);
      for (const auto& [rel, entry] : rank_files.items()) all[rel] = entry;
    }
    meta["files"] = all;
    write_json_file_atomic(tmp + "/meta.json", meta);
    // Last chance to refuse: nothing of step_<N> exists under its final name yet.
    if (commit_guard_) commit_guard_("commit checkpoint " + name);
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

std::string checkpoint_task_tensor(const std::string& task, const std::string& name) {
  return "tasks/" + task + "/" + name;
}
std::string checkpoint_shared_tensor(const std::string& name) { return "shared/" + name; }
std::string checkpoint_rng_prefix(int rank) { return "rng/rank_" + std::to_string(rank) + "/"; }
std::string checkpoint_rank_file(int rank) { return "rank_" + std::to_string(rank) + ".safetensors"; }

OrderedJson write_checkpoint_file(const std::string& path, const NamedTensors& tensors) {
  const StDigests digests = save_safetensors(path, tensors, {{"format", "bora-checkpoint"}});
  OrderedJson tensor_digests = OrderedJson::object();
  for (size_t i = 0; i < tensors.size(); ++i) tensor_digests[tensors[i].first] = hex64(digests.tensors[i]);
  return {{"bytes", static_cast<int64_t>(fs::file_size(path))},
          {"header_xxh3", hex64(digests.header)},
          {"tensors", std::move(tensor_digests)}};
}

OpenedCheckpoint OpenedCheckpoint::index(std::string dir, Json meta) {
  OpenedCheckpoint o{std::move(dir), std::move(meta), {}};
  const Json* files = o.meta.contains("files") ? &o.meta["files"] : nullptr;
  BORA_CHECK(files && files->is_object(), FormatError, o.dir, "/meta.json has no files table");
  for (const auto& [rel, entry] : files->items()) {
    BORA_CHECK(entry.is_object() && entry.contains("tensors") && entry["tensors"].is_object(), FormatError, o.dir,
               "/meta.json: the files table's entry for ", rel, " lists no tensors");
    for (const auto& [name, digest] : entry["tensors"].items()) {
      BORA_CHECK(digest.is_string(), FormatError, o.dir, "/meta.json: the digest of tensor '", name,
                 "' is not a string");
      BORA_CHECK(o.file_of.emplace(name, rel).second, FormatError, o.dir, "/meta.json lists tensor '", name,
                 "' in two files");
    }
  }
  return o;
}

std::vector<std::string> OpenedCheckpoint::names_with_prefix(const std::string& prefix) const {
  std::vector<std::string> out;
  for (auto it = file_of.lower_bound(prefix); it != file_of.end() && it->first.compare(0, prefix.size(), prefix) == 0;
       ++it)
    out.push_back(it->first);
  return out;
}

namespace {

// One file of a checkpoint, opened for reading: its verified header.
struct OpenFile {
  std::string path;
  const Json* entry = nullptr;  // meta's files-table entry
  StHeader header;
};

// Opens `rel`, checks its size and the digest of its header against meta, parses
// the header. CheckpointError naming the file and the mismatch.
void open_checked(const OpenedCheckpoint& opened, const std::string& rel, OpenFile& out) {
  out.entry = &opened.meta.at("files").at(rel);
  out.path = opened.dir + "/" + rel;
  const UniqueFd file(::open(out.path.c_str(), O_RDONLY | O_CLOEXEC));
  const int fd = file.fd;
  BORA_CHECK(fd >= 0, CheckpointError, out.path, ": ", std::strerror(errno));
  struct stat st {};
  ::fstat(fd, &st);
  const int64_t want = out.entry->value("bytes", int64_t(-1));
  BORA_CHECK(st.st_size == want, CheckpointError, out.path, " has ", st.st_size, " bytes, meta.json says ", want);
  uint8_t len_bytes[8];
  BORA_CHECK(::pread(fd, len_bytes, 8, 0) == 8, CheckpointError, out.path, ": cannot read the header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len_bytes[i];
  BORA_CHECK(n <= static_cast<uint64_t>(st.st_size) - 8, CheckpointError, out.path, ": header length ", n,
             " runs past the end of the file");
  std::string head(8 + n, '\0');
  std::memcpy(head.data(), len_bytes, 8);
  BORA_CHECK(::pread(fd, head.data() + 8, n, 8) == static_cast<ssize_t>(n), CheckpointError, out.path,
             ": cannot read the header");
  const std::string got = hex64(hash64(head.data(), head.size()));
  BORA_CHECK(got == out.entry->value("header_xxh3", std::string()), CheckpointError, out.path,
             ": its header has checksum ", got, ", meta.json says ", out.entry->value("header_xxh3", std::string()));
  out.header = parse_st_header(reinterpret_cast<const uint8_t*>(head.data()), static_cast<uint64_t>(st.st_size), out.path);
}

// Reads the bytes of one tensor into `buf` (contiguous CPU, the tensor's size) and
// checks their digest. Each call opens the file anew: the kernel's readahead state
// is per open file, and one descriptor shared by every tensor loaded far slower
// than a descriptor per tensor (bench_checkpoint; bench/README.md).
void read_tensor_checked(const OpenFile& f, const StTensorInfo& info, const std::string& want_digest, void* buf) {
  const UniqueFd file(::open(f.path.c_str(), O_RDONLY | O_CLOEXEC));
  const int fd = file.fd;
  BORA_CHECK(fd >= 0, CheckpointError, f.path, ": ", std::strerror(errno));
  const uint64_t begin = f.header.data_start + info.begin, size = info.end - info.begin;
  ::posix_fadvise(fd, static_cast<off_t>(begin), static_cast<off_t>(size), POSIX_FADV_SEQUENTIAL);
  ::posix_fadvise(fd, static_cast<off_t>(begin), static_cast<off_t>(size), POSIX_FADV_WILLNEED);
  // 8 MiB reads, each hashed right after it lands: large enough that a cold read
  // streams (small preads read far slower), small enough that the hash finds most
  // of the piece still in the cache.
  Hasher digest;
  auto* p = static_cast<char*>(buf);
  for (uint64_t done = 0; done < size;) {
    const ssize_t k = ::pread(fd, p + done, std::min<uint64_t>(size - done, 8ULL << 20), static_cast<off_t>(begin + done));
    if (k < 0 && errno == EINTR) continue;
    BORA_CHECK(k > 0, CheckpointError, f.path, ": cannot read tensor '", info.name, "'",
               k < 0 ? cat(": ", std::strerror(errno)) : "");
    digest.update(p + done, static_cast<size_t>(k));
    done += static_cast<uint64_t>(k);
  }
  const std::string got = hex64(digest.digest());
  BORA_CHECK(got == want_digest, CheckpointError, f.path, ": tensor '", info.name, "' has checksum ", got,
             ", meta.json says ", want_digest);
}

}  // namespace

void Checkpointer::read_tensors(const OpenedCheckpoint& opened, std::map<std::string, torch::Tensor>& wanted,
                                int threads) {
  // The files involved, each opened and its header verified once.
  std::map<std::string, OpenFile> files;
  struct Job {
    const OpenFile* file;
    const StTensorInfo* info;
    torch::Tensor dst, buf;
    std::string digest;
  };
  std::vector<Job> jobs;
  for (auto& [name, dst] : wanted) {
    auto where = opened.file_of.find(name);
    BORA_CHECK(where != opened.file_of.end(), CheckpointError, opened.dir, ": no file of meta.json holds tensor '",
               name, "'");
    auto [it, fresh] = files.try_emplace(where->second);
    if (fresh) open_checked(opened, where->second, it->second);
    const OpenFile& f = it->second;
    const StTensorInfo* info = f.header.find(name);
    BORA_CHECK(info, CheckpointError, f.path, ": no tensor '", name, "' (meta.json lists it)");
    const auto dtype = to_torch_dtype(info->dtype);
    BORA_CHECK(!dst.defined() || (dst.scalar_type() == dtype && dst.sizes() == c10::IntArrayRef(info->shape)),
               CheckpointError, f.path, ": tensor '", name, "' is ", c10::IntArrayRef(info->shape), " ", dtype,
               ", this run expects ", dst.sizes(), " ", dst.scalar_type());
    if (!dst.defined()) dst = torch::empty(info->shape, torch::TensorOptions().dtype(dtype));
    const bool direct = dst.device().is_cpu() && dst.is_contiguous();
    jobs.push_back({&f, info, dst, direct ? dst : torch::empty(info->shape, torch::TensorOptions().dtype(dtype)),
                    f.entry->at("tensors").at(name).get<std::string>()});
  }
  // File order: the threads' reads advance through each file together.
  std::sort(jobs.begin(), jobs.end(), [](const Job& a, const Job& b) {
    return a.file != b.file ? a.file->path < b.file->path : a.info->begin < b.info->begin;
  });
  // The first failure in file order is rethrown; any other exception (out of
  // memory, say) is a problem of this checkpoint too, named by file and tensor.
  parallel_for(static_cast<int64_t>(jobs.size()), threads, [&](int64_t i) {
    Job& j = jobs[static_cast<size_t>(i)];
    try {
      read_tensor_checked(*j.file, *j.info, j.digest, j.buf.data_ptr());
      if (!j.buf.is_same(j.dst)) j.dst.copy_(j.buf);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      BORA_THROW(CheckpointError, j.file->path, ": tensor '", j.info->name, "': ", e.what());
    }
  });
}

std::optional<OpenedCheckpoint> Checkpointer::open_for_resume(
    const std::function<void(const Json& meta)>& check,
    const std::function<void(const OpenedCheckpoint& opened)>& load) {
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
    bool bug = false;
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
    std::optional<OpenedCheckpoint> opened;
    if (problem.empty()) {
      check(meta);  // an incompatible run is the user's error: no fallback
      try {
        opened = OpenedCheckpoint::index(dir, meta);
        load(*opened);
      } catch (const Error& e) {  // this checkpoint's problem, voted on below: skip it or fail
        problem = e.message();
      } catch (const std::exception& e) {  // a bug, not the checkpoint's: fails the run after the vote
        problem = e.what();
        bug = true;
      }
    }
    const bool ok_everywhere = comm_.all_reduce_scalar(problem.empty() ? 1.0 : 0.0, ReduceOp::Min) > 0;
    // Every rank votes first (no peer waits in the collective); then a rank whose
    // loader failed for another reason than the checkpoint stops the job.
    BORA_CHECK(!bug, InternalError, "reading checkpoint ", dir, ": ", problem);
    if (ok_everywhere) {
      resumed_from_ = dir;
      if (comm_.rank() == 0) BORA_INFO("resuming from ", dir, " (step ", meta.value("step", int64_t(0)), ")");
      return std::move(*opened);
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
