// Checkpoints of a BoRA run: the complete training state, written by all ranks
// together, atomically, verified on load, and resumable on another number of ranks
// (docs/checkpoints.md). Files are safetensors (tensors) and JSON (everything else):
// `python -c "import safetensors..."`, `jq` and `xxhsum -H3` inspect them.
//
//   <run>/checkpoints/step_00001200/
//     rank_<r>.safetensors   everything rank r holds, one file per rank (a file per
//                            task was file-count bound: 28 files read at half the
//                            speed of one file of the same bytes):
//                              tasks/<task>/{theta,exp_avg,exp_avg_sq,best}
//                                  theta_d, its AdamW moments and early stopping's
//                                  best theta_d, for each task the rank owns
//                              shared/{theta,exp_avg,exp_avg_sq,best}
//                                  Theta (or the one shared adapter at tau = inf),
//                                  rank 0 only
//                              rng/rank_<r>/{cpu,cuda}   its generator states
//     meta.json              step, optimizer step counts, early stopping,
//                            evaluation sums, timing, the resolved configuration
//                            and its hash, the dataset manifest's hash, world size,
//                            tasks, and the files table: for every file its size,
//                            the XXH3-64 of its header and of every tensor's bytes;
//                            written by rank 0
//     COMPLETE               written last: a folder without it is not a checkpoint
//
// Tensors are named by task, not by rank: a reader finds "tasks/<task>/theta" in
// whichever file the files table lists it, so a run resumed on any number of ranks
// reads exactly the tensors of the tasks it now owns, each verified on its own.
//
// Saving (collective): rank 0 empties "checkpoints/.step_<N>.tmp/", every rank writes
// its file there (fsync'ed, digests computed while writing) and sends rank 0 its
// files-table entry; rank 0 writes meta.json, asks the commit guard (the run
// folder's lock, train/run_lock.h: is this job still the folder's one writer?),
// renames the folder to step_<N> (fsync of the parent), writes COMPLETE, then prunes: the newest `keep` complete
// checkpoints stay, and so do the one this run resumed from and the one at the best
// validation step. A failing write (read-only folder, full disk) throws IoError on
// its rank, which ends the job: the .tmp folder is never renamed, so the previous
// checkpoints are intact.
//
// Resuming (collective): `auto` tries the complete checkpoints newest first; each
// rank verifies the headers of the files it needs, then reads every tensor it
// needs once, straight into the trainer's tensors, checking its digest on the way;
// a checkpoint that fails anywhere is skipped with a warning naming the file and
// tensor (an explicit path is not skipped: it is an error), and the next one
// overwrites whatever the failed one had filled in. The resolved configuration is
// compared key by key: a difference in a run-defining key is a ConfigError naming
// every such key.
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
#include "core/options.h"
#include "dist/communicator.h"
#include "model/safetensors.h"
#include "checkpoint/checkpoint_config.h"

namespace bora {

// 2: one file per rank with per-tensor digests (1: one file per task).
constexpr int kCheckpointFormatVersion = 2;

// Names of the tensors in a checkpoint (see the layout above).
std::string checkpoint_task_tensor(const std::string& task, const std::string& name);  // tasks/<task>/<name>
std::string checkpoint_shared_tensor(const std::string& name);                         // shared/<name>
std::string checkpoint_rng_prefix(int rank);                                           // rng/rank_<r>/
std::string checkpoint_rank_file(int rank);                                            // rank_<r>.safetensors

// Writes one rank's tensors to `path` (atomically, fsync'ed) and returns its entry
// of meta.json's files table: {"bytes", "header_xxh3", "tensors": {name: xxh3}}.
OrderedJson write_checkpoint_file(const std::string& path, const NamedTensors& tensors);

// What one rank contributes to a checkpoint.
struct CheckpointPayload {
  std::vector<std::pair<std::string, NamedTensors>> tasks;  // (task name, tensors), this rank's
  NamedTensors shared;  // rank 0 only (ignored elsewhere)
  NamedTensors rng;     // this rank's generator states
  OrderedJson meta;     // rank 0 only: the trainer's state record (the files table is added)
};

// An opened checkpoint: its folder, meta.json, and where each tensor lives.
struct OpenedCheckpoint {
  std::string dir;
  Json meta;
  std::map<std::string, std::string> file_of;  // tensor name -> file (relative to dir)
  // Indexes meta's files table; FormatError when it is malformed or lists a tensor twice.
  static OpenedCheckpoint index(std::string dir, Json meta);
  // The stored tensor names that start with `prefix`.
  std::vector<std::string> names_with_prefix(const std::string& prefix) const;
};

// "key = value" lines of a resolved configuration (OptionTable::to_ini()), by key.
std::map<std::string, std::string> parse_resolved_ini(const std::string& ini);
// The run-defining keys whose values differ, as "key: 'a' -> 'b'" lines. `options`
// is the tool's option table: its resume_safe() keys may differ, and a key the
// saved configuration lacks (an option added after the checkpoint was written)
// counts as its default there, so that such a checkpoint resumes as long as the new
// option keeps its default.
std::vector<std::string> run_defining_differences(const std::map<std::string, std::string>& saved,
                                                  const std::map<std::string, std::string>& now,
                                                  const OptionTable& options);

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
  // read_tensors(); an exception from it on any rank skips the candidate with a
  // warning naming the problem (resume = auto) or is a CheckpointError (an
  // explicit path).
  std::optional<OpenedCheckpoint> open_for_resume(const std::function<void(const Json& meta)>& check,
                                                  const std::function<void(const OpenedCheckpoint& opened)>& load);

  // Reads the tensors named in `wanted` from an opened checkpoint: a defined
  // tensor is filled in place (dtype and shape must match; CPU contiguous ones are
  // read straight into, others through a host copy), an undefined one becomes a
  // new CPU tensor. Each file's size and header digest are checked first, then the
  // tensors are read as independent byte ranges in file order, each hashed and
  // compared with meta's digest. CheckpointError naming the file and tensor on the
  // first problem (a missing tensor, size, digest, dtype, shape); the tensors are
  // then only partly filled. `threads` > 1 reads several tensors at once, for
  // storage that serves parallel requests faster (bench_checkpoint measures one
  // against several; the trainer uses one).
  static void read_tensors(const OpenedCheckpoint& opened, std::map<std::string, torch::Tensor>& wanted,
                           int threads = 1);

  // Steps since the last save (or the start) reached config.every_steps.
  bool due_by_steps(int64_t step) const;
  // config.every_minutes have passed since the last save (or the start): rank 0's
  // clock decides, the trainer shares its answer in the step's all-reduce.
  bool due_by_time() const;
  // The checkpoint at this step is never pruned (the best validation so far).
  void protect_step(int64_t step) { protected_step_ = step; }
  // Called on rank 0 with "commit checkpoint step_<N>" just before a checkpoint is
  // renamed into place and marked COMPLETE; it throws to refuse (the .tmp folder
  // then stays as it is, never complete).
  void set_commit_guard(std::function<void(const std::string& action)> guard) { commit_guard_ = std::move(guard); }

 private:
  void prune();

  CheckpointConfig cfg_;
  std::string run_dir_, root_;
  Communicator& comm_;
  std::string resumed_from_;
  int64_t protected_step_ = -1;
  std::function<void(const std::string&)> commit_guard_;
  std::chrono::steady_clock::time_point last_save_;
};

}  // namespace bora
