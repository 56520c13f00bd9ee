// The files of a run folder. Only train/ knows them; only the writer (rank 0)
// writes, every other rank holds a RunFolder that writes nothing.
//
//   <run>/config.ini          the resolved configuration (every key, with defaults)
//   <run>/metrics.jsonl       one JSON object per logged step and per evaluation
//   <run>/results.json        per-task and overall perplexities, distances, timing
//   <run>/results.md          the same as a Markdown table (the paper's appendix)
//   <run>/adapters/<task>/    final adapters (PEFT for lora, bora format otherwise)
//   <run>/adapters/shared/    the one adapter of a tau = inf run
//   <run>/theta/              Theta, the hierarchical mean (bora format)
//   <run>/checkpoints/        see checkpoint/checkpoint.h
//   <run>/LOCK                the writer's lock (train/run_lock.h): taken before
//                             anything else is written, checked before every
//                             checkpoint commit and final output, released on exit
#pragma once

#include <cstdio>
#include <memory>
#include <string>

#include "core/json.h"
#include "train/run_lock.h"

namespace bora {

class RunFolder {
 public:
  // The writer takes the folder's lock first (ConfigError naming the holder when
  // another job writes there), before it creates or writes anything in it.
  RunFolder(std::string dir, bool writer, RunLockOptions lock = {});
  ~RunFolder();
  RunFolder(const RunFolder&) = delete;
  RunFolder& operator=(const RunFolder&) = delete;

  const std::string& dir() const { return dir_; }
  bool writer() const { return writer_; }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  // Atomic; the lock is verified first (a job that lost the folder writes nothing).
  void write_text(const std::string& name, const std::string& text) const;
  void write_json(const std::string& name, const OrderedJson& j) const;
  // ConfigError naming the new holder unless this writer still holds the lock;
  // `action` says what was about to happen. A no-op on the other ranks.
  void verify_lock(const std::string& action) const;
  // One line of metrics.jsonl, flushed at once (a killed run keeps what it logged).
  void append_metrics(const OrderedJson& record);

 private:
  std::string dir_;
  bool writer_;
  std::unique_ptr<RunLock> lock_;  // the writer's; released when the folder is
  std::FILE* metrics_ = nullptr;
};

// One option of a run's resolved config.ini ("model", "data") as bora-train wrote
// it (a relative path is relative to where bora-train ran). ConfigError naming the
// run when the folder, its config.ini or the key is missing.
std::string run_option(const std::string& run_dir, const std::string& key);

// The adapter folder of `task` in a run: adapters/<task>, or adapters/shared for a
// tau = inf run. ConfigError naming the run and its tasks when there is none.
std::string run_adapter_dir(const std::string& run_dir, const std::string& task);

}  // namespace bora
