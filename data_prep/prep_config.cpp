// data_prep's options: declaration (--help text, defaults), validation, and the
// record of them kept in the manifest (prepare.h).
#include <filesystem>

#include "core/error.h"
#include "core/options.h"
#include "data/split.h"
#include "data_prep/prepare.h"
#include "model/tokenizer.h"

namespace bora {

void PrepConfig::declare(OptionTable& t) {
  t.group("input");
  t.add("input", &input, "the corpus: a CSV file, a JSON Lines file, or a folder of text files");
  t.add_choice("format", &format, {"auto", "csv", "jsonl", "folder"},
               "input format; auto: folder, *.csv/*.tsv, *.jsonl/*.json/*.ndjson");
  t.add("task_column", &task_column, "CSV: the column holding the task name");
  t.add("text_column", &text_column, "CSV: the column holding the document text");
  t.add("csv_delimiter", &csv_delimiter, "CSV: the field delimiter, one character or 'tab'");
  t.add("task_field", &task_field, "JSONL: the field holding the task name");
  t.add("text_field", &text_field, "JSONL: the field holding the document text");
  t.add("delimiter", &delimiter,
        "folder: a line equal to this separates documents (the fortune format); empty: one document "
        "per file");
  t.add("recursive", &recursive, "folder: also read subfolders (task = relative path, '/' -> '-')");
  t.add("skip_suffixes", &skip_suffixes, "folder: skip files whose names end with one of these");

  t.group("selection (applied in this order)");
  t.add_choice("drop_missing", &drop_missing, {"any", "fields"},
               "1. drop rows with a missing value in any column (the reference, pandas dropna) or "
               "only in the task/text fields");
  t.add("na_values", &na_values,
        "1. strings that count as missing besides the empty field (pandas also uses NA, NaN, null, ...)");
  t.add("normalize_names", &normalize_names,
        "2. task name = input name lower-cased with '.' removed; two names that normalise alike are "
        "an error");
  t.add("tasks", &tasks,
        "3. keep only these tasks (normalised names); a named task that rules 4-5 would drop is an "
        "error; disables rule 6");
  t.add("min_docs", &min_docs, "4. keep tasks with more than (exclusive) / at least (inclusive) this many rows");
  t.add("max_docs", &max_docs,
        "4. keep tasks with fewer than (exclusive) / at most (inclusive) this many rows; <= 0: no bound");
  t.add_choice("docs_range", &docs_range, {"exclusive", "inclusive"},
               "4. bounds of the row-count range (reference: 200 < rows < 1000, exclusive)");
  t.add("min_text_chars", &min_text_chars,
        "5. drop documents with fewer characters (code points) than this; the reference drops "
        "<= 40, i.e. 41");
  t.add("max_tasks", &max_tasks, "6. keep the first K tasks in name order (0: all)");

  t.group("split (per task)");
  t.add("split_fractions", &split_fractions,
        "train,validation,test fractions; sizes by largest remainder (they sum to n, each within 1 "
        "of n*f)");
  t.add("seed", &seed, "seed of the per-task shuffle (which depends on seed, task name and documents only)");

  t.group("sequences");
  t.add("tokenizer", &tokenizer, "a model folder (tokenizer.json or vocab.json + merges.txt) or a tokenizer.json");
  t.add("vocab", &vocab, "vocab.json (GPT-2: encoder.json), with --merges, instead of --tokenizer");
  t.add("merges", &merges, "merges.txt (GPT-2: vocab.bpe), with --vocab");
  t.add("prompt_template", &prompt_template,
        "prompt after the bos, not a loss target; {task} is the task name; empty: no prompt; quote "
        "to keep spaces");
  t.add("text_template", &text_template, "the document part; must contain {text}; quote to keep spaces");
  t.add("bos_id", &bos_id, "id prepended to every sequence; -1: the tokenizer's (</s> for OPT, <|endoftext|> for GPT-2)");
  t.add("eos_id", &eos_id, "id appended to every sequence; -1: the tokenizer's");
  t.add("max_len", &max_len, "sequences are cut to this many tokens, keeping the beginning");

  t.group("output");
  t.add("out", &out, "the dataset folder to create (written as <out>.tmp.<pid>, renamed when complete)");
  t.add("overwrite", &overwrite, "replace an existing dataset folder at --out");
  t.add("tasks_per_shard", &tasks_per_shard, "at most this many tasks per shard file (0: no limit)");
  t.add("shard_mb", &shard_mb, "start a new shard before one would exceed this many MB of tokens (0: no limit)");
  t.add("compression", &compression, "deflate level of the HDF5 datasets, 0-9 (6: see docs/data-format.md)");
  t.add("chunk_tokens", &chunk_tokens, "elements per HDF5 chunk (the unit of reading and checksumming)");
  t.add("threads", &threads, "tokenizer threads (0: all hardware threads); the output does not depend on it");
  t.add("progress", &progress, "show a progress bar");
}

void PrepConfig::validate() const {
  BORA_CHECK(!input.empty(), ConfigError, "--input is required (a CSV, a JSONL file or a folder)");
  BORA_CHECK(!out.empty(), ConfigError, "--out is required (the dataset folder to create)");
  BORA_CHECK(!tokenizer.empty() || (!vocab.empty() && !merges.empty()), ConfigError,
             "give --tokenizer, or --vocab and --merges");
  BORA_CHECK(tokenizer.empty() || (vocab.empty() && merges.empty()), ConfigError,
             "give --tokenizer or --vocab/--merges, not both");
  BORA_CHECK(csv_delimiter == "tab" || csv_delimiter.size() == 1, ConfigError,
             "csv_delimiter must be one character or 'tab', got '", csv_delimiter, "'");
  BORA_CHECK(split_fractions.size() == 3, ConfigError,
             "split_fractions needs 3 values (train,validation,test), got ", split_fractions.size());
  check_split_fractions({split_fractions[0], split_fractions[1], split_fractions[2]});
  BORA_CHECK(split_fractions[0] > 0, ConfigError, "the train fraction must be > 0");
  BORA_CHECK(min_docs >= 0, ConfigError, "min_docs must be >= 0, got ", min_docs);
  BORA_CHECK(max_tasks >= 0, ConfigError, "max_tasks must be >= 0, got ", max_tasks);
  BORA_CHECK(max_len >= 2, ConfigError, "max_len must be >= 2, got ", max_len);
  BORA_CHECK(bos_id >= -1 && eos_id >= -1, ConfigError, "bos_id/eos_id must be ids or -1");
  BORA_CHECK(tasks_per_shard >= 0, ConfigError, "tasks_per_shard must be >= 0");
  BORA_CHECK(shard_mb >= 0, ConfigError, "shard_mb must be >= 0");
  BORA_CHECK(compression >= 0 && compression <= 9, ConfigError, "compression must be 0..9, got ", compression);
  BORA_CHECK(chunk_tokens >= 256 && chunk_tokens <= (int64_t(1) << 24), ConfigError,
             "chunk_tokens must be in 256..16777216, got ", chunk_tokens);
  BORA_CHECK(threads >= 0, ConfigError, "threads must be >= 0");
  BORA_CHECK(unquote(text_template).find("{text}") != std::string::npos, ConfigError,
             "text_template must contain {text}");
}

CorpusOptions PrepConfig::corpus_options() const {
  CorpusOptions o;
  o.format = format;
  o.task_column = task_column;
  o.text_column = text_column;
  o.csv_delimiter = csv_delimiter == "tab" ? '\t' : csv_delimiter[0];
  o.task_field = task_field;
  o.text_field = text_field;
  o.delimiter = delimiter;
  o.recursive = recursive;
  o.skip_suffixes = skip_suffixes;
  o.drop_missing = drop_missing;
  o.na_values = na_values;
  return o;
}

SelectOptions PrepConfig::select_options() const {
  SelectOptions o;
  o.normalize_names = normalize_names;
  o.tasks = tasks;
  o.min_docs = min_docs;
  o.max_docs = max_docs;
  o.range_inclusive = docs_range == "inclusive";
  o.min_text_chars = min_text_chars;
  o.max_tasks = max_tasks;
  return o;
}

Tokenizer PrepConfig::load_tokenizer() const {
  if (!tokenizer.empty()) {
    std::error_code ec;
    if (std::filesystem::is_directory(tokenizer, ec)) return Tokenizer::from_folder(tokenizer);
    return Tokenizer::from_tokenizer_json(tokenizer);
  }
  return Tokenizer::from_files(vocab, merges);
}

OrderedJson PrepConfig::content_options() const {
  OrderedJson j;
  j["input"] = input;
  j["format"] = format;
  j["task_column"] = task_column;
  j["text_column"] = text_column;
  j["csv_delimiter"] = csv_delimiter;
  j["task_field"] = task_field;
  j["text_field"] = text_field;
  j["delimiter"] = delimiter;
  j["recursive"] = recursive;
  j["skip_suffixes"] = skip_suffixes;
  j["drop_missing"] = drop_missing;
  j["na_values"] = na_values;
  j["normalize_names"] = normalize_names;
  j["tasks"] = tasks;
  j["min_docs"] = min_docs;
  j["max_docs"] = max_docs;
  j["docs_range"] = docs_range;
  j["min_text_chars"] = min_text_chars;
  j["max_tasks"] = max_tasks;
  j["split_fractions"] = split_fractions;
  j["seed"] = seed;
  j["prompt_template"] = unquote(prompt_template);
  j["text_template"] = unquote(text_template);
  j["max_len"] = max_len;
  j["tasks_per_shard"] = tasks_per_shard;
  j["shard_mb"] = shard_mb;
  j["compression"] = compression;
  j["chunk_tokens"] = chunk_tokens;
  return j;
}

std::string unquote(const std::string& s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

}  // namespace bora
