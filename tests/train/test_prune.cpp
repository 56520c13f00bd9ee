// ASHA's rung rule against its closed form, the leaderboard file under racing
// writers (real processes) and a writer killed between writing its new board and
// renaming it, and the settings that cannot work: one-line ConfigErrors.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "train/prune.h"

namespace bora {
namespace {

namespace fs = std::filesystem;

std::string fresh(const std::string& name) {
  const fs::path p = fs::path(::testing::TempDir()) / ("bora_prune_" + std::to_string(::getpid())) / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

PruneConfig asha(int64_t eta, int64_t min_rungs) {
  PruneConfig p;
  p.kind = PruneKind::Asha;
  p.eta = eta;
  p.min_rungs = min_rungs;
  return p;
}

const BoardIdentity kId{"0123456789abcdef", 10};

TEST(Prune, RungRuleKeepsTheBestCeilNOverEta) {
  // n runs at a rung keep max(1, ceil(n / eta)): 1 1 1 2 2 2 3 for eta 3, n = 1..7.
  const std::vector<int64_t> kept = {1, 1, 1, 2, 2, 2, 3};
  for (int64_t n = 1; n <= 7; ++n) {
    std::vector<std::pair<std::string, double>> at;
    for (int64_t i = 0; i < n; ++i) at.emplace_back("r" + std::to_string(i), 100.0 - double(i));  // r(n-1) best
    for (int64_t i = 0; i < n; ++i) {
      const RungVerdict v = judge_rung(at, "r" + std::to_string(i), 3);
      EXPECT_EQ(v.reached, n);
      EXPECT_EQ(v.kept, kept[size_t(n - 1)]);
      EXPECT_EQ(v.place, n - i);
      EXPECT_EQ(v.keep, n - i <= kept[size_t(n - 1)]) << "n " << n << " run " << i;
    }
  }
  // Ties go by name, so that every writer computes the same order.
  const RungVerdict a = judge_rung({{"b", 5.0}, {"a", 5.0}}, "a", 2), b = judge_rung({{"b", 5.0}, {"a", 5.0}}, "b", 2);
  EXPECT_TRUE(a.keep);
  EXPECT_FALSE(b.keep);
}

TEST(Prune, BoardRecordsRungsAndPrunesFromMinRung) {
  const std::string dir = fresh("sequence");
  Leaderboard board(dir, kId);
  const PruneConfig p = asha(/*eta=*/2, /*min_rungs=*/2);
  // The first run is alone at every rung: never pruned.
  for (int64_t k = 1; k <= 3; ++k) EXPECT_TRUE(board.report("tau_1", 1, 2, k, 10 * k, 100.0 - k, p).keep);
  // A worse second run: rung 1 is only recorded, rung 2 prunes it (2 runs, keep 1).
  const RungVerdict r1 = board.report("tau_inf", INFINITY, 2, 1, 10, 120.0, p);
  EXPECT_FALSE(r1.judged);
  EXPECT_TRUE(r1.keep);
  const RungVerdict r2 = board.report("tau_inf", INFINITY, 2, 2, 20, 110.0, p);
  EXPECT_TRUE(r2.judged);
  EXPECT_FALSE(r2.keep);
  EXPECT_EQ(r2.place, 2);
  EXPECT_EQ(board.pruned_at("tau_inf"), 2);
  EXPECT_EQ(board.pruned_at("tau_1"), 0);
  EXPECT_EQ(board.pruned_at("tau_unknown"), 0);
  // A better third run stays; the file says all of it.
  EXPECT_TRUE(board.report("tau_10", 10, 2, 2, 20, 90.0, p).keep);
  const Json j = read_json_file(board.path());
  EXPECT_EQ(j["runs"]["tau_inf"]["tau"], "inf");
  EXPECT_EQ(j["runs"]["tau_1"]["rungs"].size(), 3u);
  EXPECT_EQ(j["runs"]["tau_inf"]["pruned"]["step"], 20);
  EXPECT_DOUBLE_EQ(j["runs"]["tau_10"]["rungs"]["2"]["ppl"].get<double>(), 90.0);
}

TEST(Prune, BadSettingsAreOneLineErrors) {
  auto message = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const ConfigError& e) {
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
      return std::string(e.what());
    }
    ADD_FAILURE() << "no ConfigError";
    return std::string();
  };
  EXPECT_NE(message([] { asha(1, 2).validate(); }).find("prune_eta must be >= 2"), std::string::npos);
  EXPECT_NE(message([] { asha(3, 0).validate(); }).find("prune_min_rungs must be >= 1"), std::string::npos);
  // A first rung past the run's end: 5 rungs of 10 steps in a run of 40.
  EXPECT_NE(message([] { asha(3, 5).check_rungs(10, 40); }).find("past this run's end at step 40"), std::string::npos);
  EXPECT_NO_THROW(asha(3, 4).check_rungs(10, 40));
  EXPECT_NO_THROW(PruneConfig().check_rungs(10, 5));  // prune = none: no rungs
  // A sweep folder whose board is of another dataset, or of another rung spacing.
  const std::string dir = fresh("identity");
  Leaderboard(dir, kId).report("tau_0", 0, 1, 1, 10, 100, asha(3, 1));
  EXPECT_NE(message([&] { (void)Leaderboard(dir, {"fedcba9876543210", 10}).pruned_at("tau_0"); }).find("another dataset"),
            std::string::npos);
  EXPECT_NE(message([&] { (void)Leaderboard(dir, {kId.dataset, 20}).pruned_at("tau_0"); }).find("a rung every 10 steps"),
            std::string::npos);
  write_file_atomic(dir + "/leaderboard.json", "{\"runs\": {}}");
  EXPECT_THROW((void)Leaderboard(dir, kId).pruned_at("tau_0"), FormatError);
}

// Writers in separate processes, all at once: every report of every writer lands.
TEST(Prune, RacingWritersLoseNothing) {
  const std::string dir = fresh("race");
  const int writers = 6, rungs = 15;
  std::vector<pid_t> kids;
  for (int w = 0; w < writers; ++w) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int rc = 0;
      try {
        Leaderboard board(dir, kId);
        for (int k = 1; k <= rungs; ++k)
          board.report("tau_" + std::to_string(w), w, 1, k, 10 * k, 100.0 + w - 0.1 * k, asha(3, 1000));
      } catch (const std::exception& e) {
        std::fprintf(stderr, "writer %d: %s\n", w, e.what());
        rc = 1;
      }
      ::_exit(rc);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "a writer failed";
  }
  const Json j = read_json_file(dir + "/leaderboard.json");
  ASSERT_EQ(j["runs"].size(), size_t(writers));
  for (int w = 0; w < writers; ++w) {
    const Json& r = j["runs"]["tau_" + std::to_string(w)];
    ASSERT_EQ(r["rungs"].size(), size_t(rungs)) << "writer " << w << " lost reports";
    EXPECT_DOUBLE_EQ(r["rungs"][std::to_string(rungs)]["ppl"].get<double>(), 100.0 + w - 0.1 * rungs);
  }
  EXPECT_FALSE(fs::exists(dir + "/leaderboard.lock"));
}

