// The run-folder lock (train/run_lock.h): one writer per run folder. Acquire and
// release; a second writer refused with the holder's host, job and pid and the
// folder untouched; stale holders (a dead pid on this host, a reused pid, an old
// mtime on any host, a left-over LOCK.break) taken over; a live holder on another
// host refused; N forked contenders on one stale lock: exactly one wins, every
// time (16 contenders, 20 rounds: without LOCK.break two won in 2 of 20 rounds);
// a lost lock caught before a checkpoint commits (nothing marked complete).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <thread>

#include "checkpoint/checkpoint.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/main.h"
#include "train/run_lock.h"
#include "train/train_fixture.h"

namespace bora {
namespace {

namespace fs = std::filesystem;
using train_test::scratch;

std::string fresh_dir(const std::string& name) {
  const std::string d = scratch("lock_" + name);
  fs::remove_all(d);
  return d;
}

// The names in a folder (what a refused writer must not change).
std::set<std::string> listing(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

// Writes a LOCK held by `h`, its mtime `age_s` seconds in the past.
void plant_lock(const std::string& dir, const LockHolder& h, double age_s = 0, const std::string& name = "LOCK") {
  fs::create_directories(dir);
  write_file_atomic(dir + "/" + name, h.to_json());
  if (age_s > 0) {
    timespec times[2];
    clock_gettime(CLOCK_REALTIME, &times[0]);
    times[0].tv_sec -= static_cast<time_t>(age_s);
    times[1] = times[0];
    ASSERT_EQ(::utimensat(AT_FDCWD, (dir + "/" + name).c_str(), times, 0), 0);
  }
}

double mtime_age(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return double(now.tv_sec - st.st_mtim.tv_sec) + 1e-9 * double(now.tv_nsec - st.st_mtim.tv_nsec);
}

// A pid that no process has now: a child that has exited and been reaped.
int64_t dead_pid() {
  const pid_t p = ::fork();
  if (p == 0) ::_exit(0);
  int status = 0;
  ::waitpid(p, &status, 0);
  return p;
}

LockHolder holder(const std::string& host, int64_t pid, const std::string& job, const std::string& token) {
  LockHolder h;
  h.host = host;
  h.pid = pid;
  h.job = job;
  h.started = "2026-12-01T10:00:00Z";
  h.token = token;
  return h;
}

std::string refusal(const std::string& dir, RunLockOptions opt = {}) {
  try {
    RunLock second(dir, opt);
  } catch (const ConfigError& e) {
    return e.message();
  }
  return "";
}

TEST(RunLock, AcquireAndRelease) {
  const std::string dir = fresh_dir("basic");
  {
    RunLock lock(dir);
    std::string problem;
    const std::optional<LockHolder> h = RunLock::read(dir, &problem);
    ASSERT_TRUE(h) << problem;
    EXPECT_EQ(h->pid, ::getpid());
    EXPECT_EQ(h->host, host_name());
    EXPECT_EQ(h->token, lock.holder().token);
    EXPECT_EQ(h->start_ticks, process_start_ticks(::getpid()));
    EXPECT_GT(h->start_ticks, 0);
    // Only LOCK: the temp file of the link() protocol is gone.
    EXPECT_EQ(listing(dir), std::set<std::string>{"LOCK"});
    lock.verify("commit checkpoint step_00000001");
  }
  EXPECT_FALSE(fs::exists(dir + "/LOCK"));
  RunLock again(dir);  // released: anyone may take it now
  EXPECT_TRUE(fs::exists(dir + "/LOCK"));
}

TEST(RunLock, SecondWriterRefusedNamingTheHolder) {
  const std::string dir = fresh_dir("second");
  ::setenv("SLURM_JOB_ID", "4242", 1);
  RunLock first(dir);
  ::unsetenv("SLURM_JOB_ID");
  write_file_atomic(dir + "/config.ini", "tau = 10\n");
  const std::set<std::string> before = listing(dir);
  const std::string lock_before = read_file(dir + "/LOCK");
  const auto t0 = std::chrono::steady_clock::now();
  const std::string msg = refusal(dir);
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(msg.empty()) << "a second writer was let in";
  EXPECT_NE(msg.find("is in use by host " + host_name() + ", job 4242, pid " + std::to_string(::getpid())),
            std::string::npos) << msg;
  // A live holder on this host is watched for dying_grace_s (3 s) first.
  EXPECT_GE(waited, 2.9);
  EXPECT_LT(waited, 10);
  EXPECT_NE(msg.find("last heartbeat 3 s ago"), std::string::npos) << msg;
  EXPECT_NE(msg.find("use another --run_dir or wait"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "not one line: " << msg;
  EXPECT_EQ(listing(dir), before);
  EXPECT_EQ(read_file(dir + "/LOCK"), lock_before);
  first.verify("write results.json");
}

TEST(RunLock, DeadPidOnThisHostIsTakenOver) {
  const std::string dir = fresh_dir("dead");
  plant_lock(dir, holder(host_name(), dead_pid(), "", "old-token"));
  RunLock lock(dir);
  EXPECT_EQ(RunLock::read(dir)->token, lock.holder().token);
  EXPECT_EQ(listing(dir), std::set<std::string>{"LOCK"});  // LOCK.break released, temps gone
}

TEST(RunLock, ZombieHolderIsTakenOver) {
  // Exited but not yet collected by its parent (this test): /proc shows state Z.
  const std::string dir = fresh_dir("zombie");
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  for (int i = 0; i < 100 && read_process_stat(child).state != 'Z'; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(read_process_stat(child).state, 'Z');
  LockHolder h = holder(host_name(), child, "", "zombie");
  h.start_ticks = read_process_stat(child).start_ticks;
  plant_lock(dir, h);
  RunLockOptions opt;
  opt.dying_grace_s = 0;
  RunLock lock(dir, opt);
  EXPECT_EQ(RunLock::read(dir)->token, lock.holder().token);
  ::waitpid(child, nullptr, 0);
}

TEST(RunLock, HolderExitingOnThisHostIsWaitedFor) {
  // The previous writer is still alive when the next job starts, and exits 1 s
  // later: within dying_grace_s, so the lock is taken over instead of refused.
  const std::string dir = fresh_dir("exiting");
  const pid_t child = ::fork();
  if (child == 0) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    ::_exit(0);
  }
  LockHolder h = holder(host_name(), child, "", "exiting");
  h.start_ticks = read_process_stat(child).start_ticks;
  plant_lock(dir, h);
  const auto t0 = std::chrono::steady_clock::now();
  {
    RunLock lock(dir);
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_GT(waited, 0.5);
    EXPECT_LT(waited, 3);
    EXPECT_EQ(RunLock::read(dir)->token, lock.holder().token);
  }
  ::waitpid(child, nullptr, 0);
  // One that stays alive past the grace is refused.
  const pid_t stays = ::fork();
  if (stays == 0) {
    std::this_thread::sleep_for(std::chrono::seconds(30));
    ::_exit(0);
  }
  h = holder(host_name(), stays, "", "stays");
  h.start_ticks = read_process_stat(stays).start_ticks;
  plant_lock(dir, h);
  RunLockOptions opt;
  opt.dying_grace_s = 0.5;
  EXPECT_NE(refusal(dir, opt).find("pid " + std::to_string(stays)), std::string::npos);
  ::kill(stays, SIGKILL);
  ::waitpid(stays, nullptr, 0);
}

TEST(RunLock, ReusedPidIsTakenOver) {
  // The pid is alive (it is ours) but was started at another time than the holder's.
  const std::string dir = fresh_dir("reused");
  LockHolder h = holder(host_name(), ::getpid(), "", "old-token");
  h.start_ticks = process_start_ticks(::getpid()) - 100;
  plant_lock(dir, h);
  RunLock lock(dir);
  EXPECT_EQ(RunLock::read(dir)->token, lock.holder().token);
}

TEST(RunLock, LiveHolderOnAnotherHostIsRefused) {
  const std::string dir = fresh_dir("remote_live");
  plant_lock(dir, holder("node-elsewhere-17", 12345, "777", "remote"), /*age_s=*/20);
  const std::string msg = refusal(dir);
  EXPECT_NE(msg.find("in use by host node-elsewhere-17, job 777, pid 12345 (since 2026-12-01T10:00:00Z, last "
                     "heartbeat 2"), std::string::npos) << msg;
  EXPECT_EQ(RunLock::read(dir)->token, "remote");
}

TEST(RunLock, OldMtimeIsStaleOnAnyHost) {
  const std::string dir = fresh_dir("remote_stale");
  RunLockOptions opt;
  opt.heartbeat_s = 10;
  opt.stale_s = 60;
  plant_lock(dir, holder("node-elsewhere-17", 12345, "777", "remote"), /*age_s=*/50);
  EXPECT_FALSE(refusal(dir, opt).empty()) << "50 s < lock_stale_s: still live";
  plant_lock(dir, holder("node-elsewhere-17", 12345, "777", "remote"), /*age_s=*/61);
  RunLock lock(dir, opt);
  EXPECT_EQ(RunLock::read(dir)->token, lock.holder().token);
}

TEST(RunLock, EarlierRunOfTheSameSlurmJobIsStale) {
  const std::string dir = fresh_dir("requeued");
  LockHolder h = holder("node-elsewhere-17", 12345, "555", "run0");
  plant_lock(dir, h);
  ::setenv("SLURM_JOB_ID", "555", 1);
  ::setenv("SLURM_RESTART_COUNT", "1", 1);
  {
    RunLock lock(dir);
    EXPECT_EQ(RunLock::read(dir)->token, lock.holder().token);
  }
  // The same run of the job (restart 0 again) is not stale.
  plant_lock(dir, h);
  ::setenv("SLURM_RESTART_COUNT", "0", 1);
  EXPECT_FALSE(refusal(dir).empty());
  ::unsetenv("SLURM_JOB_ID");
  ::unsetenv("SLURM_RESTART_COUNT");
}

TEST(RunLock, LeftoverBreakLockIsRemoved) {
  const std::string dir = fresh_dir("break");
  plant_lock(dir, holder(host_name(), dead_pid(), "", "old"));
  plant_lock(dir, holder(host_name(), dead_pid(), "", "dead-breaker"), RunLock::kBreakStaleSeconds + 60, "LOCK.break");
  RunLock lock(dir);
  EXPECT_EQ(RunLock::read(dir)->token, lock.holder().token);
  EXPECT_FALSE(fs::exists(dir + "/LOCK.break"));
}

TEST(RunLock, HeartbeatRefreshesTheMtime) {
  const std::string dir = fresh_dir("heartbeat");
  RunLockOptions opt;
  opt.heartbeat_s = 0.1;
  opt.stale_s = 0.5;
  RunLock lock(dir, opt);
  timespec old[2];
  clock_gettime(CLOCK_REALTIME, &old[0]);
  old[0].tv_sec -= 1000;
  old[1] = old[0];
  ASSERT_EQ(::utimensat(AT_FDCWD, (dir + "/LOCK").c_str(), old, 0), 0);
  EXPECT_GT(mtime_age(dir + "/LOCK"), 999);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_LT(mtime_age(dir + "/LOCK"), 1.0);
  // A fresh heartbeat keeps a second contender out even with a tiny lock_stale_s.
  opt.dying_grace_s = 0.2;
  EXPECT_FALSE(refusal(dir, opt).empty());
}

TEST(RunLock, OptionsNeedThreeHeartbeats) {
  RunLockOptions opt;
  opt.heartbeat_s = 30;
  opt.stale_s = 89;
  EXPECT_THROW(opt.validate(), ConfigError);
  opt.stale_s = 90;
  EXPECT_NO_THROW(opt.validate());
  opt.heartbeat_s = 0;
  EXPECT_THROW(opt.validate(), ConfigError);
}

TEST(RunLock, LostLockIsCaughtBeforeACommit) {
  const std::string dir = fresh_dir("lost");
  RunLock lock(dir);
  // Another job took the folder (say, after our heartbeat stalled past lock_stale_s).
  write_file_atomic(dir + "/LOCK", holder("node-b", 999, "31337", "thief").to_json());
  try {
    lock.verify("commit checkpoint step_00000012");
    FAIL() << "a lost lock was not noticed";
  } catch (const ConfigError& e) {
    EXPECT_NE(e.message().find("cannot commit checkpoint step_00000012: run folder " + dir +
                               " is now held by host node-b, job 31337, pid 999"),
              std::string::npos) << e.message();
  }
  ::unlink((dir + "/LOCK").c_str());
  EXPECT_THROW(lock.verify("write results.json"), ConfigError);
  // The destructor leaves another holder's LOCK alone.
  write_file_atomic(dir + "/LOCK", holder("node-b", 999, "31337", "thief").to_json());
}

TEST(RunLock, LostLockLeavesTheOtherHoldersLock) {
  const std::string dir = fresh_dir("lost2");
  {
    RunLock lock(dir);
    write_file_atomic(dir + "/LOCK", holder("node-b", 999, "31337", "thief").to_json());
  }
  ASSERT_TRUE(RunLock::read(dir));
  EXPECT_EQ(RunLock::read(dir)->token, "thief");
}

// N processes start at once on a folder whose LOCK is stale: exactly one must
// hold it, the others refused naming that one. Each child reports 'W' or 'L' and
// its pid; winners hold the lock until every child has reported (a winner that let
// go early would make a later contender a legitimate second winner).
TEST(RunLock, RacingContendersOnAStaleLockExactlyOneWins) {
  constexpr int kContenders = 16;
  for (int round = 0; round < 20; ++round) {
    SCOPED_TRACE(cat("round ", round));
    const std::string dir = fresh_dir(cat("race_", round));
    plant_lock(dir, holder(host_name(), dead_pid(), "", "stale"));
    int results[2], release[2], go[2];
    ASSERT_EQ(::pipe(results), 0);
    ASSERT_EQ(::pipe(release), 0);
    ASSERT_EQ(::pipe(go), 0);
    std::vector<pid_t> kids;
    for (int i = 0; i < kContenders; ++i) {
      const pid_t p = ::fork();
      ASSERT_GE(p, 0);
      if (p == 0) {
        ::close(results[0]);
        ::close(release[1]);
        ::close(go[1]);
        char c;
        (void)!::read(go[0], &c, 1);  // all start together
        struct Report {
          char verdict;
          int32_t pid;
        } r{'L', static_cast<int32_t>(::getpid())};
        try {
          RunLockOptions opt;
          opt.dying_grace_s = 0.2;  // the winner stays: losers need not watch it long
          RunLock lock(dir, opt);
          r.verdict = 'W';
          (void)!::write(results[1], &r, sizeof r);
          while (::read(release[0], &c, 1) > 0) {
          }
        } catch (const ConfigError&) {
          (void)!::write(results[1], &r, sizeof r);
        } catch (...) {
          r.verdict = 'E';
          (void)!::write(results[1], &r, sizeof r);
        }
        ::_exit(0);
      }
      kids.push_back(p);
    }
    ::close(results[1]);
    ::close(release[0]);
    ::close(go[0]);
    ::close(go[1]);  // EOF: go
    int winners = 0, losers = 0;
    int32_t winner = 0;
    std::string holder_seen;
    for (int i = 0; i < kContenders; ++i) {
      struct {
        char verdict;
        int32_t pid;
      } r{};
      ASSERT_EQ(::read(results[0], &r, sizeof r), static_cast<ssize_t>(sizeof r));
      if (r.verdict == 'W') {
        ++winners;
        winner = r.pid;
      } else {
        EXPECT_EQ(r.verdict, 'L') << "contender " << r.pid << " failed otherwise";
        ++losers;
      }
    }
    // While the winner still holds it, LOCK names the winner.
    const std::optional<LockHolder> h = RunLock::read(dir);
    ::close(release[1]);
    for (pid_t p : kids) ::waitpid(p, nullptr, 0);
    ::close(results[0]);
    EXPECT_EQ(winners, 1);
    EXPECT_EQ(losers, kContenders - 1);
    ASSERT_TRUE(h);
    EXPECT_EQ(h->pid, winner);
    EXPECT_FALSE(fs::exists(dir + "/LOCK.break"));
  }
}

// In the trainer: a run folder taken by another job between two checkpoints; the
// next checkpoint is refused before it is renamed into place or marked complete.
TEST(RunLock, TrainerRefusesToCommitACheckpointAfterLosingTheFolder) {
  TrainConfig c = train_test::base_config(train_test::fortunes_dataset(), "lock_trainer");
  fs::remove_all(c.run_dir);
  c.max_steps = 1;
  c.checkpoint.every_steps = 1;
  train_test::SoloRank solo(c);
  ASSERT_TRUE(solo.trainer.run());  // step 1, its checkpoint, the final outputs
  EXPECT_TRUE(fs::exists(c.run_dir + "/checkpoints/step_00000001/COMPLETE"));
  solo.trainer.step();
  write_file_atomic(c.run_dir + "/LOCK", holder("node-b", 999, "31337", "thief").to_json());
  try {
    solo.trainer.save_checkpoint();
    FAIL() << "the checkpoint was committed by a writer that lost the folder";
  } catch (const ConfigError& e) {
    EXPECT_NE(e.message().find("cannot commit checkpoint step_00000002: run folder"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("now held by host node-b, job 31337, pid 999"), std::string::npos) << e.message();
  }
  EXPECT_FALSE(fs::exists(c.run_dir + "/checkpoints/step_00000002"));
  EXPECT_FALSE(fs::exists(c.run_dir + "/checkpoints/.step_00000002.tmp/COMPLETE"));
  EXPECT_EQ(Checkpointer::list_complete(c.run_dir + "/checkpoints").size(), 1u);
}

// A second trainer on a folder in use is refused before it writes anything there.
TEST(RunLock, SecondTrainerTouchesNothing) {
  TrainConfig c = train_test::base_config(train_test::fortunes_dataset(), "lock_trainer2");
  fs::remove_all(c.run_dir);
  c.max_steps = 2;
  train_test::SoloRank first(c);
  const std::set<std::string> before = listing(c.run_dir);
  const std::string metrics = read_file(c.run_dir + "/metrics.jsonl");
  c.checkpoint.resume = "auto";
  EXPECT_THROW(train_test::SoloRank second(c), ConfigError);
  EXPECT_EQ(listing(c.run_dir), before);
  EXPECT_EQ(read_file(c.run_dir + "/metrics.jsonl"), metrics);
}

}  // namespace
}  // namespace bora
