// Task selection rules 2-6 (select.h).
#include "data_prep/select.h"

#include <algorithm>
#include <map>
#include <unordered_map>

#include "core/error.h"
#include "core/log.h"
#include "data/format.h"

namespace bora {
namespace {

// Decodes one code point of valid UTF-8 at s[i], advancing i.
uint32_t decode(std::string_view s, size_t* i) {
  unsigned char c = static_cast<unsigned char>(s[*i]);
  int n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
  for (int k = 1; k < n && *i + k < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[*i + k]) & 0x3F);
  *i += n;
  return cp;
}

void encode(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Simple (one-to-one) lower-case mapping of the scripts named in select.h, as
// Unicode's UnicodeData.txt gives it for these blocks.
uint32_t lower(uint32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c < 0xC0) return c;
  if (c <= 0xDE) return c == 0xD7 ? c : c + 32;                        // Latin-1: À..Þ except ×
  if (c >= 0x100 && c <= 0x137) return c | 1;                          // Ā ā ... Ķ ķ (pairs)
  if (c >= 0x139 && c <= 0x148) return (c & 1) ? c + 1 : c;            // Ĺ ĺ ... Ň ň
  if (c >= 0x14A && c <= 0x177) return c | 1;                          // Ŋ ŋ ... Ŷ ŷ
  if (c == 0x178) return 0xFF;                                         // Ÿ -> ÿ
  if (c >= 0x179 && c <= 0x17E) return (c & 1) ? c + 1 : c;            // Ź ź Ż ż Ž ž
  if (c == 0x386) return 0x3AC;                                        // Greek with tonos
  if (c >= 0x388 && c <= 0x38A) return c + 37;
  if (c == 0x38C) return 0x3CC;
  if (c == 0x38E || c == 0x38F) return c + 63;
  if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) return c + 32;           // Α..Ϋ
  if (c >= 0x400 && c <= 0x40F) return c + 80;                         // Ѐ..Џ
  if (c >= 0x410 && c <= 0x42F) return c + 32;                         // А..Я
  return c;
}

std::string join_some(const std::vector<std::string>& v, size_t most = 10) {
  std::string s;
  for (size_t i = 0; i < v.size() && i < most; ++i) s += (i ? ", " : "") + v[i];
  if (v.size() > most) s += cat(", ... (", v.size() - most, " more)");
  return s;
}

}  // namespace

std::string normalize_task_name(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (size_t i = 0; i < name.size();) {
    uint32_t c = decode(name, &i);
    if (c == '.') continue;
    if (c == 0x130) {  // İ lower-cases to i + combining dot above (as Python does)
      out += "i\xCC\x87";
      continue;
    }
    encode(lower(c), &out);
  }
  return out;
}

