// data_prep's pipeline: corpus -> selection -> per-task split -> tokenized sequences
// -> HDF5 shards + manifest.json, written under "<out>.tmp.<pid>" and renamed to
// <out> only when complete.
//
//   read corpus      (corpus.h: CSV / JSONL / folder; drops rows with missing values)
//   select tasks     (select.h: normalise names, named tasks, count range, short
//                     texts, first K alphabetically)
//   split            (data/split.h: largest remainder, seeded shuffle per task)
//   tokenize         (data/sequence.h: [bos] prompt text [eos], cut to max_len) on
//                     `threads` threads; the result does not depend on the count
//   write            (data/shard_writer.h: tasks in name order, grouped into shards
//                     by tasks_per_shard / shard_mb) and manifest.json
//
// The options (PrepConfig) are declared for OptionTable (--help, INI files); tests
// and benchmarks fill the struct directly.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/manifest.h"
#include "data_prep/corpus.h"
#include "data_prep/select.h"

namespace bora {

class OptionTable;
class Tokenizer;

struct PrepConfig {
  // input
  std::string input;
  std::string format = "auto";
  std::string task_column = "rep_name";
  std::string text_column = "text";
  std::string csv_delimiter = ",";
  std::string task_field = "task";
  std::string text_field = "text";
  std::string delimiter = "%";
  bool recursive = false;
  std::vector<std::string> skip_suffixes{".dat", ".u8"};
  // selection (in rule order)
  std::string drop_missing = "any";
  std::vector<std::string> na_values;
  bool normalize_names = true;
  std::vector<std::string> tasks;
  int64_t min_docs = 200;
  int64_t max_docs = 1000;
  std::string docs_range = "exclusive";
  int64_t min_text_chars = 41;
  int64_t max_tasks = 25;
  // split
  std::vector<double> split_fractions{0.5, 0.25, 0.25};
  int64_t seed = 42;
  // sequences
  std::string tokenizer;  // a model folder or a tokenizer.json
  std::string vocab;      // or vocab.json (GPT-2: encoder.json) ...
  std::string merges;     // ... + merges.txt (GPT-2: vocab.bpe)
  // Templates may be written in double quotes to keep leading spaces (INI values
  // and --help trim them otherwise); the quotes are not part of the template.
  std::string prompt_template = "\" [task] {task}\"";
  std::string text_template = "\" [text] {text}\"";
  int64_t bos_id = -1;  // -1: the tokenizer's
  int64_t eos_id = -1;
  int64_t max_len = 256;
  // output
  std::string out;
  bool overwrite = false;
  int64_t tasks_per_shard = 1;
  double shard_mb = 0;
  int compression = 6;
  int64_t chunk_tokens = 16384;
  int threads = 0;  // 0: hardware threads
  bool progress = true;

  void declare(OptionTable& table);
  void validate() const;
  CorpusOptions corpus_options() const;
  SelectOptions select_options() const;
  // The tokenizer named by `tokenizer` or `vocab` + `merges`.
  Tokenizer load_tokenizer() const;
  // The options that shape the dataset's content, as recorded in the manifest
  // (threads, progress, overwrite and out do not change a byte of it).
  OrderedJson content_options() const;
};

struct PrepResult {
  Manifest manifest;
  SelectionStats selection;
  int64_t input_bytes = 0;     // bytes of the input files
  int64_t text_bytes = 0;      // bytes of the kept documents
  int64_t output_bytes = 0;    // bytes of the shard files
  double seconds = 0;          // wall time of the whole run
  double read_seconds = 0;     // reading the corpus, selection, split
  double tokenize_seconds = 0;
  double write_seconds = 0;    // HDF5 shards (compression, checksums) and manifest
};

// Runs the pipeline; IoError when the output cannot be written, ConfigError when
// `out` exists without `overwrite` (checked before any work).
PrepResult run_data_prep(const PrepConfig& config, const Tokenizer& tokenizer);

// Removes one pair of surrounding double quotes: "\" a\"" -> " a".
std::string unquote(const std::string& s);

}  // namespace bora
