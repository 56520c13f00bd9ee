// The GPT-2 pre-tokenizer as a hand-written scanner over code points, and UTF-8
// validation. Defines bora::pretokenize, bora::find_invalid_utf8 and the
// allocation-free building block detail::pretoken_end used by Tokenizer::encode_into.
//
// GPT-2 splits text with the regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (tiktoken writes it '(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|
// \s+(?!\S)|\s, which matches the same pieces: possessive runs lose nothing here, and
// \s+(?!\S) fails only on one white space character before a non-space, which \s
// then takes alone, as \s+ would). std::regex has no Unicode classes and is slow, so
// the scanner below implements the leftmost-alternative-wins semantics by hand; the
// classes come from unicode_tables.cpp, generated from tiktoken itself
// (gen_unicode_tables.py). The alternatives cover every code point, so the pieces
// always tile the input.
#include <algorithm>
#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "model/tokenizer.h"

namespace bora {

// Defined in the generated unicode_tables.cpp (same struct there).
namespace unicode {
struct ClassRange {
  uint32_t first, last;
  uint8_t cls;
};
extern const ClassRange kClassRanges[];
extern const size_t kNumClassRanges;
}  // namespace unicode

namespace detail {
size_t pretoken_end(std::string_view text, size_t pos);
void check_utf8(std::string_view text);
}  // namespace detail

namespace {

enum CharClass : uint8_t { kOther = 0, kLetter = 1, kNumber = 2, kSpace = 3 };

// The class of every BMP code point in one 64 KiB table (one load per character on
// the hot path); code points above U+FFFF, rare in text, use a binary search.
struct ClassTable {
  std::array<uint8_t, 0x10000> bmp{};
  const unicode::ClassRange* astral_begin = nullptr;
  const unicode::ClassRange* astral_end = nullptr;

  ClassTable() {
    const unicode::ClassRange* begin = unicode::kClassRanges;
    const unicode::ClassRange* end = begin + unicode::kNumClassRanges;
    for (const unicode::ClassRange* r = begin; r != end; ++r) {
      for (uint32_t cp = r->first; cp <= r->last && cp < 0x10000; ++cp) bmp[cp] = r->cls;
    }
    astral_begin = std::lower_bound(begin, end, 0x10000u, [](const unicode::ClassRange& r,
                                                             uint32_t cp) { return r.last < cp; });
    astral_end = end;
  }

  uint8_t of(uint32_t cp) const {
    if (cp < 0x10000) return bmp[cp];
    const unicode::ClassRange* r = std::lower_bound(
        astral_begin, astral_end, cp,
        [](const unicode::ClassRange& range, uint32_t c) { return range.last < c; });
    return (r != astral_end && r->first <= cp) ? r->cls : uint8_t{kOther};
  }
};

// Immutable after its thread-safe construction on first use.
const ClassTable& class_table() {
  static const ClassTable table;
  return table;
}

// Decodes the code point at p; the text has been validated, so no checks.
inline uint32_t decode_valid(const uint8_t* p, size_t* len) {
  uint8_t b = p[0];
  if (b < 0x80) {
    *len = 1;
    return b;
  }
  if (b < 0xE0) {
    *len = 2;
    return (uint32_t(b & 0x1F) << 6) | (p[1] & 0x3F);
  }
  if (b < 0xF0) {
    *len = 3;
    return (uint32_t(b & 0x0F) << 12) | (uint32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
  }
  *len = 4;
  return (uint32_t(b & 0x07) << 18) | (uint32_t(p[1] & 0x3F) << 12) |
         (uint32_t(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
}

}  // namespace

size_t find_invalid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    // ASCII runs, the bulk of most text, 8 bytes per step.
    while (i + 8 <= n) {
      uint64_t w;
      std::copy(s + i, s + i + 8, reinterpret_cast<uint8_t*>(&w));
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    uint8_t b = s[i];
    if (b < 0x80) {
      ++i;
      continue;
    }
    // Well-formed sequences per the Unicode standard (table 3-7): no overlong forms,
    // no surrogates, nothing above U+10FFFF.
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b >= 0xC2 && b <= 0xDF) {
      len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (i + len > n) return i;
    if (s[i + 1] < lo || s[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

namespace detail {

// FormatError naming the byte offset (and value) of the first invalid sequence.
void check_utf8(std::string_view text) {
  size_t bad = find_invalid_utf8(text);
  if (bad == std::string_view::npos) return;
  static const char kHex[] = "0123456789abcdef";
  uint8_t b = static_cast<uint8_t>(text[bad]);
  BORA_THROW(FormatError, "invalid UTF-8 at byte offset ", bad, " (byte 0x", kHex[b >> 4],
             kHex[b & 15], ")");
}

// The end of the piece that starts at `pos` (text is valid UTF-8, pos < size).
// The branches follow the regex alternatives in order; the first that matches wins.
size_t pretoken_end(std::string_view text, size_t pos) {
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  const ClassTable& classes = class_table();

  size_t len;
  uint32_t c = decode_valid(s + pos, &len);

  // 's 't 're 've 'm 'll 'd (lower case only, as in the regex).
  if (c == '\'' && pos + 1 < n) {
    uint8_t a = s[pos + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return pos + 2;
    if (pos + 2 < n) {
      uint8_t b = s[pos + 2];
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
        return pos + 3;
      }
    }
  }

  uint8_t cls = classes.of(c);
  // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": one optional U+0020 before a run
  // of letters, numbers or others. A space followed by white space (or nothing) is
  // left to the white-space alternatives.
  if (c == ' ' && pos + 1 < n) {
    size_t next_len;
    uint8_t next_cls = classes.of(decode_valid(s + pos + 1, &next_len));
    if (next_cls != kSpace) {
      cls = next_cls;
      pos += 1;
      len = next_len;
    }
  }
  if (cls != kSpace) {
    pos += len;
    while (pos < n) {
      uint8_t b = s[pos];
      if (b < 0x80) {  // ASCII: no decoding needed
        if (classes.bmp[b] != cls) break;
        ++pos;
        continue;
      }
      uint32_t cp = decode_valid(s + pos, &len);
      if (classes.of(cp) != cls) break;
      pos += len;
    }
    return pos;
  }

  // "\s+(?!\S)|\s+": the greedy run of white space matches whole when it ends the
  // text; when a non-space follows, the lookahead makes it give back its last
  // character (which then starts the next piece, e.g. " word"), unless the run is a
  // single character, which "\s+" then matches alone.
  size_t last = pos;  // start of the run's last character
  size_t count = 1;
  pos += len;
  while (pos < n) {
    uint32_t cp = decode_valid(s + pos, &len);
    if (classes.of(cp) != kSpace) break;
    last = pos;
    pos += len;
    ++count;
  }
  if (pos == n || count == 1) return pos;
  return last;
}

}  // namespace detail

std::vector<std::string_view> pretokenize(std::string_view text) {
  detail::check_utf8(text);
  std::vector<std::string_view> pieces;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = detail::pretoken_end(text, pos);
    pieces.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return pieces;
}

}  // namespace bora
