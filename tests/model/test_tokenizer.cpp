// GPT-2 byte-level BPE: bora's own properties on the texts of tokenizer_cases.h
// (round trips, pieces that tile the text), known ids, bad input and bad files,
// truncation, save/load, tokenizer.json, threads. The ids are compared with the
// references (tiktoken, HF tokenizers) by test_tokenizer_reference.py.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "fortunes_corpus.h"
#include "model/tokenizer.h"
#include "tokenizer_cases.h"

namespace bora {
namespace {

namespace fs = std::filesystem;
using Ids = std::vector<int32_t>;
using tokenizer_cases::hand_made;
using tokenizer_cases::Lcg;

// ---- GPT-2's files ------------------------------------------------------------------

std::string gpt2_dir() { return std::string(BORA_SOURCE_DIR) + "/.deps/gpt2"; }
std::string vocab_path() { return gpt2_dir() + "/vocab.json"; }
std::string merges_path() { return gpt2_dir() + "/merges.txt"; }

// Not a skip: without GPT-2's files the tokenizer is untested.
#define REQUIRE_GPT2()                                                                     \
  ASSERT_TRUE(fs::exists(vocab_path()) && fs::exists(merges_path()))                      \
      << "GPT-2's vocab.json + merges.txt are missing (" << gpt2_dir()                    \
      << "): run launch/install-deps.sh"

const Tokenizer& gpt2() {
  static const Tokenizer tok = Tokenizer::from_files(vocab_path(), merges_path());
  return tok;
}

std::string temp_dir(const std::string& name) {
  std::string dir = testing::TempDir() + "/tok_" + name + "_" + std::to_string(getpid());
  fs::remove_all(dir);
  make_dirs(dir);
  return dir;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// Text for failure messages: control bytes escaped, long texts shortened.
std::string show(const std::string& s, size_t max = 240) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > max) out += "...(" + std::to_string(s.size()) + " bytes)";
  return out;
}

// The fortunes sample of the reference test (every language) and the hand-made cases.
std::vector<fortunes::Doc> corpus() {
  std::vector<fortunes::Doc> docs = tokenizer_cases::fortunes_sample();
  for (auto& d : hand_made()) docs.push_back(std::move(d));
  return docs;
}

// ---- round trips ------------------------------------------------------------------

TEST(Tokenizer, DecodeEncodeIsIdentityAndPiecesTile) {
  REQUIRE_GPT2();
  std::vector<fortunes::Doc> docs = corpus();
  for (auto& d : tokenizer_cases::unicode_sweep()) docs.push_back(std::move(d));
  for (auto& d : tokenizer_cases::vocabulary_contexts(gpt2())) docs.push_back(std::move(d));
  for (const auto& d : docs) {
    std::string joined;
    for (std::string_view p : pretokenize(d.text)) {
      ASSERT_FALSE(p.empty()) << d.source;
      joined += p;
    }
    ASSERT_EQ(joined, d.text) << d.source;
    ASSERT_EQ(gpt2().decode(gpt2().encode(d.text)), d.text) << d.source;
  }
}

TEST(Tokenizer, EncodeIntoAppends) {
  REQUIRE_GPT2();
  Ids out = {7, 8};
  gpt2().encode_into("Hello world", &out);
  gpt2().encode_into("", &out);
  gpt2().encode_into(" again", &out);
  EXPECT_EQ(out, (Ids{7, 8, 15496, 995, 757}));
  EXPECT_EQ(gpt2().encode("Hello world"), (Ids{15496, 995}));
}

TEST(Tokenizer, SpecialTokensOfGpt2) {
  REQUIRE_GPT2();
  const Tokenizer& t = gpt2();
  EXPECT_EQ(t.vocab_size(), 50257);
  EXPECT_EQ(t.token_id("<|endoftext|>"), 50256);
  EXPECT_EQ(t.token_id("Hello"), 15496);
  EXPECT_EQ(t.token_id("no such token"), -1);
  EXPECT_TRUE(t.is_special(50256));
  EXPECT_FALSE(t.is_special(15496));
  EXPECT_FALSE(t.is_special(-1));
  EXPECT_FALSE(t.is_special(60000));
  EXPECT_EQ(t.bos_id(), 50256);
  EXPECT_EQ(t.eos_id(), 50256);
  EXPECT_EQ(t.pad_id(), -1);
  // Special tokens never come out of text...
  Ids ids = t.encode("<|endoftext|>");
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 50256), 0);
  // ...and decode as text unless skipped.
  EXPECT_EQ(t.decode({15496, 50256, 995}), "Hello<|endoftext|> world");
  EXPECT_EQ(t.decode({15496, 50256, 995}, true), "Hello world");
  EXPECT_THROW(t.decode({50257}), DataError);
  EXPECT_THROW(t.decode({-1}), DataError);
  EXPECT_EQ(t.identity_hex().size(), 16u);
}

