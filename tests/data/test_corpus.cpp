// Corpus readers: RFC 4180 CSV, JSON Lines and folders of fortune-style text files,
// with their one-line errors naming file and row/document.
#include <gtest/gtest.h>

#include "data_prep/corpus.h"
#include "data_test_util.h"

namespace bora {
namespace {

using test::expect_error;
using test::fresh_dir;
using test::write_text;

std::vector<std::pair<std::string, std::string>> pairs(const Corpus& c) {
  std::vector<std::pair<std::string, std::string>> v;
  for (const CorpusRecord& r : c.records) v.emplace_back(std::string(r.task), std::string(r.text));
  return v;
}

TEST(Csv, QuotingAsRfc4180) {
  std::string dir = fresh_dir(), path = dir + "/t.csv";
  write_text(path,
             "\xEF\xBB\xBF"  // BOM
             "id,rep_name,text,party\r\n"
             "1,Alice,plain text,A\r\n"
             "2,\"Bob\",\"with, comma\",B\n"
             "\n"  // blank line: skipped
             "3,Carol,\"say \"\"hi\"\" twice\",C\n"
             "4,Dave,\"two\nlines\r\nhere\",D\n"
             "5,Eve,\"\",E\n"     // empty text: missing
             "6,Fay,\"x\",\n"     // empty party: missing in 'any' mode
             "7,Gus,last,G");     // no final newline
  CorpusOptions o;
  Corpus c = read_csv(path, o);
  using P = std::pair<std::string, std::string>;
  std::vector<P> want{{"Alice", "plain text"},
                      {"Bob", "with, comma"},
                      {"Carol", "say \"hi\" twice"},
                      {"Dave", "two\nlines\r\nhere"},
                      {"Gus", "last"}};
  EXPECT_EQ(pairs(c), want);
  EXPECT_EQ(c.rows_read, 7);
  EXPECT_EQ(c.rows_missing, 2);
  // Line numbers are where each record starts (the blank line and the 3-line field count).
  ASSERT_EQ(c.records.size(), 5u);
  EXPECT_EQ(c.records[0].line, 2);
  EXPECT_EQ(c.records[2].line, 5);
  EXPECT_EQ(c.records[3].line, 6);
  EXPECT_EQ(c.records[4].line, 11);
  EXPECT_EQ(c.records[4].number, 7);
  EXPECT_EQ(c.where(c.records[3]), path + ":6 (row 4)");

  o.drop_missing = "fields";  // only task/text count: Fay stays
  Corpus c2 = read_csv(path, o);
  EXPECT_EQ(c2.records.size(), 6u);
  EXPECT_EQ(c2.rows_missing, 1);
  o.na_values = {"last"};
  EXPECT_EQ(read_csv(path, o).records.size(), 5u);
}

TEST(Csv, OtherColumnNamesAndDelimiter) {
  std::string dir = fresh_dir(), path = dir + "/t.tsv";
  write_text(path, "who\twhat\nA\tone, two\nB\t\"x\ty\"\n");
  CorpusOptions o;
  o.task_column = "who";
  o.text_column = "what";
  o.csv_delimiter = '\t';
  Corpus c = read_corpus(path, o);
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(pairs(c), (std::vector<P>{{"A", "one, two"}, {"B", "x\ty"}}));
}

TEST(Csv, Errors) {
  std::string dir = fresh_dir();
  CorpusOptions o;
  auto csv = [&](const std::string& name, const std::string& text) {
    std::string p = dir + "/" + name;
    write_text(p, text);
    return p;
  };
  std::string p1 = csv("unterminated.csv", "rep_name,text\nA,ok\nB,\"never closed\nmore\n");
  expect_error<FormatError>([&] { read_csv(p1, o); }, {p1 + ":3", "unterminated quoted field 2"});
  std::string p2 = csv("columns.csv", "rep_name,text\nA,ok\nB,one,two\n");
  expect_error<FormatError>([&] { read_csv(p2, o); }, {p2 + ":3", "row 2", "3 fields", "header has 2"});
  std::string p3 = csv("nocol.csv", "speaker,text\nA,ok\n");
  expect_error<FormatError>([&] { read_csv(p3, o); }, {p3, "no column 'rep_name'", "speaker, text"});
  std::string p4 = csv("utf8.csv", "rep_name,text\nA,fine\nB,bad \xC3\x28 byte\n");
  expect_error<FormatError>([&] { read_csv(p4, o); }, {p4 + ":3", "row 2", "invalid UTF-8", "'text'"});
  std::string p5 = csv("afterquote.csv", "rep_name,text\nA,\"x\"y\n");
  expect_error<FormatError>([&] { read_csv(p5, o); }, {p5 + ":2", "after the closing quote"});
  std::string p6 = csv("empty.csv", "");
  expect_error<FormatError>([&] { read_csv(p6, o); }, {p6, "empty file"});
  expect_error<IoError>([&] { read_csv(dir + "/absent.csv", o); }, {dir + "/absent.csv"});
}

TEST(Jsonl, FieldsMissingValuesAndErrors) {
  std::string dir = fresh_dir(), path = dir + "/c.jsonl";
  write_text(path,
             "{\"task\": \"A\", \"text\": \"one \\\"quoted\\\" \\u00e6\", \"n\": 1}\n"
             "\n"
             "{\"task\": \"B\", \"text\": null}\n"
             "{\"task\": \"C\"}\n"
             "{\"task\": \"D\", \"text\": \"ok\", \"extra\": null}\n"
             "{\"text\": \"x\", \"task\": \"E\"}\n");
  CorpusOptions o;
  Corpus c = read_jsonl(path, o);
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(pairs(c), (std::vector<P>{{"A", "one \"quoted\" \xC3\xA6"}, {"E", "x"}}));
  EXPECT_EQ(c.rows_read, 5);
  EXPECT_EQ(c.rows_missing, 3);
  EXPECT_EQ(c.records[1].line, 6);
  o.drop_missing = "fields";
  EXPECT_EQ(read_jsonl(path, o).records.size(), 3u);
  o.task_field = "text";
  o.text_field = "task";
  EXPECT_EQ(read_jsonl(path, o).records[0].task, "one \"quoted\" \xC3\xA6");

  CorpusOptions d;
  std::string bad = dir + "/bad.jsonl";
  write_text(bad, "{\"task\": \"A\", \"text\": \"x\"}\n{\"task\": \"A\", \"text\": \n");
  expect_error<FormatError>([&] { read_jsonl(bad, d); }, {bad + ":2", "row 2", "invalid JSON"});
  write_text(bad, "{\"task\": 3, \"text\": \"x\"}\n");
  expect_error<FormatError>([&] { read_jsonl(bad, d); }, {bad + ":1", "field 'task'", "expected a string"});
  write_text(bad, "{\"task\": \"A\", \"text\": \"x\"}\n{\"task\": \"A\", \"text\": \"\xFF\"}\n");
  expect_error<FormatError>([&] { read_jsonl(bad, d); }, {bad + ":2", "invalid UTF-8"});
  write_text(bad, "[1, 2]\n");
  expect_error<FormatError>([&] { read_jsonl(bad, d); }, {bad + ":1", "expected a JSON object"});
}

TEST(Folder, FortuneFormat) {
  std::string dir = fresh_dir();
  write_text(dir + "/alpha", "first\nfortune\n%\nsecond\n%\n%\nthird, no final newline");
  write_text(dir + "/beta", "one\r\n%\r\ntwo\r\n%\r\n");
  write_text(dir + "/beta.dat", "binary index, skipped");
  write_text(dir + "/beta.u8", "skipped too");
  write_text(dir + "/.hidden", "skipped");
  test::fs::create_directories(dir + "/sub");
  write_text(dir + "/sub/gamma", "nested\n");
  CorpusOptions o;
  Corpus c = read_corpus(dir, o);
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(pairs(c), (std::vector<P>{{"alpha", "first\nfortune"},
                                      {"alpha", "second"},
                                      {"alpha", "third, no final newline"},
                                      {"beta", "one"},
                                      {"beta", "two"}}));
  EXPECT_EQ(c.rows_missing, 1);  // the empty document between two '%'
  EXPECT_EQ(c.records[2].line, 7);
  EXPECT_EQ(c.records[2].number, 4);
  EXPECT_EQ(c.where(c.records[1]), dir + "/alpha:4 (document 2)");

  o.recursive = true;
  Corpus r = read_text_folder(dir, o);
  EXPECT_EQ(r.records.back().task, "sub-gamma");
  EXPECT_EQ(r.records.back().text, "nested");

  o.recursive = false;
  o.delimiter = "";  // one document per file
  Corpus whole = read_text_folder(dir, o);
  ASSERT_EQ(whole.records.size(), 2u);
  EXPECT_EQ(whole.records[1].text, "one\r\n%\r\ntwo\r\n%");
}

TEST(Folder, EmptyTaskAndInvalidUtf8AreErrors) {
  std::string dir = fresh_dir();
  write_text(dir + "/fine", "a\n%\nb\n");
  write_text(dir + "/hollow", "%\n%\n");
  CorpusOptions o;
  expect_error<DataError>([&] { read_text_folder(dir, o); }, {dir + "/hollow", "task 'hollow' is empty"});
  test::fs::remove(dir + "/hollow");
  write_text(dir + "/latin1", "ok\n%\nd\xE9j\xE0 vu\n");
  expect_error<FormatError>([&] { read_text_folder(dir, o); },
                            {dir + "/latin1:3", "document 2", "invalid UTF-8 at byte 1"});
}

}  // namespace
}  // namespace bora
