// Checkpoints of a BoRA run: the complete training state, written by all ranks
// together, atomically, verified on load, and resumable on another number of ranks
// (docs/checkpoints.md). Files are safetensors (tensors) and JSON (everything else):
// `python -c "import safetensors..."`, `jq` and `xxhsum -H3` inspect them.
//
//   <run>/checkpoints/step_00001200/
//     tasks/<task>.safetensors    theta_d ("theta"), its AdamW moments ("exp_avg",
//                                 "exp_avg_sq") and early stopping's best theta_d
//                                 ("best"); written by the rank that owns the task
//     shared.safetensors          Theta (or the one shared adapter at tau = inf),
//                                 the same four tensors; written by rank 0
//     rng/rank_<r>.safetensors    rank r's torch generator states (dropout)
//     meta.json                   step, optimizer step counts, early stopping,
//                                 evaluation sums, timing, the resolved configuration
//                                 and its hash, the dataset manifest's hash, world
//                                 size, tasks, and every file above with its size
//                                 and XXH3-64; written by rank 0
//     COMPLETE                    written last: a folder without it is not a checkpoint
//
// Saving (collective): rank 0 empties "checkpoints/.step_<N>.tmp/", every rank writes
// its files there (each file fsync'ed) and sends rank 0 their sizes and digests;
// rank 0 writes meta.json, renames the folder to step_<N> (fsync of the parent),
// writes COMPLETE, then prunes: the newest `keep` complete checkpoints stay, and so
// do the one this run resumed from and the one at the best validation step. A
// failing write (read-only folder, full disk) throws IoError on its rank, which ends
// the job: the .tmp folder is never renamed, so the previous checkpoints are intact.
//
// Resuming (collective): `auto` tries the complete checkpoints newest first; each
// rank reads every file it needs once, sequentially, straight into the trainer's
// tensors while it checks the size and digest; a checkpoint that fails anywhere is
// skipped with a warning naming the file (an explicit path is not skipped: it is an
// error), and the next one overwrites whatever the failed one had filled in. The resolved configuration is compared key by key: a
// difference in a run-defining key is a ConfigError naming every such key.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/json.h"
#include "dist/communicator.h"
#include "model/safetensors.h"
#include "checkpoint/checkpoint_config.h"

namespace bora {

constexpr int kCheckpointFormatVersion = 1;

// What one rank contributes to a checkpoint.
struct CheckpointPayload {
  std::vector<std::pair<std::string, NamedTensors>> tasks;  // (task name, tensors), this rank's
  NamedTensors shared;  // rank 0 only (ignored elsewhere)
  NamedTensors rng;     // this rank's generator states
  OrderedJson meta;     // rank 0 only: the trainer's state record (the files table is added)
};

// An opened checkpoint: its folder and meta.json, every file this rank needs verified.
struct OpenedCheckpoint {
  std::string dir;
  Json meta;
  std::string task_file(const std::string& task) const { return dir + "/tasks/" + task + ".safetensors"; }
  std::string shared_file() const { return dir + "/shared.safetensors"; }
  std::string rng_file(int rank) const { return dir + "/rng/rank_" + std::to_string(rank) + ".safetensors"; }
};

// Keys of the resolved configuration that may change between a checkpoint and the
// run that resumes it (output, logging, evaluation cadence, performance knobs).
// Every other key defines the run.
bool is_resume_safe_key(const std::string& key);
// "key = value" lines of a resolved configuration (OptionTable::to_ini()).
std::map<std::string, std::string> parse_resolved_ini(const std::string& ini);
// The run-defining keys whose values differ, as "key: 'a' -> 'b'" lines.
std::vector<std::string> run_defining_differences(const std::map<std::string, std::string>& saved,
                                                  const std::map<std::string, std::string>& now);

class Checkpointer {
 public:
  Checkpointer(CheckpointConfig config, std::string run_dir, Communicator& comm);

  const std::string& root() const { return root_; }
  static std::string step_name(int64_t step);  // "step_00001200"
  // Complete checkpoints (COMPLETE present) under `root`, newest first.
  static std::vector<std::pair<int64_t, std::string>> list_complete(const std::string& root);

  // Collective. Writes step_<step>; returns its path.
  std::string save(int64_t step, const CheckpointPayload& payload);

  // Collective. The checkpoint to resume from, per config.resume (nullopt: start
  // fresh). For each candidate, `check(meta)` throws for an incompatible run (no
  // fallback then) and `load(opened)` reads everything this rank needs through
  // read_verified(), returning "" or the first problem; a problem on any rank
  // skips the candidate (resume = auto) or is an error (an explicit path).
  std::optional<OpenedCheckpoint> open_for_resume(
      const std::function<void(const Json& meta)>& check,
      const std::function<std::string(const OpenedCheckpoint& opened)>& load);

  // Reads the file `rel` of an opened checkpoint in one sequential pass: tensors
  // named in `tensors` are read straight into them (CPU, contiguous, matching
  // dtype and shape; other devices through a host copy), the others into new CPU
  // tensors added to the map; the XXH3 of the bytes read is compared with meta's.
  // Returns "" or the problem (size, digest, a missing tensor, dtype, shape). The tensors' contents
  // are only meaningful when it returns "".
  // read_verified() of several files on `threads` threads (files are independent;
  // concurrent reads keep the storage busy while a thread hashes or waits on a
  // file's first block). Returns "" or the first problem in the order given.
  using FileTensors = std::pair<std::string, std::map<std::string, torch::Tensor>*>;
  static std::string read_all_verified(const OpenedCheckpoint& opened, const std::vector<FileTensors>& files,
                                       int threads = 4);
  static std::string read_verified(const OpenedCheckpoint& opened, const std::string& rel,
                                   std::map<std::string, torch::Tensor>& tensors);

  // Steps since the last save (or the start) reached config.every_steps.
  bool due_by_steps(int64_t step) const;
  // config.every_minutes have passed since the last save (or the start): rank 0's
  // clock decides, the trainer shares its answer in the step's all-reduce.
  bool due_by_time() const;
  // The checkpoint at this step is never pruned (the best validation so far).
  void protect_step(int64_t step) { protected_step_ = step; }

 private:
  void prune();

  CheckpointConfig cfg_;
  std::string run_dir_, root_;
  Communicator& comm_;
  std::string resumed_from_;
  int64_t protected_step_ = -1;
  std::chrono::steady_clock::time_point last_save_;
};

// SIGTERM and SIGUSR1 (what Slurm sends before preemption or the time limit, see
// slurm/) set a flag instead of killing the process; the trainer reads it once per
// step, shares it in the step's all-reduce, writes a checkpoint and exits with
// kExitPreempted. The flag is process-wide by nature (a signal handler), the one
// global of the trainer; tests clear it with reset_stop_request().
void install_stop_signal_handlers();
bool stop_requested();
void reset_stop_request();

}  // namespace bora