TEST(Tokenizer, InvalidUtf8IsFormatErrorWithOffset) {
  REQUIRE_GPT2();
  struct Case {
    std::string text;
    size_t offset;
  };
  std::vector<Case> cases = {
      {"\xff", 0},
      {"abc\xc3", 3},                  // truncated 2-byte sequence
      {"ab\xc3\x28", 2},               // bad continuation
      {"x\xed\xa0\x80y", 1},           // UTF-16 surrogate
      {"\xc0\xaf", 0},                 // overlong '/'
      {"\xe0\x80\xaf", 0},             // overlong
      {"ok \xf4\x90\x80\x80", 3},      // above U+10FFFF
      {"\xf8\x88\x80\x80\x80", 0},     // 5-byte form
      {"valid \xc3\xa9 then \x80", 14},  // lone continuation byte
  };
  for (const Case& c : cases) {
    EXPECT_EQ(find_invalid_utf8(c.text), c.offset) << show(c.text);
    for (int api = 0; api < 2; ++api) {
      try {
        if (api == 0) gpt2().encode(c.text);
        if (api == 1) pretokenize(c.text);
        ADD_FAILURE() << "no error for " << show(c.text);
      } catch (const FormatError& e) {
        EXPECT_NE(std::string(e.what()).find("byte offset " + std::to_string(c.offset)),
                  std::string::npos)
            << e.what();
      }
    }
  }
  EXPECT_EQ(find_invalid_utf8("plain ASCII and é 中 😀"), std::string_view::npos);
}

TEST(Tokenizer, FindInvalidUtf8AgreesWithIndependentCheck) {
  Lcg rng{7};
  const std::string seeds[] = {"a", "é", "中", "😀", "\xed\x9f\xbf", "\xee\x80\x80",
                               "\xf4\x8f\xbf\xbf"};
  for (int i = 0; i < 200000; ++i) {
    std::string s;
    int len = rng.next() % 12;
    for (int k = 0; k < len; ++k) {
      if (rng.next() % 2) {
        s += seeds[rng.next() % 7];
      } else {
        s += static_cast<char>(rng.next() % 256);
      }
    }
    bool valid = find_invalid_utf8(s) == std::string_view::npos;
    ASSERT_EQ(valid, fortunes::valid_utf8(s)) << show(s);
    if (!valid) {  // the offset is where the valid prefix ends
      size_t off = find_invalid_utf8(s);
      ASSERT_TRUE(fortunes::valid_utf8(s.substr(0, off))) << show(s);
    }
  }
}

// ---- bad files ----------------------------------------------------------------------

