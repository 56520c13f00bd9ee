// Folder-of-text-files corpus reader (corpus.h), e.g. /usr/share/games/fortunes:
//
//   <folder>/<task>        one file per task; the task is the file name
//     document 1 line 1
//     document 1 line 2
//     %                    a line equal to the delimiter ends a document
//     document 2 ...
//
// A document is the bytes between two delimiter lines without the line break before
// the delimiter (so "a\nb\n%\n" holds "a\nb"); the last document ends at the end of
// the file, minus one final line break. A CR before a line's LF is ignored when
// matching the delimiter. Empty documents (two delimiters in a row) are missing
// values and dropped. Files are taken in byte order of their names; names starting
// with '.' and names ending in one of skip_suffixes (".dat" index files and ".u8"
// links of fortune) are skipped, as are subfolders unless `recursive`, in which case
// a file's task is its path below the folder with '/' replaced by '-'.
//
// A file with no document at all is an error (an empty task): it is almost always a
// mistake, such as the wrong delimiter.
#include <algorithm>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "data_prep/corpus.h"
#include "model/tokenizer.h"

namespace fs = std::filesystem;

namespace bora {
namespace {

bool has_suffix(const std::string& s, const std::string& suffix) {
  return !suffix.empty() && s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// (task, path) of every file to read, in a deterministic order.
void list_files(const fs::path& dir, const std::string& prefix, const CorpusOptions& opt,
                std::vector<std::pair<std::string, std::string>>* out) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  BORA_CHECK(!ec, IoError, "cannot list folder '", dir.string(), "': ", ec.message());
  std::vector<fs::directory_entry> entries;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    BORA_CHECK(!ec, IoError, "cannot list folder '", dir.string(), "': ", ec.message());
    entries.push_back(*it);
  }
  std::sort(entries.begin(), entries.end(),
            [](const fs::directory_entry& a, const fs::directory_entry& b) {
              return a.path().filename().string() < b.path().filename().string();
            });
  for (const fs::directory_entry& e : entries) {
    std::string name = e.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    bool skip = false;
    for (const std::string& s : opt.skip_suffixes) skip = skip || has_suffix(name, s);
    if (skip) continue;
    std::error_code ec2;
    if (e.is_directory(ec2)) {
      // Symlinked folders are not followed: they could loop.
      if (opt.recursive && !e.is_symlink(ec2)) list_files(e.path(), prefix + name + "-", opt, out);
      continue;
    }
    if (e.is_regular_file(ec2)) out->emplace_back(prefix + name, e.path().string());
  }
}

}  // namespace

Corpus read_text_folder(const std::string& path, const CorpusOptions& opt) {
  std::error_code ec;
  BORA_CHECK(fs::is_directory(path, ec), IoError, "'", path, "' is not a folder");
  std::vector<std::pair<std::string, std::string>> files;
  list_files(path, "", opt, &files);
  BORA_CHECK(!files.empty(), DataError, "folder '", path, "' has no task files");
  Corpus c;
  c.record_noun = "document";
  for (const auto& [task_name, file] : files) {
    auto map = MappedFile::open(file);
    c.maps.push_back(map);
    c.bytes += static_cast<int64_t>(map->size());
    const int32_t source = static_cast<int32_t>(c.sources.size());
    c.sources.push_back(file);
    std::string_view task = c.keep(task_name);
    const char* data = reinterpret_cast<const char*>(map->data());
    const char* end = data + map->size();
    int64_t kept = 0, number = 0;

    // Emits the document [b, e) that started on line `doc_line`.
    auto emit = [&](const char* b, const char* e, int64_t doc_line) {
      if (e > b && e[-1] == '\n') --e;
      if (e > b && e[-1] == '\r') --e;
      ++number;
      ++c.rows_read;
      std::string_view text(b, static_cast<size_t>(e - b));
      if (is_missing_value(text, opt)) {
        ++c.rows_missing;
        return;
      }
      size_t bad = find_invalid_utf8(text);
      BORA_CHECK(bad == std::string::npos, FormatError, file, ":", doc_line, " (document ", number,
                 "): invalid UTF-8 at byte ", bad, " of the document");
      c.records.push_back(CorpusRecord{task, text, source, doc_line, number});
      ++kept;
    };

    const char* doc_begin = data;
    int64_t doc_line = 1, line = 1;
    if (!opt.delimiter.empty()) {
      for (const char* p = data; p < end; ++line) {
        const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
        const char* stop = nl ? nl : end;
        std::string_view ln(p, static_cast<size_t>(stop - p));
        if (!ln.empty() && ln.back() == '\r') ln.remove_suffix(1);
        const char* next = nl ? nl + 1 : end;
        if (ln == opt.delimiter) {
          emit(doc_begin, p, doc_line);
          doc_begin = next;
          doc_line = line + 1;
        }
        p = next;
      }
    }
    if (doc_begin < end) emit(doc_begin, end, doc_line);
    BORA_CHECK(kept > 0, DataError, file, ": task '", task_name, "' is empty (no documents",
               opt.delimiter.empty() ? "" : cat(" between '", opt.delimiter, "' lines"), ")");
  }
  return c;
}

}  // namespace bora
