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

}  // namespace bora
