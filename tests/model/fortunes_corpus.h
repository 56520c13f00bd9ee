// The multilingual text used to check and benchmark the tokenizer: the documents of
// the Debian fortunes packages (English and Portuguese at the top level with the
// Chinese files chinese, tang300, song100; each language folder that is installed:
// bg cs de eo es ga it pl ru on Debian 12). Header-only, shared by test_tokenizer,
// tokenizer_probe (the reference tests) and bench_tokenizer.
//
// A fortune file holds documents separated by lines that contain only "%". A
// document keeps its lines and their newlines exactly (including any "\r"), so odd
// whitespace of real files reaches the tokenizer. Documents that are not valid UTF-8
// are skipped (checked here by an independent decoder, not by the code under test).
#pragma once

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace bora {
namespace fortunes {

constexpr const char* kRoot = "/usr/share/games/fortunes";

struct Doc {
  std::string source;  // "ru/2001.03#5": file (relative to kRoot) and index in it
  std::string text;
};

// Strict UTF-8 check (no overlong forms, surrogates or values above U+10FFFF),
// written independently of bora::find_invalid_utf8.
inline bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    auto b = static_cast<uint8_t>(s[i]);
    int len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    uint32_t cp = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
    for (int k = 1; k < len; ++k) {
      auto c = static_cast<uint8_t>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    static const uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

// The entries of a folder, sorted, without "." and "..".
inline std::vector<std::string> sorted_entries(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") {
        names.push_back(e->d_name);
      }
    }
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// The fortune files, relative to kRoot, sorted: those at the top level, then those of
// every language folder. Regular files only (the symlinks, and folders of symlinks
// such as cz and sk, are aliases of other files), without the .dat indexes and .u8
// aliases.
inline std::vector<std::string> files() {
  std::vector<std::string> out;
  std::vector<std::string> subs = {""};
  for (const std::string& name : sorted_entries(kRoot)) {
    struct stat st {};
    std::string path = std::string(kRoot) + "/" + name;
    if (lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) subs.push_back(name);
  }
  for (const std::string& sub : subs) {
    std::string dir = std::string(kRoot) + (sub.empty() ? "" : "/" + sub);
    for (const std::string& name : sorted_entries(dir)) {
      struct stat st {};
      std::string path = dir + "/" + name;
      if (name[0] == '.' || lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      auto ends = [&](const std::string& x) {
        return name.size() > x.size() && name.compare(name.size() - x.size(), x.size(), x) == 0;
      };
      if (ends(".dat") || ends(".u8")) continue;
      out.push_back(sub.empty() ? name : sub + "/" + name);
    }
  }
  return out;
}

inline std::vector<std::string> split_documents(const std::string& data) {
  std::vector<std::string> docs;
  std::string cur;
  size_t pos = 0;
  while (pos < data.size()) {
    size_t end = data.find('\n', pos);
    size_t next = end == std::string::npos ? data.size() : end + 1;
    std::string line = data.substr(pos, next - pos);
    pos = next;
    if (line == "%\n" || line == "%\r\n" || line == "%") {
      if (!cur.empty()) docs.push_back(cur);
      cur.clear();
    } else {
      cur += line;
    }
  }
  if (!cur.empty()) docs.push_back(cur);
  return docs;
}

// Documents of every file, at most `max_bytes_per_file` from each (the Chinese files,
// whose documents are few but long, get `chinese_factor` times that); 0: no limit.
// `skipped` counts the documents dropped as invalid UTF-8.
inline std::vector<Doc> documents(size_t max_bytes_per_file, size_t chinese_factor = 1,
                                  size_t* skipped = nullptr) {
  std::vector<Doc> out;
  size_t bad = 0;
  for (const std::string& file : files()) {
    std::ifstream in(std::string(kRoot) + "/" + file, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    bool chinese = file == "chinese" || file == "tang300" || file == "song100";
    size_t cap = max_bytes_per_file * (chinese ? chinese_factor : 1);
    size_t taken = 0, index = 0;
    for (std::string& text : split_documents(ss.str())) {
      ++index;
      if (cap && taken >= cap) break;
      if (!valid_utf8(text)) {
        ++bad;
        continue;
      }
      taken += text.size();
      out.push_back(Doc{file + "#" + std::to_string(index), std::move(text)});
    }
  }
  if (skipped) *skipped = bad;
  return out;
}

}  // namespace fortunes
}  // namespace bora
