// CSV (RFC 4180) corpus reader (corpus.h).
//
// Grammar, as RFC 4180 with the usual relaxations:
//   file   = [BOM] header *(record) ; records end with LF or CRLF (the last may not)
//   field  = quoted | plain
//   quoted = '"' *(any byte except '"' | '""') '"'   ; may span lines; "" is one "
//   plain  = *(any byte except delimiter, LF)        ; a CR before the LF is dropped
// Lines that are empty outside quotes are skipped (as pandas does). A '"' inside a
// plain field is kept as it is; anything but a delimiter or line end after a closing
// quote is an error, as is a quote still open at the end of the file.
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "data_prep/corpus.h"
#include "model/tokenizer.h"

namespace bora {
namespace {

struct Field {
  const char* begin;
  const char* end;
  bool escaped;  // quoted and contains "" (needs unescaping)
};

class CsvParser {
 public:
  CsvParser(const std::string& path, const char* data, size_t size, char delim)
      : path_(path), p_(data), end_(data + size), delim_(delim) {
    if (size >= 3 && std::memcmp(data, "\xEF\xBB\xBF", 3) == 0) p_ += 3;  // UTF-8 BOM
  }

  // Parses the next record into `fields`; false at the end of the file.
  bool next(std::vector<Field>* fields, int64_t* record_line) {
    // Skip blank lines between records.
    while (p_ < end_ && (*p_ == '\n' || (*p_ == '\r' && p_ + 1 < end_ && p_[1] == '\n'))) {
      p_ += *p_ == '\n' ? 1 : 2;
      ++line_;
    }
    if (p_ >= end_) return false;
    *record_line = line_;
    fields->clear();
    while (true) {
      Field f{};
      if (p_ < end_ && *p_ == '"') {
        int64_t open_line = line_;
        const char* q = ++p_;
        f.begin = p_;
        while (true) {
          q = static_cast<const char*>(std::memchr(q, '"', static_cast<size_t>(end_ - q)));
          BORA_CHECK(q != nullptr, FormatError, path_, ":", open_line, ": unterminated quoted field ",
                     fields->size() + 1, " (the quote opened on line ", open_line,
                     " is never closed)");
          if (q + 1 < end_ && q[1] == '"') {
            f.escaped = true;
            q += 2;
            continue;
          }
          break;
        }
        line_ += std::count(p_, q, '\n');
        f.end = q;
        p_ = q + 1;
        fields->push_back(f);
        if (p_ >= end_) return true;
        if (*p_ == delim_) {
          ++p_;
          continue;
        }
        if (*p_ == '\n' || (*p_ == '\r' && p_ + 1 < end_ && p_[1] == '\n')) {
          p_ += *p_ == '\n' ? 1 : 2;
          ++line_;
          return true;
        }
        BORA_THROW(FormatError, path_, ":", line_, ": unexpected character '", printable(*p_),
                   "' after the closing quote of field ", fields->size(),
                   " (a quote inside a quoted field must be doubled)");
      }
      f.begin = p_;
      while (p_ < end_ && *p_ != delim_ && *p_ != '\n') ++p_;
      f.end = p_;
      if (p_ < end_ && *p_ == '\n' && f.end > f.begin && f.end[-1] == '\r') --f.end;
      fields->push_back(f);
      if (p_ >= end_) return true;
      if (*p_ == delim_) {
        ++p_;
        continue;
      }
      ++p_;  // '\n'
      ++line_;
      return true;
    }
  }

 private:
  static std::string printable(char c) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) return std::string(1, c);
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02x", u);
    return buf;
  }

  const std::string& path_;
  const char* p_;
  const char* end_;
  char delim_;
  int64_t line_ = 1;
};

// The field's value: a view into the file, or into the arena when "" had to be undone.
std::string_view value(const Field& f, Corpus* c) {
  std::string_view raw(f.begin, static_cast<size_t>(f.end - f.begin));
  if (!f.escaped) return raw;
  std::string s;
  s.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    s.push_back(raw[i]);
    if (raw[i] == '"') ++i;  // skip the second quote of a ""
  }
  return c->keep(std::move(s));
}

