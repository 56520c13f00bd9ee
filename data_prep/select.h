// Task selection and cleaning, in the order of the BoRA reference script (ton.csv:
// dropna, keep speakers with 200 < rows < 1000, drop texts of <= 40 characters,
// first 25 speakers alphabetically), each rule an option:
//
//   1. missing values   rows with a missing field are dropped (the corpus reader
//                       does this, see corpus.h: drop_missing, na_values)
//   2. task names       normalised: lower-cased, '.' removed (normalize_names).
//                       Two different input names that normalise to the same task
//                       ("A.B" and "ab") are an error naming both.
//   3. named tasks      with `tasks` set, only those tasks are kept (normalised
//                       names); a name not in the input is an error
//   4. document count   keep tasks whose row count n (after rule 1) satisfies
//                       min_docs < n < max_docs (docs_range = exclusive, the
//                       reference) or min_docs <= n <= max_docs (inclusive);
//                       max_docs <= 0 means no upper bound
//   5. short texts      drop documents with fewer than min_text_chars characters
//                       (Unicode code points; the reference's "<= 40" is 41);
//                       a task left with no document is dropped
//   6. first K tasks    sort the tasks by name (byte order of the UTF-8, which is
//                       code point order) and keep the first max_tasks (0 = all);
//                       not applied when `tasks` names the tasks
//
// Tasks dropped by rules 4 and 5 are logged; a task dropped by them that the user
// named in `tasks` is an error instead (DataError naming the task and the rule).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data_prep/corpus.h"

namespace bora {

struct SelectOptions {
  bool normalize_names = true;
  std::vector<std::string> tasks;  // empty = all
  int64_t min_docs = 200;
  int64_t max_docs = 1000;
  bool range_inclusive = false;
  int64_t min_text_chars = 41;
  int64_t max_tasks = 25;
};

struct SelectedTask {
  std::string name;         // normalised
  std::string source_name;  // as in the input
  int64_t rows = 0;         // rows after rule 1 (what rule 4 counted)
  std::vector<const CorpusRecord*> docs;  // kept documents, input order
};

struct SelectionStats {
  int64_t tasks_in = 0;
  std::vector<std::string> dropped_by_count;   // "name (n)"
  std::vector<std::string> dropped_empty;      // left empty by rule 5
  int64_t dropped_by_limit = 0;                // beyond max_tasks
  int64_t short_texts = 0;                     // documents dropped by rule 5
};

// Rules 2-6 over a corpus; the result is sorted by name. Views point into `corpus`.
std::vector<SelectedTask> select_tasks(const Corpus& corpus, const SelectOptions& options,
                                       SelectionStats* stats = nullptr);

// Rule 2: lower-case (ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic; other
// scripts are kept as they are) and remove every '.'. Input must be valid UTF-8.
std::string normalize_task_name(std::string_view name);

// Number of Unicode code points of valid UTF-8.
int64_t count_chars(std::string_view utf8);

}  // namespace bora
