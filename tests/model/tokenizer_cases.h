// The texts on which the GPT-2 tokenizer is checked: a sample of the fortunes of every
// installed language, hand-made hard cases, every vocabulary token in a few contexts,
// and a sweep over the Unicode scalar values. Header-only, shared by test_tokenizer
// (bora's own properties: round trips, truncation) and tokenizer_probe (which encodes
// them for test_tokenizer_reference.py, the comparison with tiktoken and HF tokenizers),
// so that both check the same texts.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "fortunes_corpus.h"
#include "model/tokenizer.h"

namespace bora {
namespace tokenizer_cases {

using fortunes::Doc;

// A deterministic pseudo-random generator for test text.
struct Lcg {
  uint64_t s;
  uint32_t next() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(s >> 33);
  }
};

inline void append_utf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    *out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    *out += static_cast<char>(0xC0 | (cp >> 6));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *out += static_cast<char>(0xE0 | (cp >> 12));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    *out += static_cast<char>(0xF0 | (cp >> 18));
    *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

inline std::string hex_cp(uint32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "U+%04X", cp);
  return buf;
}

// The fortunes sample: 4 KB of documents from every fortune file (32 KB from the three
// Chinese ones), ~1.5 MB in ~9000 documents.
inline std::vector<Doc> fortunes_sample() { return fortunes::documents(4000, 8); }

