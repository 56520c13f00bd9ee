// The option table: defaults, precedence (command line > config files > default),
// typed parsing with errors naming the key, --help and the resolved INI round trip.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <set>

#include "core/error.h"
#include "core/options.h"

namespace bora {
namespace {

struct Cfg {
  double tau = 1.0;
  int steps = 10;
  bool flag = false;
  std::string prior = "gaussian";
  std::vector<std::string> targets{"q_proj", "v_proj"};
  std::vector<double> taus{0, 1};
  void declare(OptionTable& t) {
    t.group("prior");
    t.add("tau", &tau, "precision");
    t.add_choice("prior", &prior, {"gaussian", "l2"}, "prior form");
    t.group("train");
    t.add("steps", &steps, "steps");
    t.add("flag", &flag, "a switch");
    t.add("targets", &targets, "modules");
    t.add("taus", &taus, "sweep");
  }
};

bool parse(OptionTable& t, std::vector<std::string> args) {
  std::vector<const char*> argv{"prog"};
  for (auto& a : args) argv.push_back(a.c_str());
  return t.parse(static_cast<int>(argv.size()), argv.data());
}

TEST(Options, DefaultsAndCommandLine) {
  Cfg c;
  OptionTable t("prog", "test");
  c.declare(t);
  ASSERT_TRUE(parse(t, {"--tau", "inf", "--steps=7", "--flag", "--targets", "q_proj, fc1 ,", "--taus",
                        "0,10,inf"}));
  EXPECT_TRUE(std::isinf(c.tau));
  EXPECT_EQ(c.steps, 7);
  EXPECT_TRUE(c.flag);
  EXPECT_EQ(c.targets, (std::vector<std::string>{"q_proj", "fc1"}));
  ASSERT_EQ(c.taus.size(), 3u);
  EXPECT_TRUE(std::isinf(c.taus[2]));
  EXPECT_TRUE(t.is_set("tau"));
  EXPECT_FALSE(t.is_set("prior"));
  EXPECT_EQ(c.prior, "gaussian");
}

TEST(Options, ConfigFilePrecedence) {
  std::string a = testing::TempDir() + "/a.ini", b = testing::TempDir() + "/b.ini";
  std::ofstream(a) << "# comment\ntau = 5\nsteps = 3\nprior = l2\n";
  std::ofstream(b) << "steps = 4\n";
  Cfg c;
  OptionTable t("prog", "test");
  c.declare(t);
  ASSERT_TRUE(parse(t, {"--config", a, "--config", b, "--tau", "6"}));
  EXPECT_EQ(c.tau, 6);      // command line beats the files
  EXPECT_EQ(c.steps, 4);    // the later file beats the earlier
  EXPECT_EQ(c.prior, "l2");
}

TEST(Options, ErrorsNameTheKey) {
  Cfg c;
  OptionTable t("prog", "test");
  c.declare(t);
  try {
    parse(t, {"--tua", "3"});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("tua"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse(t, {"--tau", "3x"}), ConfigError);
  EXPECT_THROW(parse(t, {"--steps", "1.5"}), ConfigError);
  EXPECT_THROW(parse(t, {"--prior", "cauchy"}), ConfigError);
  EXPECT_THROW(parse(t, {"--flag=maybe"}), ConfigError);
  EXPECT_THROW(t.parse_ini("nosuch = 1\n", "x.ini"), ConfigError);
  EXPECT_THROW(t.parse_ini("[section]\ntau = 1\n", "x.ini"), ConfigError);
  try {
    t.parse_ini("tau = abc\n", "x.ini");
    FAIL();
  } catch (const ConfigError& e) {
    std::string w = e.what();
    EXPECT_NE(w.find("x.ini"), std::string::npos) << w;
    EXPECT_NE(w.find("tau"), std::string::npos) << w;
  }
}

TEST(Options, ResolvedIniRoundTrip) {
  Cfg c;
  OptionTable t("prog", "test");
  c.declare(t);
  ASSERT_TRUE(parse(t, {"--tau", "0.1", "--taus", "1,inf"}));
  std::string ini = t.to_ini();
  Cfg d;
  OptionTable u("prog", "test");
  d.declare(u);
  u.parse_ini(ini, "resolved.ini");
  EXPECT_EQ(u.values(), t.values());
  EXPECT_EQ(d.tau, 0.1);
}

TEST(Options, HelpListsEveryKeyWithDefault) {
  Cfg c;
  OptionTable t("prog", "test");
  c.declare(t);
  std::string h = t.help();
  for (const auto& kv : t.values()) EXPECT_NE(h.find("--" + kv.first), std::string::npos) << kv.first;
  EXPECT_NE(h.find("[default: gaussian]"), std::string::npos);
  EXPECT_NE(h.find("{gaussian,l2}"), std::string::npos);
}

TEST(Options, FormatDoubleRoundTrips) {
  for (double v : {0.1, 1e-5, 3.0, 1.0 / 3.0, 6.02e23, -2.5}) EXPECT_EQ(parse_double("k", format_double(v)), v);
  EXPECT_EQ(format_double(1e-5), "1e-05");
}

// A choice bound to an enum through its one name table: names in, names out
// (--help, the resolved INI), the enum in between; anything else names the key
// and every choice.
enum class Mode { Fast, Exact, Off };
const Names<Mode> kModeNames = {{"fast", Mode::Fast}, {"exact", Mode::Exact}, {"off", Mode::Off}};

TEST(Options, EnumChoiceParsesAndPrintsItsNames) {
  Mode mode = Mode::Exact;
  OptionTable t("prog", "test");
  t.add_choice("mode", &mode, kModeNames, "how");
  EXPECT_EQ(t.values().at("mode"), "exact");  // the default, by name
  EXPECT_NE(t.help().find("how {fast,exact,off} [default: exact]"), std::string::npos) << t.help();
  ASSERT_TRUE(parse(t, {"--mode", " off "}));
  EXPECT_EQ(mode, Mode::Off);
  EXPECT_EQ(t.to_ini().find("mode = off\n") != std::string::npos, true) << t.to_ini();
  t.parse_ini("mode = fast\n", "x.ini");
  EXPECT_EQ(mode, Mode::Fast);
  try {
    parse(t, {"--mode", "slow"});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("option 'mode': 'slow' is not one of {fast,exact,off}"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(mode, Mode::Fast);  // unchanged by the refused value
  EXPECT_STREQ(name_of(kModeNames, Mode::Off), "off");
  EXPECT_EQ(parse_name(kModeNames, "mode", "exact"), Mode::Exact);
}

TEST(Options, ResumeSafeKeysAreMarkedWhereDeclared) {
  Cfg c;
  OptionTable t("prog", "test");
  t.add("a", &c.tau, "");
  t.add("b", &c.steps, "").resume_safe();
  t.add("c", &c.flag, "");
  t.add("d", &c.targets, "").resume_safe();
  EXPECT_EQ(t.resume_safe_keys(), (std::set<std::string>{"b", "d"}));
}

// The one INI reader: pairs in order (a repeated key twice), comments and blanks
// skipped, values trimmed, keys of any tool; a section prefixes its keys.
TEST(Options, ReadIniKeepsOrderAndUnknownKeys) {
  const auto kv = read_ini("# c\n\nz = 1\nfoo_bar =  two words \nz=3\n[s]\nk = v\n", "x.ini");
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(kv, (std::vector<P>{{"z", "1"}, {"foo_bar", "two words"}, {"z", "3"}, {"s.k", "v"}}));
  EXPECT_THROW(read_ini("no equals sign here\n", "bad.ini"), ConfigError);
  // A '#' inside a value (a path) stays; one after a blank starts a comment.
  const auto hashes = read_ini("; a comment\nmodel = /m/opt#350m\nlr = 1e-3  # the peak\nx=a\t#b\n", "h.ini");
  EXPECT_EQ(hashes, (std::vector<P>{{"model", "/m/opt#350m"}, {"lr", "1e-3"}, {"x", "a"}}));
}

}  // namespace
}  // namespace bora
