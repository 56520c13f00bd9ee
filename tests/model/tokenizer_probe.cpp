// tokenizer_probe: bora's side of the reference test (test_tokenizer_reference.py).
// Encodes the texts of tokenizer_cases.h with bora's GPT-2 tokenizer, or shows the
// character class of every Unicode scalar value, for the test to compare with tiktoken
// and HF tokenizers. Test-only; not installed.
//
//   tokenizer_probe --texts fortunes|cases|vocabulary|sweep --out docs.jsonl
//   tokenizer_probe --texts classes --out classes.json
//
// docs.jsonl: one line per document, {"source", "text", "ids", "pieces"}, pieces being
// the UTF-8 byte length of each pre-token. classes.json: [[first, last, cls], ...],
// the runs of code points of class 1 letter, 2 number, 3 white space (others left
// out), as bora's pretokenize shows them, not as its tables say: c is a letter when
// "a" c is one piece, a number when "1" c is, "other" when "!" c is, else white space.
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "core/main.h"
#include "core/options.h"
#include "model/tokenizer.h"
#include "model/tokenizer_cases.h"

namespace bora {
namespace {

int class_of(uint32_t cp) {
  std::string c;
  tokenizer_cases::append_utf8(&c, cp);
  if (pretokenize("a" + c).size() == 1) return 1;
  if (pretokenize("1" + c).size() == 1) return 2;
  if (pretokenize("!" + c).size() == 1) return 0;
  return 3;
}

void write_classes(std::ofstream& out) {
  Json runs = Json::array();
  for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    int cls = class_of(cp);
    if (cls == 0) continue;
    if (!runs.empty() && runs.back()[1] == cp - 1 && runs.back()[2] == cls) {
      runs.back()[1] = cp;
    } else {
      runs.push_back(Json::array({cp, cp, cls}));
    }
  }
  out << runs.dump() << "\n";
}

void write_docs(std::ofstream& out, const Tokenizer& tok, const std::vector<fortunes::Doc>& docs) {
  for (const fortunes::Doc& d : docs) {
    Json j;
    j["source"] = d.source;
    j["text"] = d.text;
    j["ids"] = tok.encode(d.text);
    std::vector<size_t> pieces;
    for (std::string_view p : pretokenize(d.text)) pieces.push_back(p.size());
    j["pieces"] = pieces;
    out << j.dump() << "\n";
  }
}

int run(int argc, char** argv) {
  std::string texts = "cases", out_path, gpt2 = std::string(BORA_SOURCE_DIR) + "/.deps/gpt2";
  OptionTable t("tokenizer_probe", "bora's GPT-2 tokenizer on the reference test's texts");
  t.add_choice("texts", &texts, {"fortunes", "cases", "vocabulary", "sweep", "classes"},
               "what to write (see tests/model/tokenizer_cases.h)");
  t.add("out", &out_path, "output file (JSONL of documents, or JSON of class runs)");
  t.add("gpt2", &gpt2, "folder with GPT-2's vocab.json and merges.txt");
  if (!t.parse(argc, argv)) return 0;
  BORA_CHECK(!out_path.empty(), ConfigError, "--out is required");
  std::ofstream out(out_path, std::ios::binary);
  BORA_CHECK(out.good(), IoError, "cannot write ", out_path);
  if (texts == "classes") {
    write_classes(out);
  } else {
    Tokenizer tok = Tokenizer::from_files(gpt2 + "/vocab.json", gpt2 + "/merges.txt");
    std::vector<fortunes::Doc> docs =
        texts == "fortunes"     ? tokenizer_cases::fortunes_sample()
        : texts == "cases"      ? tokenizer_cases::hand_made()
        : texts == "vocabulary" ? tokenizer_cases::vocabulary_contexts(tok)
                                : tokenizer_cases::unicode_sweep();
    write_docs(out, tok, docs);
  }
  out.close();
  BORA_CHECK(out.good(), IoError, "cannot write ", out_path);
  return 0;
}

}  // namespace
}  // namespace bora

int main(int argc, char** argv) {
  return bora::guarded_main("tokenizer_probe", [&] { return bora::run(argc, argv); });
}
