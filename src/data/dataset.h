// The dataset reader every training rank uses: it opens ONLY the shard files that
// hold the tasks it is given, checks them against manifest.json, and serves
// sequences by (task, split, index) as int32 token ids plus prompt_len.
//
//   DatasetReader r(dir, {"alice", "bob"});          // {} = every task
//   r.check_tokenizer(tok.identity_hex(), model_vocab_size);
//   int64_t t = r.task_index("bob");                   // manifest index
//   Sequence s;
//   for (int64_t i = 0; i < r.size(t, Split::Train); ++i) r.read(t, Split::Train, i, &s);
//
// Sequence layout: tokens = [bos] + prompt + text + [eos] (cut to max_len); tokens
// j >= prompt_len are the loss targets, so a model predicting token j from tokens
// < j is scored on positions prompt_len..size()-1 (and never on the bos).
//
// Checks on open (FormatError naming the file and the task): shard size equal to the
// manifest's (a truncated copy fails here), magic, format version, tokenizer identity,
// vocabulary and dtype in the shard's attributes equal to the manifest's, every asked
// task present with the manifest's counts, offsets increasing and prompt_len within
// each sequence. On read: HDF5 verifies each chunk's Fletcher32 checksum, so a changed
// byte is a FormatError at the first read of its chunk (or at open, with
// ReaderOptions::verify_hash, which hashes whole files against the manifest).
//
// Memory: the offsets and prompt_len of the opened tasks (12 bytes per sequence) stay
// in memory; tokens are read chunk by chunk into an LRU cache of decompressed chunks
// bounded by ReaderOptions::cache_bytes (at least one chunk is always kept). A whole
// file is never loaded.
//
// Thread safety: a DatasetReader is used by one thread at a time (its cache is not
// locked). Several readers may live in different threads; their HDF5 calls are
// serialised by a process-wide lock (data/hdf5_util.h), entered only on open and on
// cache misses.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/format.h"
#include "data/manifest.h"

namespace bora {

struct Sequence {
  std::vector<int32_t> tokens;
  int32_t prompt_len = 0;  // leading tokens that are not loss targets (>= 1: the bos)
  int64_t num_targets() const { return static_cast<int64_t>(tokens.size()) - prompt_len; }
};

struct ReaderOptions {
  // Bound on the decompressed-chunk cache, in bytes (of the file dtype: uint16 tokens
  // take 2 bytes each). 64 MiB holds 32 M uint16 tokens.
  int64_t cache_bytes = int64_t(64) << 20;
  // Hash every opened shard (XXH3-64) against the manifest at open: catches any
  // change anywhere in the file at the cost of reading it once.
  bool verify_hash = false;
};

class DatasetReader {
 public:
  // Opens the shards holding `tasks` (task names; empty = every task of the
  // manifest). DataError when a task is not in the dataset.
  DatasetReader(const std::string& dir, const std::vector<std::string>& tasks,
                const ReaderOptions& options = {});
  ~DatasetReader();
  DatasetReader(DatasetReader&&) noexcept;
  DatasetReader& operator=(DatasetReader&&) noexcept;

  const std::string& dir() const;
  // The manifest: every task of the dataset, opened or not, with its counts.
  const Manifest& manifest() const;
  // Task indices are the manifest's (alphabetical) indices, for opened and
  // unopened tasks alike; DataError when `name` is not in the dataset.
  int64_t task_index(const std::string& name) const;
  bool is_open(int64_t task) const;
  // The manifest indices of the opened tasks, increasing.
  const std::vector<int64_t>& open_tasks() const;

  // DataError unless the dataset was made with the tokenizer whose identity is
  // `identity_hex` and every id fits an embedding of `model_vocab_size` rows.
  void check_tokenizer(const std::string& identity_hex, int64_t model_vocab_size) const;

  // Number of sequences of an opened task's split.
  int64_t size(int64_t task, Split split) const;
  // Length and prompt_len of sequence i without reading its tokens (from memory).
  int64_t length(int64_t task, Split split, int64_t i) const;
  int32_t prompt_len(int64_t task, Split split, int64_t i) const;

  // Sequence i of an opened task's split. `out` keeps its capacity between calls.
  void read(int64_t task, Split split, int64_t i, Sequence* out);
  // Sequences [begin, end) packed: their tokens concatenated into `tokens`,
  // `offsets` (end - begin + 1 entries, from 0) and `prompt_lens`. The fast path for
  // evaluation, which walks a split in order.
  void read_range(int64_t task, Split split, int64_t begin, int64_t end, std::vector<int32_t>* tokens,
                  std::vector<int64_t>* offsets, std::vector<int32_t>* prompt_lens);

  // Position of sequence i among its task's kept documents (input order).
  int64_t doc_index(int64_t task, Split split, int64_t i);

  struct CacheStats {
    int64_t hits = 0, misses = 0, bytes = 0, chunks = 0;
  };
  CacheStats cache_stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bora
