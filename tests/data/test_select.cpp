// The selection rules, in the reference's order, on a small CSV made to look like
// Talk of Norway's ton.csv: quoted fields with commas, doubled quotes and line
// breaks, missing fields, short texts, names with '.' and capitals, and task sizes
// just inside and just outside the document-count range.
#include <gtest/gtest.h>

#include "data_prep/select.h"
#include "data_test_util.h"

namespace bora {
namespace {

using test::expect_error;

// Ranges used below: min_docs = 3, max_docs = 6 (exclusive: 4 and 5 rows pass),
// min_text_chars = 11 (texts of <= 10 characters dropped).
std::string ton_like_csv() {
  std::string s = "id,date,rep_name,party,text\n";
  int id = 0;
  auto row = [&](const std::string& name, const std::string& party, const std::string& text) {
    s += std::to_string(++id) + ",2019-01-01," + name + "," + party + "," + text + "\n";
  };
  // "Per.Olsen": 5 rows (inside), one short text -> 4 documents.
  row("Per.Olsen", "H", "\"Speech one, with a comma.\"");
  row("Per.Olsen", "H", "short");
  row("Per.Olsen", "H", "\"He said \"\"no\"\" twice.\"");
  row("Per.Olsen", "H", "\"A speech\nover two lines.\"");
  row("Per.Olsen", "H", "Plain speech number five.");
  // "ANNE Hansen": 4 rows (inside).
  for (int i = 0; i < 4; ++i) row("ANNE Hansen", "Ap", "Anne's speech number " + std::to_string(i));
  // "Kari": 3 rows: not > 3, dropped.
  for (int i = 0; i < 3; ++i) row("Kari", "Sp", "Kari speaks at length " + std::to_string(i));
  // "Ola": 6 rows: not < 6, dropped.
  for (int i = 0; i < 6; ++i) row("Ola", "V", "Ola speaks at length " + std::to_string(i));
  // "Bjørn Ås": 6 rows, one without text and one without party -> 4 count, inside.
  for (int i = 0; i < 4; ++i) row("Bjørn Ås", "KrF", "Bjørn's long speech " + std::to_string(i));
  row("Bjørn Ås", "KrF", "");
  row("Bjørn Ås", "", "Bjørn without a party.");
  // "Zed": 4 rows, all short: dropped by the length rule.
  for (int i = 0; i < 4; ++i) row("Zed", "R", "z" + std::to_string(i));
  // "Åse": 5 rows, inside; sorts after every ASCII name.
  for (int i = 0; i < 5; ++i) row("Åse", "MDG", "Åse's fine speech " + std::to_string(i));
  // A row with no name at all: missing.
  row("", "H", "Nobody's speech here.");
  return s;
}

SelectOptions small_ranges() {
  SelectOptions o;
  o.min_docs = 3;
  o.max_docs = 6;
  o.min_text_chars = 11;
  o.max_tasks = 25;
  return o;
}

std::vector<std::string> names(const std::vector<SelectedTask>& v) {
  std::vector<std::string> n;
  for (const auto& t : v) n.push_back(t.name);
  return n;
}

class Select : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = test::fresh_dir() + "/ton.csv";
    test::write_text(path_, ton_like_csv());
    corpus_ = read_csv(path_, CorpusOptions());
  }
  std::string path_;
  Corpus corpus_;
};

TEST_F(Select, ReferenceRulesInOrder) {
  EXPECT_EQ(corpus_.rows_read, 34);
  EXPECT_EQ(corpus_.rows_missing, 3);  // no text, no party, no name
  SelectionStats st;
  auto tasks = select_tasks(corpus_, small_ranges(), &st);
  EXPECT_EQ(names(tasks), (std::vector<std::string>{"anne hansen", "bjørn ås", "perolsen", "åse"}));
  EXPECT_EQ(st.tasks_in, 7);
  EXPECT_EQ(st.dropped_by_count, (std::vector<std::string>{"kari (3)", "ola (6)"}));
  EXPECT_EQ(st.dropped_empty, (std::vector<std::string>{"zed"}));
  EXPECT_EQ(st.short_texts, 5);  // "short" + 4 of Zed's
  const SelectedTask& per = tasks[2];
  EXPECT_EQ(per.source_name, "Per.Olsen");
  EXPECT_EQ(per.rows, 5);
  ASSERT_EQ(per.docs.size(), 4u);
  EXPECT_EQ(per.docs[0]->text, "Speech one, with a comma.");
  EXPECT_EQ(per.docs[1]->text, "He said \"no\" twice.");
  EXPECT_EQ(per.docs[2]->text, "A speech\nover two lines.");
  EXPECT_EQ(per.docs[3]->text, "Plain speech number five.");
  EXPECT_EQ(tasks[1].rows, 4);  // Bjørn: rows counted after rule 1

  // Rule 6: the first K in name order.
  SelectOptions k = small_ranges();
  k.max_tasks = 2;
  EXPECT_EQ(names(select_tasks(corpus_, k)), (std::vector<std::string>{"anne hansen", "bjørn ås"}));
}