// Hand-made hard cases: white space, contractions (lower and upper case), punctuation,
// digits, emoji sequences, combining marks, RTL and CJK text, comma-laden punctuation
// (every string of up to 4 characters over `",]})'.[ a`), long words.
inline std::vector<Doc> hand_made() {
  std::vector<Doc> d;
  auto add = [&](const std::string& name, const std::string& text) {
    d.push_back(Doc{name, text});
  };
  int n = 0;
  auto h = [&](const std::string& text) { add("case " + std::to_string(n++), text); };
  // white space: runs of every kind, leading and trailing, before words and punctuation
  for (const char* s :
       {"", " ", "  ", "   ", "\t", "\n", "\r\n", "\n\n", " \n", "\n ", "x ", "x  ", " x", "  x",
        "   x", "x\n", "x\n\n", "a\r\nb", "a\r\n\r\nb", "line one\r\nline two\r\n",
        "Hello world", "Hello  world", "Hello   world   ", "  leading", "trailing  ",
        "tab\tsep", "\t\tword", "\tword", "word\t", "word \t word", "a \n b", "a\n b", "a \nb",
        " \t \n  \r\n x", "\v\f x", "\v", "\f", "x\vy", "x\fy", "\r", "\r\r\n", "a\rb",
        "\t\t\t", " \t", "x\t\t y", "x \t", "end.   ", "end.\t \n", "a\u00A0b", "\u00A0word",
        "\u00A0\u00A0word", " \u00A0word", "word\u00A0", "a \u00A0 b", "\u00A0\u00A0",
        "word\u3000word", "\u3000\u3000x", "\u3000 x", "x \u3000", "x\u3000", "a\u2028b",
        "\u2028", "\u2028\u2028x", "x \u2028y", "a\u2029 b", "\u1680x", "\u205F x",
        "a\u2000\u2001\u200A b", "\u202F\u00A0 ", "zero\u200Bwidth", "zw\u200C\u200Dj",
        "\u200B \u200B", "\uFEFFbom", "a \uFEFF b", "\uFEFF", "\uFEFF\uFEFF", " \uFEFF",
        "\uFEFF x", "x\uFEFF", "\u0085next line", "\u0085", "a\u0085", "\u0085\u0085x",
        " \u0085", "x \u0085 y", "x\u0085 y", "x \u0085y", "x\u180Ey",
        "\u3000\u00A0\u2028 \t\n x", "     many spaces before", "end with spaces     ",
        "\n\n\nthree newlines", "mixed \t\n \t\n words"}) {
    h(s);
  }
  h(std::string("a\0b \0 \x01\x1f\x7f", 9));  // control characters
  // contractions and apostrophes: the regex knows only the lower-case forms
  for (const char* s :
       {"don't", "DON'T", "it's", "IT'S", "It'S", "we're", "WE'RE", "they've", "I'm", "we'll",
        "he'd", "I'LL", "'S", "'T", "'RE", "'VE", "'M", "'LL", "'D", "YOU'RE", "THEY'VE",
        "SHE'D", "I'M", "Don'T", "IT'S'S", "'Ll", "'lL", "'Re", "'rE", "HE'S GONE. WE'LL SEE.",
        "'s'S're'RE've'm'll'd", "rock 'n' roll", "' s", "'re'", "x's'", "''''ll", "'''s", "'",
        "''", "'ll've", "O'Neil's", "l'homme", "’s curly", "5's", " 's", "'s", "'sx", "'res",
        "' ve", "'\u0301s", "\u00E9's", "'\u00E9", " 'S"}) {
    h(s);
  }
  // punctuation runs, code, markup
  for (const char* s :
       {"!!!???...", "--==>>", "a,b;c", "(\"quoted\")", "...", "!!! ???", " !!!", "  !!!",
        "x = 1; // comment\n\tif (y) {\n\t\treturn z;\n\t}\n", "https://example.com/a?b=c&d=e#f",
        "user@example.com", "<|endoftext|>", "<s> </s> <pad> <unk>", "#include <vector>",
        "$$ \\frac{a}{b} $$", "~~~ *** ___ ```", "«ein» „zwei“ ‹drei›", "¿Qué? ¡Sí!",
        "{\"a\":[1,2],\"b\":{\"c\":\"d\"}},[\"x\",\"y\"]", "\"],\" \"},\" \"),\" '],'",
        "Ġ Ċ ĉ"}) {
    h(s);
  }
  // strings whose merges' halves contain commas
  for (const char* s : {"\",\"", "},\"", "],\"", "),\"", "\"],\"", "],[", "',\"", ".\",\"",
                        "','", " ,\"", ".,\"", "x\",\"y", "[\"a\",\"b\"],[\"c\"]"}) {
    h(s);
  }
  // digits and numbers of many scripts
  for (const char* s :
       {"123", "12345678901234567890", "3.14159", "1,000,000", " 42", "v2.0", "a1b2c3",
        "٣٤٥ ١٢", "²³½¼", "Ⅻ ⅻ", "①②③", "१२३", "๑๒๓", "𝟘𝟙𝟚", "0x1F600", "-5e-10",
        "0000000", " 123 456", "3.14e10", "１２３", "١٢٣٤٥٦٧٨٩٠", "۱۲۳", "१२३४", "𝟏𝟐𝟑", "½⅓¼",
        "Ⅰ Ⅱ Ⅲ", "¹²³", "2024-01-01T12:34:56Z", "1,234,567.89", "x1", "1x", " 1 2  3   4",
        "9\u20E3", "٣x", "abc123def456"}) {
    h(s);
  }
  h(std::string(120, '1'));
  h("a" + std::string(50, '0') + " " + std::string(77, '9') + "b");
  // emoji: ZWJ families, flags, tag sequences, skin tones, keycaps, variation selectors
  for (const char* s :
       {"😀", "Hello 😀 world", "😀😀😀", " 😀", "👨‍👩‍👧‍👦", "👩‍❤️‍💋‍👨", "👨‍👨‍👧 👩‍👩‍👦‍👦",
        "🇳🇴🇩🇪", "🇺🇸🇬🇧🇯🇵", " 🇫🇷", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "🏳️‍🌈", "🏳️‍⚧️", "👍🏽", "👋🏻👋🏼👋🏽👋🏾👋🏿",
        " 👋🏿x", "1️⃣ #️⃣ *️⃣ 0️⃣", "1️⃣2️⃣3️⃣", "©️ ®️ ™️", "I ❤️ NY", "☺︎ ☺️", "🧑🏽‍💻",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𠀀𠀁𠀂", "a😀b", "𐍈𐌰𐌹", "🀄🃏"}) {
    h(s);
  }
  // combining marks
  for (const char* s :
       {"e\u0301", "cafe\u0301 au lait", "n\u0303o", "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǵ̜o̯", "a\u0300\u0301\u0302",
        "\u0301", " \u0301", "1\u0301", "!\u0301", "\u0301\u0301 x", "x \u0301\u0302",
        "ḁ̵̛", "각", "\u1100\u1161\u11A8", "ก\u0E31", "ǅemal", "ﬁ ﬂ", "Ａｂｃ１２３"}) {
    h(s);
  }
  // scripts, RTL (Arabic, Hebrew, bidi controls)
  for (const char* s :
       {"नमस्ते दुनिया", "हिन्दी में लिखा गया पाठ", "مرحبا بالعالم", "السَّلَامُ عَلَيْكُمْ",
        "العدد ١٢٣ و 456", "ﷺ ﷽", "שָׁלוֹם עוֹלָם", "עברית 123 English", "\u200F\u200Eabc",
        "abc \u202Eevil\u202C txt", "\u061C\u0627", "สวัสดีชาวโลก", "ภาษาไทยไม่มีช่องว่าง",
        "안녕하세요 세계", "Γειά σου Κόσμε", "Привет, мир!", "Ελληνικά και Русский"}) {
    h(s);
  }
  // CJK text and punctuation
  for (const char* s :
       {"こんにちは、世界！", "你好，世界。", "「こんにちは」『世界』", "、。〃〄々〆〇〈〉《》",
        "中文，标点；符号：“引号”（括号）【方括号】", "〜・ー", "ｶﾀｶﾅ ｶﾞ", "。。。", " 。",
        "日本語のテキスト。句読点も、ある。", "〒100-0001 東京都", "ㄅㄆㄇ", "〡〢〣"}) {
    h(s);
  }
  // every string of up to 4 characters over a comma-heavy punctuation alphabet,
  // joined by "\n\n" into documents of 500 strings
  const std::string alphabet = "\",]})'.[ a";
  std::vector<std::string> level = {""};
  std::string batch;
  int strings = 0;
  for (int len = 1; len <= 4; ++len) {
    std::vector<std::string> next;
    for (const std::string& s : level) {
      for (char c : alphabet) next.push_back(s + c);
    }
    for (const std::string& s : next) {
      batch += s + "\n\n";
      if (++strings % 500 == 0) {
        add("punctuation combinations " + std::to_string(strings), batch);
        batch.clear();
      }
    }
    level = std::move(next);
  }
  add("punctuation combinations", batch);
  // long words: the heap path of BPE (> 64 bytes) and long white space runs
  Lcg rng{42};
  add("a*1000", std::string(1000, 'a'));
  std::string ab;
  for (int i = 0; i < 600; ++i) ab += "ab";
  add("ab*600", ab);
  add("=*500", std::string(500, '='));
  add("digits*300", std::string(300, '7'));
  add("spaces*300", std::string(300, ' ') + "x" + std::string(300, ' '));
  add("newlines*100", std::string(100, '\n') + "x");
  const char* letters[] = {"a", "e", "i", "o", "u", "n", "s", "t", "r", "l", "th", "ing",
                           "é", "ö", "ß", "я", "ж", "中", "文", "ก", "ा", "्"};
  for (int w = 0; w < 30; ++w) {
    std::string word;
    size_t len = 65 + rng.next() % (w < 20 ? 200 : 3000);
    while (word.size() < len) word += letters[rng.next() % (w % 3 == 0 ? 12 : 22)];
    size_t cut = 70;  // a prefix that ends on a character boundary
    while ((static_cast<uint8_t>(word[cut]) & 0xC0) == 0x80) --cut;
    add("random long word " + std::to_string(w), word + " " + word.substr(0, cut));
  }
  // Letters of real documents run together: long words with real statistics.
  std::vector<Doc> real = fortunes::documents(3000, 1);
  for (size_t i = 0; i < real.size(); i += real.size() / 20 + 1) {
    std::string word;
    for (char c : real[i].text) {
      if (c != ' ' && c != '\n' && c != '\t' && c != '\r' && c != ',' && c != '.') word += c;
    }
    if (fortunes::valid_utf8(word)) add(real[i].source + " without spaces", word);
  }
  return d;
}

// Every token of the vocabulary whose bytes are valid UTF-8, alone, after a letter,
// twice and between spaces ("t\nxt\ntt\n t \n"), 200 tokens per document: whole
// pieces that are tokens, and BPE that must stop short of them.
inline std::vector<Doc> vocabulary_contexts(const Tokenizer& tok) {
  std::vector<Doc> docs;
  std::string text;
  int32_t first = 0, count = 0;
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    if (tok.is_special(id)) continue;
    std::string t = tok.decode({id});
    if (!fortunes::valid_utf8(t)) continue;
    if (count == 0) first = id;
    text += t + "\nx" + t + "\n" + t + t + "\n " + t + " \n";
    if (++count == 200) {
      docs.push_back(Doc{"vocabulary ids " + std::to_string(first) + ".." + std::to_string(id),
                         text});
      text.clear();
      count = 0;
    }
  }
  if (!text.empty()) docs.push_back(Doc{"vocabulary ids " + std::to_string(first) + "..", text});
  return docs;
}