// A writer killed (SIGKILL) with the lock held and its new board written but not
// renamed: the board is the old one, whole, and the next writer takes the dead
// writer's lock over and goes on.
TEST(Prune, WriterKilledMidWriteLeavesTheOldBoard) {
  const std::string dir = fresh("killed");
  Leaderboard(dir, kId).report("tau_0", 0, 1, 1, 10, 100.0, asha(3, 1000));
  const std::string before = read_file(dir + "/leaderboard.json");
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Leaderboard board(dir, kId);
    board.before_rename = [] { ::raise(SIGKILL); };
    board.report("tau_1", 1, 1, 1, 10, 90.0, asha(3, 1000));
    ::_exit(0);  // not reached
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  EXPECT_TRUE(fs::exists(dir + "/leaderboard.lock")) << "the killed writer held the lock";
  EXPECT_EQ(read_file(dir + "/leaderboard.json"), before);  // not a byte changed
  Leaderboard board(dir, kId);
  EXPECT_TRUE(board.report("tau_2", 2, 1, 1, 10, 95.0, asha(3, 1000)).keep);
  const Json j = read_json_file(dir + "/leaderboard.json");
  EXPECT_EQ(j["runs"].size(), 2u);
  EXPECT_TRUE(j["runs"].contains("tau_0"));
  EXPECT_TRUE(j["runs"].contains("tau_2"));
  EXPECT_FALSE(j["runs"].contains("tau_1"));  // its board never replaced the old one
}

}  // namespace
}  // namespace bora
