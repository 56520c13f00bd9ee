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
#pragma once

#include <cstdio>
#include <string>

#include "core/json.h"

namespace bora {

class RunFolder {
 public:
  RunFolder(std::string dir, bool writer);
  ~RunFolder();
  RunFolder(const RunFolder&) = delete;
  RunFolder& operator=(const RunFolder&) = delete;

  const std::string& dir() const { return dir_; }
  bool writer() const { return writer_; }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  void write_text(const std::string& name, const std::string& text) const;  // atomic
  void write_json(const std::string& name, const OrderedJson& j) const;     // atomic
  // One line of metrics.jsonl, flushed at once (a killed run keeps what it logged).
  void append_metrics(const OrderedJson& record);

 private:
  std::string dir_;
  bool writer_;
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
