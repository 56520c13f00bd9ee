// data_prep end to end with the real GPT-2 tokenizer: real fortune files round trip
// through shards and the reader; the output is byte-identical for any thread count;
// split sizes follow the fractions; output-folder errors.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "core/fs.h"
#include "data/dataset.h"
#include "data/sequence.h"
#include "data/split.h"
#include "data_prep/prepare.h"
#include "data_test_util.h"

namespace bora {
namespace {

using test::expect_error;
using test::fresh_dir;
using test::gpt2;

const char* kFortunes = "/usr/share/games/fortunes";
// Small, valid UTF-8 files of the Debian fortune package (about 55, 86 and 151 fortunes).
const std::vector<std::string> kFiles{"goedel", "debian", "kids"};

// A folder with copies of a few real fortune files.
std::string fortune_folder() {
  std::string dir = fresh_dir("_in");
  for (const std::string& f : kFiles) {
    std::string src = std::string(kFortunes) + "/" + f;
    if (!test::fs::exists(src)) return "";
    test::write_text(dir + "/" + f, read_file(src));
  }
  return dir;
}

PrepConfig fortune_config(const std::string& in, const std::string& out) {
  PrepConfig c;
  c.input = in;
  c.out = out;
  c.vocab = test::gpt2_dir() + "/vocab.json";
  c.merges = test::gpt2_dir() + "/merges.txt";
  c.min_docs = 0;
  c.max_docs = 0;
  c.min_text_chars = 0;
  c.max_tasks = 0;
  c.max_len = 64;  // short, so that many fortunes are truncated
  c.chunk_tokens = 512;  // several chunks per split
  c.progress = false;
  c.threads = 1;
  return c;
}

TEST(Prep, FortunesRoundTrip) {
  std::string in = fortune_folder();
  if (in.empty()) GTEST_SKIP() << "fortunes not installed";
  std::string out = fresh_dir() + "/ds";
  PrepConfig cfg = fortune_config(in, out);
  const Tokenizer& tok = gpt2();
  PrepResult res = run_data_prep(cfg, tok);
  ASSERT_EQ(res.manifest.tasks.size(), 3u);
  EXPECT_EQ(res.manifest.tokenizer_identity, tok.identity_hex());
  EXPECT_EQ(res.manifest.bos_id, 50256);  // <|endoftext|>
  EXPECT_EQ(res.manifest.token_dtype, TokenDtype::UInt16);

  // The documents as the corpus reader sees them, per task, in input order.
  Corpus corpus = read_text_folder(in, cfg.corpus_options());
  std::map<std::string, std::vector<std::string_view>> docs;
  for (const CorpusRecord& r : corpus.records) docs[std::string(r.task)].push_back(r.text);

  DatasetReader reader(out, {});
  reader.check_tokenizer(tok.identity_hex(), tok.vocab_size());
  int64_t truncated = 0, checked = 0;
  for (const std::string& name : kFiles) {
    int64_t t = reader.task_index(name);
    const std::vector<std::string_view>& d = docs[name];
    TaskSplit want = split_task(42, name, d, {0.5, 0.25, 0.25});
    std::string prompt = " [task] " + name;
    std::set<int64_t> seen;
    for (Split s : kAllSplits) {
      const auto& want_docs = want.docs[static_cast<int>(s)];
      ASSERT_EQ(reader.size(t, s), static_cast<int64_t>(want_docs.size()));
      for (int64_t i = 0; i < reader.size(t, s); ++i) {
        Sequence seq;
        reader.read(t, s, i, &seq);
        int64_t doc = reader.doc_index(t, s, i);
        ASSERT_EQ(doc, want_docs[i]) << name << " " << split_name(s) << " " << i;
        seen.insert(doc);
        ASSERT_EQ(seq.tokens[0], 50256);
        // The prompt decodes to " [task] <name>" and is exactly the non-target part.
        std::vector<int32_t> p(seq.tokens.begin() + 1, seq.tokens.begin() + seq.prompt_len);
        ASSERT_EQ(tok.decode(p), prompt);
        std::string text = " [text] " + std::string(d[doc]);
        std::vector<int32_t> rest(seq.tokens.begin() + seq.prompt_len, seq.tokens.end());
        ASSERT_LE(static_cast<int64_t>(seq.tokens.size()), 64);
        if (rest.back() == 50256 && static_cast<int64_t>(seq.tokens.size()) <= 64 &&
            tok.decode(std::vector<int32_t>(rest.begin(), rest.end() - 1)) == text) {
          ++checked;  // complete: text + eos
        } else {
          // Truncated: exactly 64 tokens, the beginning of the document's tokens.
          ASSERT_EQ(seq.tokens.size(), 64u) << name << " doc " << doc;
          std::vector<int32_t> full = tok.encode(text);
          ASSERT_GE(full.size(), rest.size());
          ASSERT_TRUE(std::equal(rest.begin(), rest.end(), full.begin())) << name << " doc " << doc;
          ASSERT_EQ(text.compare(0, tok.decode(rest).size(), tok.decode(rest)), 0);
          ++truncated;
        }
      }
    }
    EXPECT_EQ(seen.size(), d.size()) << "every document in exactly one split";
  }
  EXPECT_GT(truncated, 20);
  EXPECT_GT(checked, 100);
  SplitCounts tr = res.manifest.total(Split::Train);
  EXPECT_EQ(tr.truncated + res.manifest.total(Split::Validation).truncated +
                res.manifest.total(Split::Test).truncated,
            truncated);
}

TEST(Prep, SameInputSameBytesForAnyThreadCount) {
  std::string in = fortune_folder();
  if (in.empty()) GTEST_SKIP() << "fortunes not installed";
  std::string base = fresh_dir();
  PrepConfig a = fortune_config(in, base + "/one");
  a.tasks_per_shard = 2;  // 3 tasks -> 2 shards
  PrepConfig b = a;
  b.out = base + "/four";
  b.threads = 4;
  run_data_prep(a, gpt2());
  run_data_prep(b, gpt2());
  std::vector<std::string> files{"manifest.json", "shard-00000.h5", "shard-00001.h5"};
  for (const std::string& f : files) {
    std::string x = read_file(a.out + "/" + f), y = read_file(b.out + "/" + f);
    EXPECT_GT(x.size(), 100u);
    EXPECT_TRUE(x == y) << f << " differs between 1 and 4 threads";
  }
  EXPECT_FALSE(test::fs::exists(base + "/one/shard-00002.h5"));
  // Another seed moves documents between splits, so the shards change.
  PrepConfig c = a;
  c.out = base + "/seed7";
  c.seed = 7;
  run_data_prep(c, gpt2());
  EXPECT_FALSE(read_file(a.out + "/shard-00000.h5") == read_file(c.out + "/shard-00000.h5"));
}

TEST(Prep, SplitSizesFollowTheFractionsPerTask) {
  std::string in = fortune_folder();
  if (in.empty()) GTEST_SKIP() << "fortunes not installed";
  PrepConfig cfg = fortune_config(in, fresh_dir() + "/ds");
  cfg.split_fractions = {0.6, 0.3, 0.1};
  PrepResult r = run_data_prep(cfg, gpt2());
  for (const TaskInfo& t : r.manifest.tasks) {
    auto want = split_sizes(t.documents, {0.6, 0.3, 0.1});
    for (int s = 0; s < 3; ++s) EXPECT_EQ(t.splits[s].sequences, want[s]) << t.name;
    EXPECT_EQ(t.documents, t.rows);
  }
}

TEST(Prep, TonLikeCsvEndToEnd) {
  std::string dir = fresh_dir();
  std::string csv = "rep_name,party,text\n";
  for (int i = 0; i < 9; ++i) csv += "Per.Olsen,H,\"Speech " + std::to_string(i) + ", about \"\"things\"\".\"\n";
  for (int i = 0; i < 5; ++i) csv += "ANNE,Ap,\"Line one\nline two of " + std::to_string(i) + "\"\n";
  for (int i = 0; i < 2; ++i) csv += "Kari,Sp,too few rows\n";
  test::write_text(dir + "/ton.csv", csv);
  PrepConfig cfg;
  cfg.input = dir + "/ton.csv";
  cfg.out = dir + "/ds";
  cfg.vocab = test::gpt2_dir() + "/vocab.json";
  cfg.merges = test::gpt2_dir() + "/merges.txt";
  cfg.min_docs = 2;
  cfg.max_docs = 10;
  cfg.min_text_chars = 5;
  cfg.progress = false;
  PrepResult r = run_data_prep(cfg, gpt2());
  ASSERT_EQ(r.manifest.tasks.size(), 2u);
  EXPECT_EQ(r.manifest.tasks[0].name, "anne");
  EXPECT_EQ(r.manifest.tasks[1].name, "perolsen");
  EXPECT_EQ(r.manifest.tasks[1].source_name, "Per.Olsen");
  EXPECT_EQ(r.manifest.tasks[1].documents, 9);
  EXPECT_EQ(r.manifest.tasks[1].splits[0].sequences, 5);  // 4.5 / 2.25 / 2.25 -> 5 / 2 / 2
  EXPECT_EQ(r.manifest.tasks[1].splits[1].sequences, 2);
  EXPECT_EQ(r.manifest.options["min_docs"], 2);
  DatasetReader reader(cfg.out, {"perolsen"});
  EXPECT_FALSE(reader.is_open(0));
  Sequence s;
  reader.read(1, Split::Train, 0, &s);
  std::string text = gpt2().decode(s.tokens);
  EXPECT_EQ(text.rfind("<|endoftext|> [task] perolsen [text] Speech ", 0), 0u) << text;
  EXPECT_NE(text.find(", about \"things\".<|endoftext|>"), std::string::npos) << text;
}

TEST(Prep, OutputFolderRules) {
  std::string in = fortune_folder();
  if (in.empty()) GTEST_SKIP() << "fortunes not installed";
  std::string base = fresh_dir();
  // Unwritable: the parent is a regular file.
  test::write_text(base + "/file", "x");
  PrepConfig bad = fortune_config(in, base + "/file/ds");
  expect_error<IoError>([&] { run_data_prep(bad, gpt2()); }, {base + "/file/ds.tmp."});
  // Existing output: an error without --overwrite, replaced with it.
  PrepConfig cfg = fortune_config(in, base + "/ds");
  run_data_prep(cfg, gpt2());
  expect_error<ConfigError>([&] { run_data_prep(cfg, gpt2()); }, {base + "/ds", "--overwrite"});
  cfg.overwrite = true;
  cfg.max_len = 32;
  EXPECT_EQ(run_data_prep(cfg, gpt2()).manifest.max_len, 32);
  EXPECT_EQ(Manifest::read(base + "/ds").max_len, 32);
  // Nothing is left under temporary names.
  for (const auto& e : test::fs::directory_iterator(base))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
  // A folder that is not a dataset is never replaced.
  test::fs::create_directories(base + "/mine");
  test::write_text(base + "/mine/notes.txt", "precious");
  PrepConfig mine = fortune_config(in, base + "/mine");
  mine.overwrite = true;
  expect_error<ConfigError>([&] { run_data_prep(mine, gpt2()); }, {"not a bora dataset"});
  EXPECT_TRUE(test::fs::exists(base + "/mine/notes.txt"));
}

TEST(Prep, EncodeHeadEqualsTheFullEncodingsBeginning) {
  // Long texts are encoded only in part; the ids must be those of the full encoding.
  std::string in = std::string(kFortunes) + "/kids";
  if (!test::fs::exists(in)) GTEST_SKIP() << "fortunes not installed";
  std::string all = read_file(in);
  SequenceFormat f;
  f.bos_id = f.eos_id = 50256;
  SequenceBuilder b(gpt2(), f);
  std::vector<int32_t> full = gpt2().encode(all);
  for (int64_t limit : {1, 7, 64, 255, 1000, 3000}) {
    for (size_t start : {size_t(0), size_t(1), size_t(17), size_t(1001)}) {
      std::string_view s(all);
      s = s.substr(start);
      while (!s.empty() && (static_cast<unsigned char>(s[0]) & 0xC0) == 0x80) s.remove_prefix(1);
      std::vector<int32_t> head = b.encode_head(s, limit);
      std::vector<int32_t> ref = gpt2().encode(s);
      ref.resize(std::min<size_t>(ref.size(), static_cast<size_t>(limit)));
      ASSERT_EQ(head, ref) << "limit " << limit << " start " << start;
    }
  }
  // Whitespace runs and contractions at the cut.
  std::string tricky;
  for (int i = 0; i < 400; ++i) tricky += "we'll   see  it's\t\n  ";
  std::vector<int32_t> ref = gpt2().encode(tricky);
  for (int64_t limit = 1; limit < 200; limit += 13) {
    std::vector<int32_t> r(ref.begin(), ref.begin() + limit);
    ASSERT_EQ(b.encode_head(tricky, limit), r) << limit;
  }
  EXPECT_GT(full.size(), 1000u);
}

}  // namespace
}  // namespace bora
