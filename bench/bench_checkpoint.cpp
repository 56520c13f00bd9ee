// bench_checkpoint: saving and loading a checkpoint beside a plain sequential write
// and read of the same number of bytes on the same disk. Claim: save and load of 25
// tasks of opt-350m-sized adapters (LoRA r = 16 on q_proj and v_proj of 24 layers of
// width 1024: 1,572,864 parameters per task) run at >= 50% of the machine's
// sequential write and read bandwidth.
//
// Per task the checkpoint holds what the trainer writes: theta_d, its two AdamW
// moments and early stopping's best copy (4 x 6.3 MB; the "about 470 MB"
// counts the first three: 472 MB for 25 tasks; with the best copy it is 629 MB),
// plus Theta and the rank's generator state, all in the rank's one file. Per
// repetition, round-robin (so that machine noise hits every variant alike; the two
// writes, and the two loads, alternate which goes first):
//   write     one file of the same bytes, write(2) in 8 MiB blocks, fsync
//   save      Checkpointer::save (one file for the rank, per-tensor digests,
//             meta.json, COMPLETE, every file fsync'ed and renamed)
//   read      the plain file, read(2) into a buffer, after its pages were dropped
//             from the page cache (posix_fadvise DONTNEED on clean, fsync'ed pages)
//   load      open_for_resume: every tensor read once, in file order, straight
//             into preallocated tensors (as the trainer's rows, moments and best
//             copies), the header's and each tensor's XXH3 checked on the way, from
//             a cold cache
//   load xN   the same with --threads reader threads (diagnostic: the trainer uses
//             one reader, as several were no faster on the test machine;
//             docs/checkpoints.md, "Speed")
// Prints the medians, the ratios save/write and load/read, and PASS or FAIL.
//
//   bench_checkpoint [--dir /tmp/bora_bench_checkpoint] [--tasks 25] [--params 1572864] [--reps 3]
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "core/error.h"
#include "core/main.h"
#include "core/options.h"
#include "core/progress.h"

