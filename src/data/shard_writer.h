// Writes one shard file of a dataset (format.h has the layout). data_prep builds the
// sequences of a group of tasks, then writes them through one ShardWriter:
//
//   ShardWriter w(dir + "/shard-00000.h5", header, options);
//   w.add_task(task_a, 0);  w.add_task(task_b, 1);
//   w.close();
//
// Every dataset is chunked (1-D chunks of `chunk_tokens` elements, fewer when the
// dataset is shorter), deflate-compressed and Fletcher32-checksummed; the checksum
// is the last filter, so it covers the bytes on disk and a reader detects a changed
// byte before inflating. Empty datasets are contiguous (nothing to chunk). Files are
// deterministic: no object timestamps, so the same input gives the same bytes.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/format.h"
#include "data/hdf5_util.h"
#include "data/manifest.h"

namespace bora {

// The sequences of one split of one task, concatenated.
struct SplitSequences {
  std::vector<int32_t> tokens;
  std::vector<uint64_t> offsets{0};  // size() + 1 entries; offsets[0] = 0
  std::vector<int32_t> prompt_len;
  std::vector<int64_t> doc_index;
  int64_t truncated = 0;

  int64_t size() const { return static_cast<int64_t>(prompt_len.size()); }
  void add(const int32_t* ids, int64_t n, int32_t prompt_len, int64_t doc_index, bool truncated);
  SplitCounts counts() const;
};

struct TaskSequences {
  std::string name;         // normalised (the group name)
  std::string source_name;  // as in the input
  int64_t rows = 0;         // input rows before the length filter (provenance)
  std::array<SplitSequences, kNumSplits> splits;
  int64_t documents() const;
};

struct ShardHeader {
  int64_t shard_index = 0;
  std::string created_by;
  std::string tokenizer_identity;
  int64_t vocab_size = 0;
  int32_t bos_id = -1, eos_id = -1;
  int64_t max_len = 0;
};

struct ShardWriteOptions {
  int deflate_level = 6;         // 0-9; 0 turns deflate off (the checksum stays on)
  int64_t chunk_tokens = 16384;  // elements per chunk of every dataset
};

class ShardWriter {
 public:
  // Creates `path` (IoError when it exists or cannot be created).
  ShardWriter(const std::string& path, const ShardHeader& header, const ShardWriteOptions& options);
  ~ShardWriter();  // closes silently when close() was not called (error path)
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // Checks the sequences (ids below vocab_size, 1 <= prompt_len < length <= max_len,
  // offsets consistent) and writes the task's group. `task_index`: its position in
  // the manifest's task list.
  void add_task(const TaskSequences& task, int64_t task_index);
  // Writes the root attributes, closes the file (IoError when flushing fails).
  void close();

 private:
  void write_split(hid_t task_group, const SplitSequences& s, Split split, const std::string& origin);
  H5Id create_dataset(hid_t group, const char* name, hid_t file_type, int64_t n,
                      const std::string& origin);

  std::string path_;
  ShardHeader header_;
  ShardWriteOptions options_;
  TokenDtype dtype_;
  H5Id file_, tasks_group_;
  int64_t num_tasks_ = 0;
};

}  // namespace bora
