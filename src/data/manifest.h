// manifest.json: the index of a dataset folder. It lists EVERY task with its
// document, token and target-token counts per split and the shard file that holds
// it, so that each rank knows the global counts (the sampler needs them) while it
// opens only the shards of its own tasks. It also names the tokenizer (identity hash,
// vocabulary size, bos/eos ids), max_len, the token dtype and the data_prep options.
//
// Keys (docs/data-format.md has an example):
//   magic, format_version, created_by, max_len, token_dtype, chunk_tokens,
//   tokenizer {identity, vocab_size, bos_id, eos_id},
//   totals {tasks, documents, train|validation|test {sequences, tokens, target_tokens, truncated}},
//   shards [{file, bytes, xxh3, tasks [name...]}],
//   tasks  [{name, source_name, shard, documents, rows,
//            train|validation|test {sequences, tokens, target_tokens, truncated}}],
//   options {key: value}
// Tasks are listed in alphabetical (byte) order of name; a task's position in this
// list is its task index everywhere (reader, sampler, adapter bank).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"
#include "data/format.h"

namespace bora {

struct SplitCounts {
  int64_t sequences = 0;      // = documents in this split (one sequence per document)
  int64_t tokens = 0;         // all tokens, bos and prompt included
  int64_t target_tokens = 0;  // tokens that are loss targets: sum of (length - prompt_len)
  int64_t truncated = 0;      // sequences cut at max_len
};

struct TaskInfo {
  std::string name;         // the task name (normalised); its group name in the shard
  std::string source_name;  // the name as it was in the input, before normalisation
  std::string shard;        // the file holding it, e.g. "shard-00003.h5"
  int64_t rows = 0;         // input rows/documents of the task before the length filter
  int64_t documents = 0;    // kept documents = the sum of the splits' sequences
  std::array<SplitCounts, kNumSplits> splits;

  const SplitCounts& split(Split s) const { return splits[static_cast<int>(s)]; }
};

struct ShardInfo {
  std::string file;                // a file name inside the dataset folder
  int64_t bytes = 0;               // its exact size: a truncated copy is caught on open
  std::string xxh3;                // XXH3-64 of the whole file (16 hex digits)
  std::vector<std::string> tasks;  // the tasks it holds, in manifest order
};

struct Manifest {
  int64_t format_version = kDatasetFormatVersion;
  std::string created_by;
  std::string tokenizer_identity;  // Tokenizer::identity_hex()
  int64_t vocab_size = 0;          // Tokenizer::vocab_size(): every id is below it
  int32_t bos_id = -1, eos_id = -1;
  int64_t max_len = 0;             // no sequence is longer
  TokenDtype token_dtype = TokenDtype::UInt16;
  int64_t chunk_tokens = 0;        // elements per chunk of the tokens datasets
  OrderedJson options = OrderedJson::object();  // the data_prep options that shaped the content
  std::vector<TaskInfo> tasks;
  std::vector<ShardInfo> shards;

  // Index of the task named `name` in `tasks`, or -1.
  int64_t find_task(const std::string& name) const;
  SplitCounts total(Split s) const;

  OrderedJson to_json() const;
  // Parses and validates (validate()). FormatError naming `origin` and the key.
  static Manifest from_json(const Json& j, const std::string& origin);
  // Reads <dir>/manifest.json.
  static Manifest read(const std::string& dir);
  // Writes <dir>/manifest.json atomically.
  void write(const std::string& dir) const;

  // Internal consistency: versions, ids below vocab_size, unique valid task names in
  // order, counts that add up, every task in exactly the shard that lists it.
  void validate(const std::string& origin) const;
};

}  // namespace bora