// GPT-2's bytes_to_unicode, written again here for independent test files.
std::string byte_token(int b) {
  bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
  int cp = b;
  if (!printable) {
    int n = 0;
    for (int x = 0; x < b; ++x) {
      if (!((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE)) ++n;
    }
    cp = 256 + n;
  }
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// A small valid tokenizer: the 256 byte tokens, then "Ġt", "he", "Ġthe".
Json small_vocab() {
  Json v = Json::object();
  for (int b = 0; b < 256; ++b) v[byte_token(b)] = b;
  v["Ġt"] = 256;
  v["he"] = 257;
  v["Ġthe"] = 258;
  return v;
}
const char* kSmallMerges = "#version: 0.2\nĠ t\nh e\nĠt he\n";

template <class E, class F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one naming " << parts[0];
  } catch (const E& e) {
    std::string what = e.what();
    for (const std::string& p : parts) EXPECT_NE(what.find(p), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << "not one line: " << what;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong error type: " << e.what();
  }
}

TEST(Tokenizer, SmallFilesWork) {
  std::string dir = temp_dir("small");
  write_text(dir + "/vocab.json", small_vocab().dump());
  write_text(dir + "/merges.txt", kSmallMerges);
  Tokenizer t = Tokenizer::from_folder(dir);
  EXPECT_EQ(t.vocab_size(), 259);
  EXPECT_EQ(t.encode(" the then"), (Ids{258, 258, 'n'}));
  EXPECT_EQ(t.bos_id(), -1);
  EXPECT_EQ(t.pad_id(), -1);
  // No "#version" line, CRLF line ends, trailing blank lines: still fine.
  write_text(dir + "/merges.txt", "Ġ t\r\nh e\r\nĠt he\r\n\r\n\n");
  EXPECT_EQ(Tokenizer::from_folder(dir).identity(), t.identity());
}

TEST(Tokenizer, BadFilesNameTheFileAndLine) {
  std::string dir = temp_dir("bad");
  std::string vocab = dir + "/vocab.json", merges = dir + "/merges.txt";
  auto load = [&] { Tokenizer::from_files(vocab, merges); };
  auto write_both = [&](const Json& v, const std::string& m) {
    write_text(vocab, v.dump());
    write_text(merges, m);
  };

  write_text(merges, kSmallMerges);
  expect_error<IoError>(load, {vocab});  // missing vocab.json
  write_text(vocab, small_vocab().dump());
  fs::remove(merges);
  expect_error<IoError>(load, {merges});  // missing merges.txt

  write_both(small_vocab(), kSmallMerges);
  write_text(vocab, "{\"a\": 1,");
  expect_error<FormatError>(load, {vocab, "invalid JSON"});
  write_text(vocab, "[1, 2]");
  expect_error<FormatError>(load, {vocab, "object"});

  Json v = small_vocab();
  v["x"] = "seven";
  write_both(v, kSmallMerges);
  expect_error<FormatError>(load, {vocab, "'x'", "non-integer"});

  v = small_vocab();
  v["dup"] = 257;
  write_both(v, kSmallMerges);
  expect_error<FormatError>(load, {vocab, "duplicate id 257"});

  v = small_vocab();
  v["neg"] = -3;
  write_both(v, kSmallMerges);
  expect_error<FormatError>(load, {vocab, "'neg'"});

  v = small_vocab();
  v.erase(byte_token(' '));
  write_both(v, kSmallMerges);
  expect_error<FormatError>(load, {vocab, "byte 32"});

  write_both(small_vocab(), "#version: 0.2\nĠ t\nh e x\nĠt he\n");
  expect_error<FormatError>(load, {merges, "line 3", "two tokens"});
  write_both(small_vocab(), "#version: 0.2\nĠ t\nhe\n");
  expect_error<FormatError>(load, {merges, "line 3"});
  write_both(small_vocab(), "Ġ t\n\nh e\n");
  expect_error<FormatError>(load, {merges, "line 2", "empty line"});
  write_both(small_vocab(), "#version: 0.2\nĠ t\nh e\nĠt q\n");
  expect_error<FormatError>(load, {merges, "line 4", "'Ġt q'", "vocab"});
  write_both(small_vocab(), "#version: 0.2\nĠ t\nh e\nt h\n");  // "th" not in the vocab
  expect_error<FormatError>(load, {merges, "line 4", "result", "vocab"});

  expect_error<IoError>([&] { Tokenizer::from_folder(dir + "/nothing"); }, {dir + "/nothing"});
}

TEST(Tokenizer, BadTokenizerJsonNamesTheFile) {
  std::string dir = temp_dir("badjson");
  std::string path = dir + "/tokenizer.json";
  auto load = [&] { Tokenizer::from_tokenizer_json(path); };
  auto good = [] {
    Json j;
    j["model"] = {{"type", "BPE"}, {"vocab", small_vocab()},
                  {"merges", Json::array({"Ġ t", "h e", "Ġt he"})}};
    j["added_tokens"] = Json::array({{{"id", 259}, {"content", "<|x|>"}, {"special", true}}});
    j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false},
                          {"use_regex", true}};
    return j;
  };
  write_text(path, good().dump());
  Tokenizer t = Tokenizer::from_tokenizer_json(path);
  EXPECT_EQ(t.vocab_size(), 260);
  EXPECT_TRUE(t.is_special(259));
  EXPECT_EQ(t.decode({258, 259}), " the<|x|>");
  EXPECT_EQ(t.decode({258, 259}, true), " the");

  write_text(path, "{\"model\": ");
  expect_error<FormatError>(load, {path, "invalid JSON"});
  write_text(path, "{}");
  expect_error<FormatError>(load, {path, "model"});
  Json j = good();
  j["model"]["type"] = "WordPiece";
  write_text(path, j.dump());
  expect_error<FormatError>(load, {path, "WordPiece"});
  j = good();
  j["model"]["merges"][1] = "h e x";
  write_text(path, j.dump());
  expect_error<FormatError>(load, {path, "model.merges[1]"});
  j = good();
  j["model"]["merges"][1] = Json::array({"h", 5});
  write_text(path, j.dump());
  expect_error<FormatError>(load, {path, "model.merges[1]"});
  j = good();
  j["model"]["merges"][2] = "Ġt hx";
  write_text(path, j.dump());
  expect_error<FormatError>(load, {path, "model.merges[2]", "vocab"});
  j = good();
  j["added_tokens"][0]["id"] = 100;  // id of a byte token
  write_text(path, j.dump());
  expect_error<FormatError>(load, {path, "added_tokens[0]", "duplicate id 100"});
  j = good();
  j["pre_tokenizer"]["add_prefix_space"] = true;
  write_text(path, j.dump());
  expect_error<FormatError>(load, {path, "pre_tokenizer"});
  j = good();
  j["model"]["vocab"]["Ġthe"] = 2.5;
  write_text(path, j.dump());
  expect_error<FormatError>(load, {path, "'Ġthe'"});
}