int64_t count_chars(std::string_view s) {
  int64_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

std::vector<SelectedTask> select_tasks(const Corpus& corpus, const SelectOptions& opt,
                                       SelectionStats* stats_out) {
  SelectionStats stats;
  // Group records by their input name, in order of first appearance.
  std::unordered_map<std::string_view, size_t> by_source;
  std::vector<SelectedTask> tasks;
  std::vector<const CorpusRecord*> first_seen;
  for (const CorpusRecord& r : corpus.records) {
    auto [it, fresh] = by_source.emplace(r.task, tasks.size());
    if (fresh) {
      SelectedTask t;
      t.source_name = std::string(r.task);
      tasks.push_back(std::move(t));
      first_seen.push_back(&r);
    }
    SelectedTask& t = tasks[it->second];
    ++t.rows;
    t.docs.push_back(&r);
  }
  stats.tasks_in = static_cast<int64_t>(tasks.size());

  // Rule 2: normalise; two input names must not become one task.
  std::map<std::string, size_t> by_name;
  for (size_t i = 0; i < tasks.size(); ++i) {
    SelectedTask& t = tasks[i];
    t.name = opt.normalize_names ? normalize_task_name(t.source_name) : t.source_name;
    std::string problem = task_name_problem(t.name);
    BORA_CHECK(problem.empty(), DataError, corpus.where(*first_seen[i]), ": task name '", t.source_name,
               "' is not usable", opt.normalize_names ? cat(" (normalised: '", t.name, "')") : "", ": ",
               problem);
    auto [it, fresh] = by_name.emplace(t.name, i);
    BORA_CHECK(fresh, DataError, "task names '", tasks[it->second].source_name, "' (",
               corpus.where(*first_seen[it->second]), ") and '", t.source_name, "' (",
               corpus.where(*first_seen[i]), ") both normalise to '", t.name,
               "'; fix the input or set --normalize_names=false");
  }

  // Rule 3: the named tasks.
  std::vector<bool> named(tasks.size(), false);
  if (!opt.tasks.empty()) {
    for (const std::string& n : opt.tasks) {
      auto it = by_name.find(n);
      BORA_CHECK(it != by_name.end(), DataError, "task '", n, "' (named in --tasks) is not in the input (",
                 tasks.size(), " tasks", opt.normalize_names ? ", names normalised" : "", ")");
      named[it->second] = true;
    }
  }

  // Rules 4 and 5, task by task.
  std::string range =
      opt.range_inclusive
          ? cat(opt.min_docs, " <= documents", opt.max_docs > 0 ? cat(" <= ", opt.max_docs) : "")
          : cat(opt.min_docs, " < documents", opt.max_docs > 0 ? cat(" < ", opt.max_docs) : "");
  std::vector<SelectedTask> kept;
  for (size_t i = 0; i < tasks.size(); ++i) {
    SelectedTask& t = tasks[i];
    if (!opt.tasks.empty() && !named[i]) continue;
    int64_t n = t.rows;
    bool in_range = opt.range_inclusive
                        ? n >= opt.min_docs && (opt.max_docs <= 0 || n <= opt.max_docs)
                        : n > opt.min_docs && (opt.max_docs <= 0 || n < opt.max_docs);
    if (!in_range) {
      BORA_CHECK(!named[i], DataError, "task '", t.name, "' (named in --tasks) has ", n,
                 " documents, outside the range ", range);
      stats.dropped_by_count.push_back(cat(t.name, " (", n, ")"));
      continue;
    }
    size_t before = t.docs.size();
    t.docs.erase(std::remove_if(t.docs.begin(), t.docs.end(),
                                [&](const CorpusRecord* r) { return count_chars(r->text) < opt.min_text_chars; }),
                 t.docs.end());
    stats.short_texts += static_cast<int64_t>(before - t.docs.size());
    if (t.docs.empty()) {
      BORA_CHECK(!named[i], DataError, "task '", t.name, "' (named in --tasks) has no document of ",
                 opt.min_text_chars, " or more characters");
      stats.dropped_empty.push_back(t.name);
      continue;
    }
    kept.push_back(std::move(t));
  }

  // Rule 6: alphabetical, first K.
  std::sort(kept.begin(), kept.end(),
            [](const SelectedTask& a, const SelectedTask& b) { return a.name < b.name; });
  if (opt.tasks.empty() && opt.max_tasks > 0 && static_cast<int64_t>(kept.size()) > opt.max_tasks) {
    stats.dropped_by_limit = static_cast<int64_t>(kept.size()) - opt.max_tasks;
    kept.resize(static_cast<size_t>(opt.max_tasks));
  }

  if (!stats.dropped_by_count.empty())
    BORA_INFO("dropped ", stats.dropped_by_count.size(), " tasks outside ", range, ": ",
              join_some(stats.dropped_by_count));
  if (stats.short_texts > 0)
    BORA_INFO("dropped ", stats.short_texts, " documents shorter than ", opt.min_text_chars, " characters");
  if (!stats.dropped_empty.empty())
    BORA_WARN("dropped ", stats.dropped_empty.size(), " tasks left without documents by the length rule: ",
              join_some(stats.dropped_empty));
  if (stats.dropped_by_limit > 0)
    BORA_INFO("kept the first ", opt.max_tasks, " tasks in name order, dropped ", stats.dropped_by_limit);
  if (stats_out) *stats_out = std::move(stats);
  return kept;
}

}  // namespace bora