// Missing-value test for a column that is not kept: no arena copy.
bool field_missing(const Field& f, const CorpusOptions& opt) {
  std::string_view raw(f.begin, static_cast<size_t>(f.end - f.begin));
  if (!f.escaped) return is_missing_value(raw, opt);
  if (opt.na_values.empty()) return false;  // it holds at least one '"': not empty
  std::string s;
  for (size_t i = 0; i < raw.size(); ++i) {
    s.push_back(raw[i]);
    if (raw[i] == '"') ++i;
  }
  return is_missing_value(s, opt);
}

}  // namespace

Corpus read_csv(const std::string& path, const CorpusOptions& opt) {
  Corpus c;
  c.sources = {path};
  c.record_noun = "row";
  auto map = MappedFile::open(path);
  c.maps.push_back(map);
  c.bytes = static_cast<int64_t>(map->size());
  map->advise_sequential();
  CsvParser parser(path, reinterpret_cast<const char*>(map->data()), map->size(), opt.csv_delimiter);

  std::vector<Field> fields;
  int64_t line = 0;
  BORA_CHECK(parser.next(&fields, &line), FormatError, path, ": empty file (expected a header row)");
  const size_t ncols = fields.size();
  int task_col = -1, text_col = -1;
  std::string names;
  for (size_t i = 0; i < ncols; ++i) {
    std::string name(value(fields[i], &c));
    size_t bad = find_invalid_utf8(name);
    BORA_CHECK(bad == std::string::npos, FormatError, path, ":", line, ": invalid UTF-8 in header column ",
               i + 1);
    names += (i ? ", " : "") + name;
    if (name == opt.task_column || name == opt.text_column) {
      int& col = name == opt.task_column ? task_col : text_col;
      BORA_CHECK(col < 0, FormatError, path, ":", line, ": column '", name, "' appears twice in the header");
      col = static_cast<int>(i);
    }
  }
  BORA_CHECK(task_col >= 0, FormatError, path, ": no column '", opt.task_column,
             "' in the header (columns: ", names, "); set --task_column");
  BORA_CHECK(text_col >= 0, FormatError, path, ": no column '", opt.text_column,
             "' in the header (columns: ", names, "); set --text_column");
  BORA_CHECK(task_col != text_col, ConfigError, "task_column and text_column are both '",
             opt.task_column, "'");

  const bool any = opt.drop_missing == "any";
  int64_t row = 0;
  while (parser.next(&fields, &line)) {
    ++row;
    BORA_CHECK(fields.size() == ncols, FormatError, path, ":", line, " (row ", row, "): ", fields.size(),
               " fields, but the header has ", ncols, " (a stray delimiter or an unbalanced quote?)");
    ++c.rows_read;
    CorpusRecord r;
    r.task = value(fields[task_col], &c);
    r.text = value(fields[text_col], &c);
    bool missing = is_missing_value(r.task, opt) || is_missing_value(r.text, opt);
    for (size_t i = 0; any && !missing && i < ncols; ++i)
      if (static_cast<int>(i) != task_col && static_cast<int>(i) != text_col)
        missing = field_missing(fields[i], opt);
    if (missing) {
      ++c.rows_missing;
      continue;
    }
    r.source = 0;
    r.line = line;
    r.number = row;
    for (int col : {task_col, text_col}) {
      std::string_view v = col == task_col ? r.task : r.text;
      size_t bad = find_invalid_utf8(v);
      BORA_CHECK(bad == std::string::npos, FormatError, path, ":", line, " (row ", row,
                 "): invalid UTF-8 in column '", col == task_col ? opt.task_column : opt.text_column,
                 "' at byte ", bad, " of the field");
    }
    c.records.push_back(r);
  }
  return c;
}

}  // namespace bora
