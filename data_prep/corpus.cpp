// Format detection and the helpers shared by the corpus readers (corpus.h).
#include "data_prep/corpus.h"

#include <filesystem>

#include "core/error.h"

namespace bora {

std::string Corpus::where(const CorpusRecord& r) const {
  return cat(sources.at(static_cast<size_t>(r.source)), ":", r.line, " (", record_noun, " ", r.number, ")");
}

std::string_view Corpus::keep(std::string s) {
  // A deque never moves its elements, so views into them (even into a short
  // string's inline buffer) stay valid as the arena grows.
  arena_.push_back(std::move(s));
  return arena_.back();
}

bool is_missing_value(std::string_view field, const CorpusOptions& options) {
  if (field.empty()) return true;
  for (const std::string& na : options.na_values)
    if (field == na) return true;
  return false;
}

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

Corpus read_corpus(const std::string& path, const CorpusOptions& options) {
  BORA_CHECK(options.drop_missing == "any" || options.drop_missing == "fields", ConfigError,
             "drop_missing must be 'any' or 'fields', got '", options.drop_missing, "'");
  std::string format = options.format;
  if (format == "auto") {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) format = "folder";
    else if (ends_with(path, ".csv") || ends_with(path, ".tsv")) format = "csv";
    else if (ends_with(path, ".jsonl") || ends_with(path, ".json") || ends_with(path, ".ndjson"))
      format = "jsonl";
    else
      BORA_THROW(ConfigError, "cannot tell the format of '", path,
                 "' (not a folder, *.csv, *.jsonl): set --format csv|jsonl|folder");
  }
  if (format == "csv") return read_csv(path, options);
  if (format == "jsonl") return read_jsonl(path, options);
  if (format == "folder") return read_text_folder(path, options);
  BORA_THROW(ConfigError, "unknown input format '", format, "' (expected auto, csv, jsonl or folder)");
}

}  // namespace bora