namespace bora {
namespace {
namespace fs = std::filesystem;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// Drops the (clean) cached pages of every file under `path`.
void drop_cache(const std::string& path) {
  auto drop = [](const fs::path& p) {
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ::fdatasync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  };
  if (fs::is_regular_file(path)) return drop(path);
  for (const auto& e : fs::recursive_directory_iterator(path))
    if (e.is_regular_file()) drop(e.path());
}

double plain_write(const std::string& path, const std::vector<char>& block, int64_t bytes) {
  Stopwatch w;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  BORA_CHECK(fd >= 0, IoError, "cannot create ", path, ": ", std::strerror(errno));
  for (int64_t done = 0; done < bytes;) {
    const auto n = static_cast<size_t>(std::min<int64_t>(int64_t(block.size()), bytes - done));
    const ssize_t k = ::write(fd, block.data(), n);
    BORA_CHECK(k > 0, IoError, "cannot write ", path, ": ", std::strerror(errno));
    done += k;
  }
  BORA_CHECK(::fsync(fd) == 0, IoError, "cannot sync ", path);
  ::close(fd);
  return w.seconds();
}

double plain_read(const std::string& path, std::vector<char>& block) {
  Stopwatch w;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  BORA_CHECK(fd >= 0, IoError, "cannot open ", path);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  while (::read(fd, block.data(), block.size()) > 0) {
  }
  ::close(fd);
  return w.seconds();
}

int run(int argc, char** argv) {
  std::string dir = "/tmp/bora_bench_checkpoint";
  int64_t tasks = 25, params = 1572864, reps = 3, threads = 4;
  OptionTable t("bench_checkpoint", "Checkpoint save/load against plain sequential write/read of the same bytes.");
  t.add("dir", &dir, "scratch folder (about 1.3 GB is written)");
  t.add("tasks", &tasks, "tasks in the checkpoint");
  t.add("params", &params, "adapter parameters per task (opt-350m, LoRA r = 16 on q_proj, v_proj: 1572864)");
  t.add("reps", &reps, "repetitions (medians are reported)");
  t.add("threads", &threads, "reader threads of the diagnostic load row (the trainer's load uses one)");
  if (!t.parse(argc, argv)) return 0;
  fs::remove_all(dir);
  make_dirs(dir);

  // The trainer's state: rows [T, P], their moments, the best copy, Theta.
  torch::manual_seed(1);
  const auto f32 = torch::kFloat32;
  torch::Tensor rows = torch::randn({tasks, params}, f32), m = torch::randn({tasks, params}, f32),
                v = torch::rand({tasks, params}, f32), best = torch::randn({tasks, params}, f32);
  torch::Tensor theta = torch::randn({params}, f32), tm = torch::randn({params}, f32),
                tv = torch::rand({params}, f32), tbest = torch::randn({params}, f32);
  CheckpointPayload p;
  for (int64_t i = 0; i < tasks; ++i)
    p.tasks.emplace_back("task" + std::to_string(i),
                         NamedTensors{{"theta", rows[i]}, {"exp_avg", m[i]}, {"exp_avg_sq", v[i]}, {"best", best[i]}});
  p.shared = {{"theta", theta}, {"exp_avg", tm}, {"exp_avg_sq", tv}, {"best", tbest}};
  p.rng = {{"cpu", torch::zeros({5056}, torch::kUInt8)}};
  p.meta = OrderedJson{{"format", "bora-checkpoint"}, {"version", kCheckpointFormatVersion}, {"step", 1}};
  const int64_t bytes = (tasks + 1) * 4 * params * 4;
  std::printf("checkpoint of %lld tasks x %lld parameters: %.1f MB (theta, moments, best; %.1f MB without best)\n",
              static_cast<long long>(tasks), static_cast<long long>(params), bytes / 1e6, bytes * 0.75 / 1e6);

  std::vector<char> block(8 << 20, 'x');
  std::vector<double> write_s, save_s, read_s, load_s, loadn_s;
  LocalCommunicator comm;
  const std::string plain = dir + "/plain.bin";
  torch::Tensor dst = torch::empty({tasks + 1, 4, params}, f32);
  for (int64_t r = 0; r < reps; ++r) {
    fs::remove_all(dir + "/run");
    fs::remove(plain);
    // Writes alternate which goes first: the second one meets the storage still
    // busy with the first one's data (a VM's host cache drains late).
    CheckpointConfig cc;
    std::string saved;
    auto save = [&] {
      ::sync();
      Checkpointer ck(cc, dir + "/run", comm);
      Stopwatch w;
      saved = ck.save(1, p);
      save_s.push_back(w.seconds());
    };
    auto write = [&] {
      ::sync();
      write_s.push_back(plain_write(plain, block, bytes));
    };
    if (r % 2 == 0) write(), save();
    else save(), write();

    drop_cache(plain);
    read_s.push_back(plain_read(plain, block));

    cc.resume = "auto";
    auto load = [&](int64_t readers) {
      dst.zero_();  // so that the check after the loop sees what the last load read
      drop_cache(saved);
      Checkpointer loader(cc, dir + "/run", comm);
      Stopwatch clock;
      auto opened = loader.open_for_resume([](const Json&) {}, [&](const OpenedCheckpoint& o) {
        std::map<std::string, torch::Tensor> wanted;
        const char* keys[] = {"theta", "exp_avg", "exp_avg_sq", "best"};
        for (int64_t i = 0; i <= tasks; ++i)
          for (int k = 0; k < 4; ++k)
            wanted[i < tasks ? checkpoint_task_tensor("task" + std::to_string(i), keys[k])
                             : checkpoint_shared_tensor(keys[k])] = dst[i][k];
        wanted[checkpoint_rng_prefix(0) + "cpu"] = torch::Tensor();
        Checkpointer::read_tensors(o, wanted, static_cast<int>(readers));
      });
      BORA_CHECK(opened.has_value(), InternalError, "the checkpoint just saved did not open");
      return clock.seconds();
    };
    if (r % 2 == 0) load_s.push_back(load(1)), loadn_s.push_back(load(threads));
    else loadn_s.push_back(load(threads)), load_s.push_back(load(1));
    std::printf("rep %lld: write %.2f s, save %.2f s, read %.2f s, load %.2f s, load x%lld %.2f s\n",
                static_cast<long long>(r + 1), write_s.back(), save_s.back(), read_s.back(), load_s.back(),
                static_cast<long long>(threads), loadn_s.back());
  }
  BORA_CHECK(torch::equal(dst[0][0], rows[0]) && torch::equal(dst[tasks][3], tbest), InternalError,
             "loaded tensors differ from the saved ones");
  const double mb = bytes / 1e6;
  const double wr = mb / median(write_s), sv = mb / median(save_s), rd = mb / median(read_s), ld = mb / median(load_s);
  const bool ok = sv >= 0.5 * wr && ld >= 0.5 * rd;
  std::printf("\n| operation | MB/s (median of %lld) | ratio |\n|---|---:|---:|\n", static_cast<long long>(reps));
  std::printf("| plain write + fsync | %.0f | 1 |\n| checkpoint save | %.0f | %.2f |\n", wr, sv, sv / wr);
  std::printf("| plain read (cold cache) | %.0f | 1 |\n| checkpoint load (cold, verified) | %.0f | %.2f |\n", rd, ld,
              ld / rd);
  std::printf("| (diagnostic) checkpoint load, %lld reader threads | %.0f | %.2f |\n", static_cast<long long>(threads),
              mb / median(loadn_s), mb / median(loadn_s) / rd);
  std::printf("claim: save >= 0.5 x write and load >= 0.5 x read: %s\n", ok ? "PASS" : "FAIL");
  fs::remove_all(dir);
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace bora

int main(int argc, char** argv) {
  return bora::guarded_main("bench_checkpoint", [&] { return bora::run(argc, argv); });
}
