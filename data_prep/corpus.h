// Corpora as users have them, read into one list of (task, text) records:
//
//   CSV        a header row naming the columns; RFC 4180 quoting ("..." fields with
//              commas, doubled quotes "" and line breaks inside); e.g. Talk of
//              Norway's ton.csv with columns rep_name and text.
//   JSONL      one JSON object per line with a task and a text field.
//   folder     one plain-text file per task (task = file name), documents separated
//              by a delimiter line (default "%", the fortune(6) format).
//
// Records are views: into the memory-mapped input files, or into the corpus's arena
// when a field had to be unescaped ("" -> ", JSON escapes), so the corpus costs
// little more than the input's size in address space.
//
// Missing values (rule 1 of the selection, see select.h): a field is missing when it
// is absent, JSON null, empty, or equal to one of `na_values`. With drop_missing =
// "any" (the reference: pandas dropna() over all columns) a row is dropped when ANY
// of its fields is missing; with "fields" only when its task or text field is.
// Dropped rows are counted, never silently merged.
//
// Every error is a one-line FormatError naming the file and line (and record or
// document): unterminated quote, wrong field count, missing column, invalid JSON,
// invalid UTF-8.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/fs.h"

namespace bora {

struct CorpusOptions {
  std::string format = "auto";  // auto | csv | jsonl | folder
  // CSV
  std::string task_column = "rep_name";
  std::string text_column = "text";
  char csv_delimiter = ',';
  // JSONL
  std::string task_field = "task";
  std::string text_field = "text";
  // folder
  std::string delimiter = "%";  // a line equal to this separates documents; "" = whole file
  bool recursive = false;       // also read subfolders (task = relative path, '/' -> '-')
  std::vector<std::string> skip_suffixes{".dat", ".u8"};
  // missing values
  std::string drop_missing = "any";  // any | fields
  std::vector<std::string> na_values;
};

struct CorpusRecord {
  std::string_view task;  // as in the input (not normalised)
  std::string_view text;
  int32_t source = 0;     // index into Corpus::sources
  int64_t line = 0;       // 1-based line where the record (document) starts
  int64_t number = 0;     // 1-based record number in its source (CSV/JSONL row, document)
};

class Corpus {
 public:
  std::vector<std::string> sources;    // input files
  std::vector<CorpusRecord> records;   // kept records, in input order
  int64_t rows_read = 0;               // records seen (header excluded)
  int64_t rows_missing = 0;            // records dropped for a missing field
  int64_t bytes = 0;                   // input bytes

  std::string record_noun = "row";     // "row" (CSV, JSONL) or "document" (folder)

  // "ton.csv:17 (row 15)": where a record came from, for messages.
  std::string where(const CorpusRecord& r) const;

  // Storage the record views point into.
  std::vector<std::shared_ptr<MappedFile>> maps;
  std::string_view keep(std::string s);  // moves `s` into the arena, returns a view

 private:
  std::deque<std::string> arena_;
};

// Reads `path` in the given (or detected) format. Detection: a folder -> folder;
// *.csv / *.tsv -> csv; *.jsonl / *.json / *.ndjson -> jsonl; else ConfigError.
Corpus read_corpus(const std::string& path, const CorpusOptions& options);

Corpus read_csv(const std::string& path, const CorpusOptions& options);
Corpus read_jsonl(const std::string& path, const CorpusOptions& options);
Corpus read_text_folder(const std::string& path, const CorpusOptions& options);

// Shared by the readers: is `field` a missing value under `options`?
bool is_missing_value(std::string_view field, const CorpusOptions& options);

}  // namespace bora
