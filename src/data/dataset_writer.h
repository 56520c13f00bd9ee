// Writes a whole dataset folder: shard files plus manifest.json, all under
// "<out>.tmp.<pid>", which is renamed to <out> only when everything is written and
// synced. A crash or an error leaves no folder under the final name, so a half-
// written dataset is never taken for a finished one.
//
//   DatasetWriter w(out, info, options);   // info: tokenizer identity, ids, max_len, ...
//   for (TaskSequences& t : tasks_in_name_order) w.add_task(t);
//   Manifest m = w.finish();
//
// Tasks must be added in strictly increasing name order (their manifest order).
// Shards are filled in that order: a new shard starts when the current one holds
// tasks_per_shard tasks, or when the next task's tokens would take it past shard_mb
// (uncompressed; a single larger task still gets a shard of its own).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "data/manifest.h"
#include "data/shard_writer.h"

namespace bora {

struct DatasetWriteOptions {
  ShardWriteOptions shard;
  int64_t tasks_per_shard = 1;  // 0: no limit
  double shard_mb = 0;          // 0: no limit
  bool overwrite = false;       // replace an existing dataset folder at `out`
};

class DatasetWriter {
 public:
  // `info` supplies created_by, tokenizer_identity, vocab_size, bos/eos ids, max_len
  // and options; its tasks and shards are ignored. Checks `out` (check_output) and
  // creates the temporary folder (IoError when it cannot).
  DatasetWriter(const std::string& out, const Manifest& info, const DatasetWriteOptions& options);
  ~DatasetWriter();  // removes the temporary folder unless finish() succeeded
  DatasetWriter(const DatasetWriter&) = delete;
  DatasetWriter& operator=(const DatasetWriter&) = delete;

  void add_task(const TaskSequences& task);
  // Closes the last shard, writes manifest.json, syncs and renames into place.
  Manifest finish();

  const std::string& temp_dir() const { return tmp_; }

  // ConfigError when `out` exists and may not be replaced: without `overwrite`, or
  // when it is not a dataset folder (no manifest.json) and not empty.
  static void check_output(const std::string& out, bool overwrite);

 private:
  void close_shard();

  std::string out_, tmp_;
  DatasetWriteOptions options_;
  Manifest m_;
  ShardHeader header_;
  std::unique_ptr<ShardWriter> shard_;
  ShardInfo shard_info_;
  int64_t shard_bytes_ = 0;
  bool done_ = false;
};

}  // namespace bora
