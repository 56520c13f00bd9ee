// JSON Lines corpus reader (corpus.h): one object per line, e.g.
//   {"task": "alice", "text": "First document.", "date": "2020-01-01"}
// Blank lines are skipped. The task and text fields must be strings (or null or
// absent, which count as missing).
#include <cstring>

#include "core/error.h"
#include "core/json.h"
#include "data_prep/corpus.h"
#include "model/tokenizer.h"

namespace bora {
namespace {

const char* json_type(const Json& v) { return v.type_name(); }

bool value_missing(const Json& v, const CorpusOptions& opt) {
  if (v.is_null()) return true;
  if (v.is_string()) return is_missing_value(v.get_ref<const std::string&>(), opt);
  return false;
}

}  // namespace

Corpus read_jsonl(const std::string& path, const CorpusOptions& opt) {
  Corpus c;
  c.sources = {path};
  c.record_noun = "row";
  auto map = MappedFile::open(path);
  c.bytes = static_cast<int64_t>(map->size());
  map->advise_sequential();
  const char* p = reinterpret_cast<const char*>(map->data());
  const char* end = p + map->size();
  if (end - p >= 3 && std::memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3;
  const bool any = opt.drop_missing == "any";
  int64_t line = 0, row = 0;
  while (p < end) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    const char* stop = nl ? nl : end;
    std::string_view text(p, static_cast<size_t>(stop - p));
    p = nl ? nl + 1 : end;
    ++line;
    if (text.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    ++row;
    ++c.rows_read;
    size_t bad = find_invalid_utf8(text);
    BORA_CHECK(bad == std::string::npos, FormatError, path, ":", line, " (row ", row,
               "): invalid UTF-8 at byte ", bad, " of the line");
    Json j;
    try {
      j = Json::parse(text.begin(), text.end());
    } catch (const nlohmann::json::parse_error& e) {
      BORA_THROW(FormatError, path, ":", line, " (row ", row, "): invalid JSON at byte ", e.byte,
                 " of the line");
    }
    BORA_CHECK(j.is_object(), FormatError, path, ":", line, " (row ", row, "): expected a JSON object, found ",
               json_type(j));
    bool missing = false;
    std::string_view fields[2];
    const std::string* names[2] = {&opt.task_field, &opt.text_field};
    for (int k = 0; k < 2; ++k) {
      auto it = j.find(*names[k]);
      if (it == j.end() || value_missing(*it, opt)) {
        missing = true;
        continue;
      }
      BORA_CHECK(it->is_string(), FormatError, path, ":", line, " (row ", row, "): field '", *names[k],
                 "' is a ", json_type(*it), ", expected a string");
      fields[k] = it->get_ref<const std::string&>();
    }
    for (auto it = j.begin(); any && !missing && it != j.end(); ++it) missing = value_missing(*it, opt);
    if (missing) {
      ++c.rows_missing;
      continue;
    }
    CorpusRecord r;
    r.task = c.keep(std::string(fields[0]));
    r.text = c.keep(std::string(fields[1]));
    r.source = 0;
    r.line = line;
    r.number = row;
    c.records.push_back(r);
  }
  return c;
}

}  // namespace bora