// ---- truncation, save/load, tokenizer.json, identity ---------------------------------

// The token strings of ids, each decoded alone (so comparable across vocabularies).
std::vector<std::string> token_texts(const Tokenizer& t, const Ids& ids) {
  std::vector<std::string> out;
  for (int32_t id : ids) out.push_back(t.decode({id}));
  return out;
}

TEST(Tokenizer, TruncatedIsExactBpeWithSmallVocab) {
  REQUIRE_GPT2();
  const int K = 10000;
  Tokenizer t = gpt2().truncated(K);
  EXPECT_EQ(t.vocab_size(), 4 + 256 + K);  // GPT-2's merge results are all distinct
  EXPECT_EQ(t.token_id("<s>"), 0);
  EXPECT_EQ(t.token_id("<pad>"), 1);
  EXPECT_EQ(t.token_id("</s>"), 2);
  EXPECT_EQ(t.token_id("<unk>"), 3);
  EXPECT_EQ(t.token_id("!"), 4);  // bytes in bytes_to_unicode order
  EXPECT_EQ(t.token_id("Ā"), 4 + 188);  // byte 0, the first non-printable byte
  EXPECT_EQ(t.token_id("Ġt"), 260);  // merge 0
  EXPECT_EQ(t.bos_id(), 2);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_EQ(t.pad_id(), 1);
  for (int id = 0; id < 4; ++id) EXPECT_TRUE(t.is_special(id));
  EXPECT_NE(t.identity(), gpt2().identity());

  // Which GPT-2 token strings the first K merges make (from the files, not the API).
  Json vocab = read_json_file(vocab_path());
  std::map<int32_t, std::string> token_of;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) token_of[it.value()] = it.key();
  std::set<std::string> kept;
  for (int b = 0; b < 256; ++b) kept.insert(byte_token(b));
  std::istringstream merges(read_file(merges_path()));
  std::string line;
  std::getline(merges, line);  // #version
  for (int i = 0; i < K && std::getline(merges, line); ++i) kept.insert(line.erase(line.find(' '), 1));

  Tokenizer all = gpt2().truncated(50000);
  size_t same = 0;
  std::vector<fortunes::Doc> docs = corpus();
  for (const auto& d : docs) {
    Ids full = gpt2().encode(d.text), small = t.encode(d.text);
    for (int32_t id : small) ASSERT_LT(id, t.vocab_size()) << d.source;
    ASSERT_EQ(t.decode(small), d.text) << d.source;
    bool covered = std::all_of(full.begin(), full.end(), [&](int32_t id) {
      return kept.count(token_of[id]) > 0;
    });
    if (covered) {
      ASSERT_EQ(token_texts(t, small), token_texts(gpt2(), full)) << d.source << ": " << show(d.text);
      ++same;
    }
    // Keeping every merge gives GPT-2's tokens exactly, whatever the text.
    ASSERT_EQ(token_texts(all, all.encode(d.text)), token_texts(gpt2(), full)) << d.source;
  }
  EXPECT_GE(same, 200u) << "too few documents made of the first " << K << " merges";
  std::cout << "[ truncated ] " << same << " of " << docs.size()
            << " documents use only the first " << K << " merges: same tokens\n";

  EXPECT_THROW(gpt2().truncated(50001), ConfigError);
  EXPECT_THROW(gpt2().truncated(-1), ConfigError);
  EXPECT_EQ(gpt2().truncated(0).vocab_size(), 260);
  EXPECT_EQ(gpt2().truncated(0).encode("ab"), (Ids{4 + 'a' - '!', 4 + 'b' - '!'}));
}

