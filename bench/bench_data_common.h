// Shared by the data benchmarks: the fortunes corpus (every top-level, valid UTF-8
// file of /usr/share/games/fortunes) repeated into a folder of task files of a
// target size, and the GPT-2 tokenizer (.deps/gpt2, from launch/install-deps.sh).
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fs.h"
#include "model/tokenizer.h"

namespace bora::bench {

namespace fs = std::filesystem;

inline const char* kFortunes = "/usr/share/games/fortunes";

// (name, text) of each usable fortune file, in name order.
inline std::vector<std::pair<std::string, std::string>> fortune_files() {
  std::vector<std::pair<std::string, std::string>> out;
  std::vector<fs::path> paths;
  for (const auto& e : fs::directory_iterator(kFortunes)) paths.push_back(e.path());
  std::sort(paths.begin(), paths.end());
  for (const fs::path& p : paths) {
    std::string name = p.filename().string();
    if (name.size() > 4 && (name.rfind(".dat") == name.size() - 4 || name.rfind(".u8") == name.size() - 3))
      continue;
    if (!fs::is_regular_file(p)) continue;
    std::string text = read_file(p.string());
    if (find_invalid_utf8(text) != std::string::npos) continue;
    out.emplace_back(name, std::move(text));
  }
  BORA_CHECK(!out.empty(), IoError, "no fortune files in ", kFortunes, " (apt-get install fortunes)");
  return out;
}

// Writes every fortune file, repeated `copies` times ("%"-separated), into `dir`.
// Returns the bytes written.
inline int64_t write_repeated_corpus(const std::string& dir, int copies) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  int64_t bytes = 0;
  for (const auto& [name, text] : fortune_files()) {
    std::ofstream f(dir + "/" + name, std::ios::binary);
    std::string body = text;
    if (!body.empty() && body.back() != '\n') body += '\n';
    for (int c = 0; c < copies; ++c) {
      f << body;
      if (c + 1 < copies) f << "%\n";
      bytes += static_cast<int64_t>(body.size()) + (c + 1 < copies ? 2 : 0);
    }
  }
  return bytes;
}

inline std::string gpt2_dir() { return std::string(BORA_SOURCE_DIR) + "/.deps/gpt2"; }
inline Tokenizer load_gpt2() {
  return Tokenizer::from_files(gpt2_dir() + "/vocab.json", gpt2_dir() + "/merges.txt");
}

}  // namespace bora::bench