// The Unicode sweep: each scalar value c in the context "a" c " " c "1\n" (after a
// letter, before a space, after a space, before a digit), which splits differently
// for each class (letter: "ac" " c" "1"; number: "a" "c" " c1"; other: "a" "c" " c"
// "1"; white space: "a" "c " "c" "1"), 256 code points per document. Every scalar
// value of planes 0-3 and 14, where all assigned characters are; of planes 4-13 (unassigned)
// and 15-16 (private use), whose code points are all "other" for every engine,
// the first and last 256 and every 61st (the reference test compares the class of
// every code point separately).
inline std::vector<Doc> unicode_sweep() {
  std::vector<uint32_t> cps;
  for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    uint32_t plane = cp >> 16, low = cp & 0xFFFF;
    if (plane <= 3 || plane == 14 || low < 256 || low >= 0xFF00 || low % 61 == 0) {
      cps.push_back(cp);
    }
  }
  std::vector<Doc> docs;
  for (size_t i = 0; i < cps.size(); i += 256) {
    size_t end = std::min(cps.size(), i + 256);
    std::string text;
    for (size_t k = i; k < end; ++k) {
      std::string c;
      append_utf8(&c, cps[k]);
      text += "a" + c + " " + c + "1\n";
    }
    docs.push_back(Doc{"sweep " + hex_cp(cps[i]) + ".." + hex_cp(cps[end - 1]), text});
  }
  return docs;
}

}  // namespace tokenizer_cases
}  // namespace bora