TEST(Tokenizer, SaveAndLoadKeepIdentity) {
  REQUIRE_GPT2();
  std::string dir = temp_dir("save");
  gpt2().save(dir + "/full");
  Tokenizer back = Tokenizer::from_folder(dir + "/full");
  EXPECT_EQ(back.identity(), gpt2().identity());
  EXPECT_EQ(back.vocab_size(), gpt2().vocab_size());
  EXPECT_EQ(Tokenizer::from_files(dir + "/full/vocab.json", dir + "/full/merges.txt").identity(),
            gpt2().identity());

  Tokenizer small = gpt2().truncated(500);
  small.save(dir + "/small");
  Tokenizer small_back = Tokenizer::from_folder(dir + "/small");
  EXPECT_EQ(small_back.identity(), small.identity());
  const std::string text = "The quick brown fox jumps over the lazy dog. Привет! 😀";
  EXPECT_EQ(small_back.encode(text), small.encode(text));
  EXPECT_EQ(back.encode(text), gpt2().encode(text));
  EXPECT_EQ(small_back.bos_id(), 2);

  // The identity covers ids and merge order: a swap of two merges changes it.
  std::string m = read_file(dir + "/small/merges.txt");
  std::istringstream in(m);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  std::swap(lines[400], lines[401]);
  std::string swapped;
  for (const auto& l : lines) swapped += l + "\n";
  write_text(dir + "/small/merges.txt", swapped);
  EXPECT_NE(Tokenizer::from_folder(dir + "/small").identity(), small.identity());
}

TEST(Tokenizer, TokenizerJsonGivesSameIdsAsVocabAndMerges) {
  REQUIRE_GPT2();
  std::string dir = temp_dir("tokjson");
  Json vocab = read_json_file(vocab_path());
  std::istringstream merges(read_file(merges_path()));
  Json as_strings = Json::array(), as_pairs = Json::array();
  std::string line;
  while (std::getline(merges, line)) {
    if (line.empty() || line.rfind("#version", 0) == 0) continue;
    size_t sp = line.find(' ');
    as_strings.push_back(line);
    as_pairs.push_back(Json::array({line.substr(0, sp), line.substr(sp + 1)}));
  }
  ASSERT_EQ(as_strings.size(), 50000u);
  for (int layout = 0; layout < 2; ++layout) {
    Json j;
    j["version"] = "1.0";
    j["added_tokens"] = Json::array({{{"id", 50256},
                                      {"content", "<|endoftext|>"},
                                      {"single_word", false},
                                      {"special", true}}});
    j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false},
                          {"trim_offsets", true}, {"use_regex", true}};
    j["model"] = {{"type", "BPE"},       {"dropout", nullptr},
                  {"unk_token", nullptr}, {"continuing_subword_prefix", ""},
                  {"end_of_word_suffix", ""}, {"fuse_unk", false},
                  {"vocab", vocab},       {"merges", layout == 0 ? as_strings : as_pairs}};
    write_text(dir + "/tokenizer.json", j.dump());
    Tokenizer t = Tokenizer::from_folder(dir);  // prefers tokenizer.json
    EXPECT_EQ(t.identity(), gpt2().identity());
    EXPECT_TRUE(t.is_special(50256));
    for (const auto& d : fortunes::documents(1500, 4)) {
      ASSERT_EQ(t.encode(d.text), gpt2().encode(d.text)) << d.source;
    }
  }
}

TEST(Tokenizer, ThreadsGiveTheSameIds) {
  REQUIRE_GPT2();
  // A fresh tokenizer, so that the threads fill its cache concurrently.
  Tokenizer t = Tokenizer::from_files(vocab_path(), merges_path());
  std::vector<fortunes::Doc> docs = fortunes::documents(2000, 4);
  std::vector<Ids> expected;
  for (const auto& d : docs) expected.push_back(gpt2().encode(d.text));
  std::vector<std::thread> threads;
  std::vector<size_t> bad(4, 0);
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      Ids ids;
      for (size_t r = 0; r < docs.size(); ++r) {
        size_t i = (r * 7919 + k * 1009) % docs.size();  // different orders per thread
        ids.clear();
        t.encode_into(docs[i].text, &ids);
        if (ids != expected[i]) ++bad[k];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int k = 0; k < 4; ++k) EXPECT_EQ(bad[k], 0u) << "thread " << k;
}

}  // namespace
}  // namespace bora
