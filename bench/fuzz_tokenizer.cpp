// fuzz_tokenizer: libFuzzer target for the GPT-2 tokenizer (built with
// -DBORA_FUZZ=ON and clang; needs .deps/gpt2 from launch/install-deps.sh).
//
//   build-fuzz/bin/fuzz_tokenizer -max_total_time=120 corpus_dir/
//
// For every input:
//   - invalid UTF-8: encode() and pretokenize() throw FormatError naming the offset
//     that find_invalid_utf8() reports, and the bytes before it are valid;
//   - valid UTF-8: the pre-tokens tile the input; decode(encode(x)) == x; the ids
//     equal those of a naive string-based BPE written like OpenAI's encoder.py bpe()
//     (so the id-pair table, the scan and the heap paths are checked on any input);
//     a truncated tokenizer also round-trips with ids below its vocabulary size;
//   - the input read as ids: decode never fails on valid ids, and when the bytes it
//     gives are valid UTF-8 they encode and decode back to themselves.
// A failed check prints the case and aborts (libFuzzer then saves the input).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "model/tokenizer.h"

namespace {

using bora::Tokenizer;

std::string encoder_dir() {
  return std::string(BORA_SOURCE_DIR) + "/.deps/gpt2";
}

[[noreturn]] void fail(const std::string& what, std::string_view input) {
  std::fprintf(stderr, "fuzz_tokenizer: CHECK FAILED: %s\ninput (%zu bytes):", what.c_str(),
               input.size());
  for (unsigned char c : input.substr(0, 200)) std::fprintf(stderr, " %02x", c);
  std::fprintf(stderr, "\n");
  std::abort();
}

#define CHECK(cond, what) \
  do {                    \
    if (!(cond)) fail(what, input); \
  } while (0)

// encoder.py's bpe() on strings: merge every occurrence of the lowest-ranked
// pair, left to right, until no pair has a rank.
struct NaiveBpe {
  std::map<std::pair<std::string, std::string>, int> rank;
  std::map<std::string, int32_t> id;
  std::string byte_char[256];

  NaiveBpe() {
    bora::Json vocab = bora::read_json_file(encoder_dir() + "/vocab.json");
    for (auto it = vocab.begin(); it != vocab.end(); ++it) id[it.key()] = it.value();
    std::string merges = bora::read_file(encoder_dir() + "/merges.txt");
    size_t pos = merges.find('\n') + 1;  // skip #version
    int r = 0;
    while (pos < merges.size()) {
      size_t end = merges.find('\n', pos);
      std::string line = merges.substr(pos, end - pos);
      pos = end + 1;
      if (line.empty()) continue;
      size_t sp = line.find(' ');
      rank[{line.substr(0, sp), line.substr(sp + 1)}] = r++;
    }
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
      int cp = printable ? b : 256 + n++;
      std::string& s = byte_char[b];
      if (cp < 0x80) {
        s += static_cast<char>(cp);
      } else {
        s += static_cast<char>(0xC0 | (cp >> 6));
        s += static_cast<char>(0x80 | (cp & 0x3F));
      }
    }
  }

  void encode_piece(std::string_view piece, std::vector<int32_t>* out) const {
    std::vector<std::string> word;
    for (unsigned char c : piece) word.push_back(byte_char[c]);
    while (word.size() > 1) {
      int best = -1;
      size_t at = 0;
      for (size_t i = 0; i + 1 < word.size(); ++i) {
        auto it = rank.find({word[i], word[i + 1]});
        if (it != rank.end() && (best < 0 || it->second < best)) best = it->second, at = i;
      }
      if (best < 0) break;
      const std::string first = word[at], second = word[at + 1];
      std::vector<std::string> merged;
      for (size_t i = 0; i < word.size();) {
        if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
          merged.push_back(first + second);
          i += 2;
        } else {
          merged.push_back(word[i++]);
        }
      }
      word = std::move(merged);
    }
    for (const std::string& s : word) out->push_back(id.at(s));
  }
};

struct State {
  Tokenizer full = Tokenizer::from_files(encoder_dir() + "/vocab.json",
                                         encoder_dir() + "/merges.txt");
  Tokenizer small = full.truncated(300);
  NaiveBpe naive;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const State* state = new State();  // loaded once, never freed (as libFuzzer wants)
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const Tokenizer& tok = state->full;

  const size_t bad = bora::find_invalid_utf8(input);
  if (bad != std::string_view::npos) {
    CHECK(bad < size, "offset past the end");
    CHECK(bora::find_invalid_utf8(input.substr(0, bad)) == std::string_view::npos,
          "the bytes before the reported offset are not valid");
    const std::string want = "byte offset " + std::to_string(bad) + " ";
    for (int api = 0; api < 2; ++api) {
      try {
        if (api == 0) tok.encode(input);
        if (api == 1) bora::pretokenize(input);
        fail("no FormatError for invalid UTF-8", input);
      } catch (const bora::FormatError& e) {
        CHECK(std::strstr(e.what(), want.c_str()) != nullptr, "the error names another offset");
      }
    }
  } else {
    std::vector<std::string_view> pieces = bora::pretokenize(input);
    std::vector<int32_t> expected;
    size_t at = 0;
    for (std::string_view p : pieces) {
      CHECK(!p.empty(), "empty piece");
      CHECK(p.data() == input.data() + at, "pieces do not tile the input");
      at += p.size();
      state->naive.encode_piece(p, &expected);
    }
    CHECK(at == size, "pieces do not cover the input");
    std::vector<int32_t> ids = tok.encode(input);
    CHECK(ids == expected, "ids differ from the naive BPE");
    CHECK(tok.decode(ids) == input, "decode(encode(x)) != x");
    std::vector<int32_t> small = state->small.encode(input);
    for (int32_t id : small) CHECK(id >= 0 && id < state->small.vocab_size(), "id out of range");
    CHECK(state->small.decode(small) == input, "truncated: decode(encode(x)) != x");
  }

  // The bytes as ids (2 bytes each): decode, and re-encode what is valid text.
  std::vector<int32_t> ids;
  for (size_t i = 0; i + 1 < size; i += 2) {
    ids.push_back(static_cast<int32_t>((data[i] | (data[i + 1] << 8)) % tok.vocab_size()));
  }
  std::string text = tok.decode(ids);
  if (bora::find_invalid_utf8(text) == std::string_view::npos) {
    CHECK(tok.decode(tok.encode(text)) == text, "decoded ids do not round-trip");
  }
  return 0;
}
