// The run-folder lock: one writer per run folder, ever. Two bora-train jobs on one
// folder (a second `--resume auto` started while the first runs) would interleave
// their checkpoints and both exit 0; the second must refuse instead, naming the
// first. The writer (rank 0) holds <run>/LOCK from before it writes anything in the
// folder until it exits (normally, preempted, or by an error: the destructor).
//
// The protocol works where flock(2) may not, on NFS and other shared file systems:
// link(2) is atomic there and fails with EEXIST when the name exists.
//
//   acquire   write <run>/.lock.<host>.<pid>.<random> = {host, pid, job, restart,
//             started, start_ticks, token}, fsync, link() it to <run>/LOCK; held on
//             success (or when the temp has 2 links after an ambiguous error, an
//             NFS reply lost after the server did the link); unlink the temp.
//   heartbeat a thread of the holder touches LOCK's mtime every heartbeat_s, after
//             checking that LOCK still holds its token.
//   refuse    LOCK names a live holder: ConfigError, one line, naming host, job,
//             pid, since when and the last heartbeat's age; nothing is written.
//   stale     the holder is gone when: it is on this host and its pid is dead (or
//             a zombie) or belongs to a process started at another time (a reused
//             pid; a live holder on this host is watched for dying_grace_s
//             before the refusal, in case it is exiting right now); or it
//             is an earlier run of this Slurm job (same SLURM_JOB_ID, a lower
//             SLURM_RESTART_COUNT: Slurm requeued it); or, on any host, LOCK's
//             mtime is older than stale_s (>= 3 heartbeats; the file server's
//             clock against this host's: keep clocks in sync, NTP).
//   takeover  of a stale LOCK, safe against any number of contenders at once:
//             take <run>/LOCK.break with the same link() protocol, re-read LOCK and
//             confirm that it still is the same stale holder (token), unlink it,
//             link our own, release LOCK.break. A contender that finds LOCK.break
//             taken waits for it and starts over (and then finds the winner live).
//             A LOCK.break older than kBreakStaleSeconds is left over from a
//             contender that died in those milliseconds and is removed.
//   verify    before a checkpoint is committed (renamed to step_N, COMPLETE) and
//             before the final outputs, the writer checks that LOCK still holds its
//             token: ConfigError naming the new holder otherwise, nothing marked
//             complete.
//   release   unlink LOCK if it still holds our token.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace bora {

struct RunLockOptions {
  double heartbeat_s = 30;  // period of the holder's mtime refresh
  double stale_s = 300;     // a LOCK untouched this long is stale on any host
  // How long a live holder on this host is watched before the refusal: the
  // previous job's writer may be exiting right now (killed by its launcher, or
  // unwinding after an error) when the next job starts at once.
  double dying_grace_s = 3;
  // The lock's file in `dir` and what the messages call the thing it guards.
  std::string name = "LOCK";
  std::string what = "run folder";
  // > 0: a live holder is waited for (polling with jitter) this long before the
  // refusal: the leaderboard's lock, held for milliseconds by many writers
  // (train/leaderboard.h). 0: a live holder is refused at once (a run folder).
  double wait_s = 0;
  void validate() const;    // ConfigError unless heartbeat_s > 0 and stale_s >= 3 * heartbeat_s
};

// Who holds (or held) a LOCK: its JSON content.
struct LockHolder {
  std::string host;
  int64_t pid = 0;
  std::string job;           // SLURM_JOB_ID, "" outside Slurm
  int64_t restart = 0;       // SLURM_RESTART_COUNT (0 outside Slurm)
  std::string started;       // UTC, ISO 8601
  int64_t start_ticks = -1;  // the process's start time (/proc/<pid>/stat field 22), against pid reuse
  std::string token;         // unique per acquisition: the identity verify() compares

  // This process, with a fresh token.
  static LockHolder self();
  std::string to_json() const;
  // FormatError naming `origin` when the text is not a holder record.
  static LockHolder from_json(const std::string& text, const std::string& origin);
  // "host H, job J, pid P" (job "none" outside Slurm).
  std::string describe() const;
};

// Process `pid` on this host as /proc/<pid>/stat shows it: its state ('R', 'S',
// ..., 'Z' for a zombie; 0 when there is no such process) and its start time
// (clock ticks since boot, -1 when there is no such process).
struct ProcessStat {
  char state = 0;
  int64_t start_ticks = -1;
};
ProcessStat read_process_stat(int64_t pid);
int64_t process_start_ticks(int64_t pid);

class RunLock {
 public:
  // A LOCK left by a contender that died between taking and releasing it.
  static constexpr double kBreakStaleSeconds = 60;

  // Acquires <dir>/<name> (creating `dir` and its parents) or throws ConfigError
  // naming the live holder. Starts the heartbeat.
  RunLock(std::string dir, RunLockOptions options = {});
  // Stops the heartbeat; unlinks LOCK if it still holds our token.
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  // ConfigError naming the current holder (or the missing LOCK) unless LOCK still
  // holds our token; `action` says what was about to happen ("commit checkpoint
  // step_00000012").
  void verify(const std::string& action) const;
  const LockHolder& holder() const { return self_; }
  const std::string& path() const { return lock_path_; }
  // The holder recorded in <dir>/LOCK, nullopt when there is no LOCK (or it cannot
  // be read: then `problem` says why, when given).
  static std::optional<LockHolder> read(const std::string& dir, std::string* problem = nullptr);

 private:
  void acquire();
  void heartbeat_loop();

  std::string dir_, lock_path_;
  RunLockOptions options_;
  LockHolder self_;
  bool held_ = false;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread heartbeat_;
};

}  // namespace bora
