// Helpers shared by the data tests: fresh temporary folders, small files, the GPT-2
// tokenizer (.deps/gpt2, from launch/install-deps.sh), and synthetic datasets written
// without a tokenizer.
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fs.h"
#include "data/dataset_writer.h"
#include "model/tokenizer.h"

namespace bora::test {

namespace fs = std::filesystem;

// This process's scratch root, removed when the process exits.
inline fs::path scratch_root() {
  return fs::path(::testing::TempDir()) / ("bora_data_" + std::to_string(::getpid()));
}
struct ScratchCleaner {
  ~ScratchCleaner() {
    std::error_code ec;
    fs::remove_all(scratch_root(), ec);
  }
};
inline ScratchCleaner scratch_cleaner;

// A fresh, empty folder for the current test.
inline std::string fresh_dir(const std::string& tag = "") {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string(info->test_suite_name()) + "." + info->name() + tag;
  fs::path p = scratch_root() / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  ASSERT_TRUE(f.good()) << path;
}

inline std::string gpt2_dir() { return std::string(BORA_SOURCE_DIR) + "/.deps/gpt2"; }

// The GPT-2 tokenizer, loaded once per test process.
inline const Tokenizer& gpt2() {
  static const Tokenizer tok =
      Tokenizer::from_files(gpt2_dir() + "/vocab.json", gpt2_dir() + "/merges.txt");
  return tok;
}

// Expects `fn` to throw an Error of type E whose message contains every one of `parts`.
template <class E>
void expect_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no exception; expected one mentioning '" << (parts.empty() ? "" : parts[0]) << "'";
  } catch (const E& e) {
    for (const std::string& p : parts)
      EXPECT_NE(e.message().find(p), std::string::npos) << "message: " << e.message() << "\nmissing: " << p;
    EXPECT_EQ(e.message().find('\n'), std::string::npos) << "not one line: " << e.message();
  } catch (const Error& e) {
    ADD_FAILURE() << "wrong error type (exit code " << e.exit_code() << "): " << e.what();
  }
}

// A synthetic task: `n[s]` sequences per split, lengths 2..max_len, ids from `rng`.
inline TaskSequences synthetic_task(const std::string& name, std::array<int, 3> n, int64_t vocab,
                                    int64_t max_len, std::mt19937_64& rng) {
  TaskSequences t;
  t.name = name;
  t.source_name = name;
  std::uniform_int_distribution<int64_t> len(2, max_len);
  std::uniform_int_distribution<int64_t> id(0, vocab - 1);
  for (int s = 0; s < 3; ++s) {
    for (int i = 0; i < n[s]; ++i) {
      int64_t L = len(rng);
      std::vector<int32_t> ids(static_cast<size_t>(L));
      for (auto& x : ids) x = static_cast<int32_t>(id(rng));
      int32_t plen = static_cast<int32_t>(1 + rng() % static_cast<uint64_t>(L - 1));
      t.splits[s].add(ids.data(), L, plen, i, false);
    }
  }
  t.rows = t.documents();
  return t;
}

inline Manifest synthetic_info(int64_t vocab, int64_t max_len) {
  Manifest info;
  info.created_by = "test";
  info.tokenizer_identity = "0123456789abcdef";
  info.vocab_size = vocab;
  info.bos_id = 0;
  info.eos_id = 0;
  info.max_len = max_len;
  return info;
}

}  // namespace bora::test