TEST_F(Select, InclusiveRangeAndNoUpperBound) {
  SelectOptions o = small_ranges();
  o.range_inclusive = true;  // 3 <= n <= 6
  EXPECT_EQ(names(select_tasks(corpus_, o)),
            (std::vector<std::string>{"anne hansen", "bjørn ås", "kari", "ola", "perolsen", "åse"}));
  o.range_inclusive = false;
  o.min_docs = 4;  // 4 < n
  o.max_docs = 0;  // no upper bound
  EXPECT_EQ(names(select_tasks(corpus_, o)), (std::vector<std::string>{"ola", "perolsen", "åse"}));
}

TEST_F(Select, LengthRuleCountsCharactersNotBytes) {
  SelectOptions o = small_ranges();
  o.min_text_chars = 22;  // "Bjørn's long speech 0" is 21 characters but 22 bytes
  auto tasks = select_tasks(corpus_, o);
  for (const auto& t : tasks) EXPECT_NE(t.name, "bjørn ås");
  EXPECT_EQ(count_chars("Bjørn's long speech 0"), 21);
}

TEST_F(Select, NamedTasks) {
  SelectOptions o = small_ranges();
  o.tasks = {"perolsen", "åse"};
  o.max_tasks = 1;  // not applied to named tasks
  EXPECT_EQ(names(select_tasks(corpus_, o)), (std::vector<std::string>{"perolsen", "åse"}));
  o.tasks = {"kari"};
  expect_error<DataError>([&] { select_tasks(corpus_, o); }, {"task 'kari'", "3 documents", "3 < documents < 6"});
  o.tasks = {"zed"};
  expect_error<DataError>([&] { select_tasks(corpus_, o); }, {"task 'zed'", "11 or more characters"});
  o.tasks = {"nobody"};
  expect_error<DataError>([&] { select_tasks(corpus_, o); }, {"task 'nobody'", "not in the input"});
}

TEST(SelectNames, Normalisation) {
  EXPECT_EQ(normalize_task_name("Per.Olaf LUNDTEIGEN"), "perolaf lundteigen");
  EXPECT_EQ(normalize_task_name("ÆØÅ Ĳ Ŋ Ÿ"), "æøå ĳ ŋ ÿ");
  EXPECT_EQ(normalize_task_name("ΣΩ Жж"), "σω жж");
  EXPECT_EQ(normalize_task_name("a.b.c."), "abc");
  EXPECT_EQ(normalize_task_name("日本"), "日本");
}

TEST(SelectNames, CollisionIsAnErrorNamingBoth) {
  std::string path = test::fresh_dir() + "/c.csv";
  test::write_text(path, "rep_name,text\nA.B,first speech\nx,other\nab,second speech\n");
  Corpus c = read_csv(path, CorpusOptions());
  SelectOptions o;
  o.min_docs = 0;
  o.min_text_chars = 0;
  expect_error<DataError>([&] { select_tasks(c, o); },
                          {"'A.B' (" + path + ":2", "'ab' (" + path + ":4", "normalise to 'ab'"});
  o.normalize_names = false;
  EXPECT_EQ(select_tasks(c, o).size(), 3u);
}

TEST(SelectNames, UnusableNameIsAnError) {
  std::string path = test::fresh_dir() + "/c.csv";
  test::write_text(path, "rep_name,text\na/b,some speech\n");
  Corpus c = read_csv(path, CorpusOptions());
  SelectOptions o;
  o.min_docs = 0;
  expect_error<DataError>([&] { select_tasks(c, o); }, {path + ":2", "'a/b'", "contains '/'"});
}

}  // namespace
}  // namespace bora
