#include "train/run_lock.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <random>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/log.h"
#include "core/main.h"

namespace bora {
namespace {

std::string random_hex() {
  std::random_device rd;
  std::mt19937_64 gen((uint64_t(rd()) << 32) ^ rd() ^ uint64_t(::getpid()) ^
                      uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()));
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(gen()));
  return buf;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

double seconds_since(const struct timespec& t) {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return double(now.tv_sec - t.tv_sec) + 1e-9 * double(now.tv_nsec - t.tv_nsec);
}

// Writes `content` to a unique temp file in `dir`, fsyncs it and link()s it to
// `target`. True when the link is ours: link() succeeded, or it reported an error
// but the temp now has two links (NFS: the server did the link, its reply was
// lost and the retried request found the name taken). False when `target` exists.
bool link_exclusive(const std::string& dir, const std::string& target, const std::string& content,
                    const LockHolder& self) {
  const std::string tmp = cat(dir, "/.lock.", self.host, ".", self.pid, ".", random_hex());
  {
    const UniqueFd f(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    BORA_CHECK(f.fd >= 0, IoError, "cannot create lock file '", tmp, "': ", std::strerror(errno));
    size_t done = 0;
    while (done < content.size()) {
      const ssize_t n = ::write(f.fd, content.data() + done, content.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        BORA_THROW(IoError, "cannot write lock file '", tmp, "': ", std::strerror(err));
      }
      done += static_cast<size_t>(n);
    }
    if (::fsync(f.fd) != 0 && errno != EINVAL) {
      const int err = errno;
      ::unlink(tmp.c_str());
      BORA_THROW(IoError, "cannot sync lock file '", tmp, "': ", std::strerror(err));
    }
  }
  const int rc = ::link(tmp.c_str(), target.c_str());
  const int err = errno;
  struct stat st {};
  const bool held = rc == 0 || (::stat(tmp.c_str(), &st) == 0 && st.st_nlink == 2);
  ::unlink(tmp.c_str());
  if (held) return true;
  BORA_CHECK(err == EEXIST, IoError, "cannot link '", tmp, "' to '", target, "': ", std::strerror(err));
  return false;
}

// A LOCK as found: its holder (when its content parses), inode and mtime age.
struct Observed {
  std::optional<LockHolder> holder;
  std::string problem;  // why `holder` is empty
  ino_t ino = 0;
  double age_s = 0;
};

std::optional<Observed> observe(const std::string& path) {
  const UniqueFd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (f.fd < 0) {
    BORA_CHECK(errno == ENOENT, IoError, "cannot open '", path, "': ", std::strerror(errno));
    return std::nullopt;
  }
  Observed o;
  struct stat st {};
  BORA_CHECK(::fstat(f.fd, &st) == 0, IoError, "cannot stat '", path, "': ", std::strerror(errno));
  o.ino = st.st_ino;
  o.age_s = seconds_since(st.st_mtim);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = ::read(f.fd, buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    BORA_CHECK(n > 0, IoError, "cannot read '", path, "': ", std::strerror(errno));
    text.append(buf, static_cast<size_t>(n));
  }
  try {
    o.holder = LockHolder::from_json(text, path);
  } catch (const Error& e) {
    o.problem = e.message();
  }
  return o;
}

bool same_lock(const Observed& a, const Observed& b) {
  if (a.holder && b.holder) return a.holder->token == b.holder->token;
  return !a.holder && !b.holder && a.ino == b.ino;
}

std::string who(const Observed& o) {
  return o.holder ? o.holder->describe() : cat("an unreadable lock (", o.problem, ")");
}

// Why the observed holder is gone ("" while it may be alive).
std::string stale_reason(const Observed& o, const LockHolder& me, const RunLockOptions& opt) {
  if (o.holder) {
    const LockHolder& h = *o.holder;
    if (h.host == me.host && h.pid > 0) {
      if (::kill(static_cast<pid_t>(h.pid), 0) != 0 && errno == ESRCH)
        return cat("its process ", h.pid, " on ", h.host, " is gone");
      const ProcessStat ps = read_process_stat(h.pid);
      // A zombie has exited; only its parent has not collected it yet (a rank
      // whose mpirun is gone is reparented and may stay so for a moment).
      if (ps.state == 'Z' || ps.state == 'X') return cat("its process ", h.pid, " on ", h.host, " is gone (exited)");
      if (h.start_ticks >= 0 && ps.start_ticks >= 0 && ps.start_ticks != h.start_ticks)
        return cat("pid ", h.pid, " on ", h.host, " is now another process (started at another time)");
    }
    if (!h.job.empty() && h.job == me.job && h.restart < me.restart)
      return cat("it is an earlier run (restart ", h.restart, ") of this Slurm job ", h.job);
  }
  if (o.age_s > opt.stale_s)
    return cat("no heartbeat for ", static_cast<int64_t>(o.age_s), " s (lock_stale_s = ", opt.stale_s, ")");
  return "";
}

void sleep_ms(int64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

}  // namespace

void RunLockOptions::validate() const {
  BORA_CHECK(heartbeat_s > 0, ConfigError, "lock_heartbeat_s must be > 0, got ", heartbeat_s);
  BORA_CHECK(stale_s >= 3 * heartbeat_s, ConfigError, "lock_stale_s (", stale_s,
             ") must be at least 3 heartbeats (lock_heartbeat_s = ", heartbeat_s,
             "): a live holder whose heartbeat is merely late must never look stale");
  BORA_CHECK(dying_grace_s >= 0, ConfigError, "the lock's dying grace must be >= 0 s, got ", dying_grace_s);
  BORA_CHECK(wait_s >= 0, ConfigError, "the lock's wait must be >= 0 s, got ", wait_s);
  BORA_CHECK(!name.empty() && name.find('/') == std::string::npos, ConfigError, "bad lock file name '", name, "'");
}

int64_t process_start_ticks(int64_t pid) { return read_process_stat(pid).start_ticks; }

ProcessStat read_process_stat(int64_t pid) {
  ProcessStat out;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name (field 2) may hold spaces and parentheses: fields 3.. follow
  // the last ')'. The state is field 3, the start time field 22.
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return out;
  std::istringstream rest(text.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22; ++i) {
    if (!(rest >> field)) return out;
    if (i == 3) out.state = field[0];
  }
  out.start_ticks = std::atoll(field.c_str());
  return out;
}

LockHolder LockHolder::self() {
  LockHolder h;
  h.host = host_name();
  h.pid = ::getpid();
  const char* job = std::getenv("SLURM_JOB_ID");
  h.job = job ? job : "";
  const char* restart = std::getenv("SLURM_RESTART_COUNT");
  h.restart = restart ? std::atoll(restart) : 0;
  h.started = utc_now();
  h.start_ticks = process_start_ticks(h.pid);
  h.token = cat(h.host, ":", h.pid, ":", random_hex());
  return h;
}

std::string LockHolder::to_json() const {
  return OrderedJson{{"host", host},       {"pid", pid},
                     {"job", job},         {"restart", restart},
                     {"started", started}, {"start_ticks", start_ticks},
                     {"token", token}}
             .dump() +
         "\n";
}

LockHolder LockHolder::from_json(const std::string& text, const std::string& origin) {
  const Json j = parse_json(text, origin);
  BORA_CHECK(j.is_object() && j.contains("host") && j.contains("pid") && j.contains("token"), FormatError, origin,
             " is not a run-folder lock (no host, pid, token)");
  LockHolder h;
  try {
    h.host = j.at("host").get<std::string>();
    h.pid = j.at("pid").get<int64_t>();
    h.job = j.value("job", std::string());
    h.restart = j.value("restart", int64_t(0));
    h.started = j.value("started", std::string("?"));
    h.start_ticks = j.value("start_ticks", int64_t(-1));
    h.token = j.at("token").get<std::string>();
  } catch (const std::exception& e) {
    BORA_THROW(FormatError, origin, ": a field of the lock has the wrong type (", e.what(), ")");
  }
  return h;
}

std::string LockHolder::describe() const {
  return cat("host ", host, ", job ", job.empty() ? "none" : job, ", pid ", pid);
}

RunLock::RunLock(std::string dir, RunLockOptions options)
    : dir_(std::move(dir)), lock_path_(dir_ + "/" + options.name), options_(options), self_(LockHolder::self()) {
  options_.validate();
  make_dirs(dir_);
  acquire();
  heartbeat_ = std::thread([this] { heartbeat_loop(); });
}

RunLock::~RunLock() {
  {
    std::lock_guard<std::mutex> lk(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (heartbeat_.joinable()) heartbeat_.join();
  if (!held_) return;
  try {
    const std::optional<Observed> o = observe(lock_path_);
    if (o && o->holder && o->holder->token == self_.token) ::unlink(lock_path_.c_str());
  } catch (const std::exception&) {
    // A destructor cannot fail: a LOCK left behind is stale (dead pid) for the next job.
  }
}

std::optional<LockHolder> RunLock::read(const std::string& dir, std::string* problem) {
  const std::optional<Observed> o = observe(dir + "/LOCK");
  if (!o) {
    if (problem) *problem = "there is no " + dir + "/LOCK";
    return std::nullopt;
  }
  if (problem) *problem = o->problem;
  return o->holder;
}

void RunLock::acquire() {
  const std::string content = self_.to_json();
  const std::string break_path = lock_path_ + ".break";
  // A contender holds LOCK.break for milliseconds; waiting longer than this means
  // something is wrong (a file system that does not answer).
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::duration<double>(30 + options_.wait_s);
  std::mt19937 jitter(static_cast<unsigned>(std::hash<std::string>()(self_.token)));
  std::optional<std::chrono::steady_clock::time_point> live_since;
  for (int attempt = 0;; ++attempt) {
    BORA_CHECK(std::chrono::steady_clock::now() < deadline, ConfigError, "cannot lock ", options_.what, " ", dir_,
               ": it stayed contended for ", static_cast<int64_t>(30 + options_.wait_s), " s (", break_path,
               " held by a contender that does not finish)");
    if (link_exclusive(dir_, lock_path_, content, self_)) {
      held_ = true;
      return;
    }
    const std::optional<Observed> seen = observe(lock_path_);
    if (!seen) continue;  // released between our link() and our look: try again
    const std::string reason = stale_reason(*seen, self_, options_);
    // A lock held for milliseconds: wait for a live holder to let go.
    if (reason.empty() && std::chrono::steady_clock::now() - start < std::chrono::duration<double>(options_.wait_s)) {
      sleep_ms(1 + static_cast<int64_t>(jitter() % 20));
      continue;
    }
    // A live holder on this host may be on its way out: the previous job's rank 0
    // still unwinding, or being killed by its launcher, when the next job starts
    // at once (a requeue, a test). It gets dying_grace_s to go.
    if (reason.empty() && seen->holder && seen->holder->host == self_.host) {
      if (!live_since) live_since = std::chrono::steady_clock::now();
      if (std::chrono::steady_clock::now() - *live_since < std::chrono::duration<double>(options_.dying_grace_s)) {
        sleep_ms(100);
        continue;
      }
    }
    BORA_CHECK(!reason.empty(), ConfigError, options_.what, " ", dir_, " is in use by ", who(*seen), " (since ",
               seen->holder ? seen->holder->started : "?", ", last heartbeat ", static_cast<int64_t>(std::max(0.0, seen->age_s)),
               " s ago)",
               options_.wait_s > 0 ? cat(" and stayed so for ", options_.wait_s, " s") :
                                     std::string(": another bora-train writes there; use another --run_dir or wait for it to end"),
               " (a holder that is gone is taken over: a dead pid on its host, or no heartbeat for lock_stale_s = ",
               options_.stale_s, " s)");

    // Takeover, one contender at a time: whoever holds LOCK.break.
    if (!link_exclusive(dir_, break_path, content, self_)) {
      struct stat st {};
      if (::stat(break_path.c_str(), &st) == 0 && seconds_since(st.st_mtim) > kBreakStaleSeconds) {
        // Left by a contender that died while holding it. Moved aside first, and
        // deleted only if it is still the old one (a fresh LOCK.break of a live
        // contender that appeared meanwhile is put back).
        const std::string aside = cat(break_path, ".stale.", self_.pid, ".", random_hex());
        if (::rename(break_path.c_str(), aside.c_str()) == 0) {
          struct stat moved {};
          if (::stat(aside.c_str(), &moved) == 0 && moved.st_ino != st.st_ino) (void)::link(aside.c_str(), break_path.c_str());
          ::unlink(aside.c_str());
          BORA_WARN("removed a stale ", break_path, " (", static_cast<int64_t>(seconds_since(st.st_mtim)), " s old)");
        }
      }
      sleep_ms(10 + static_cast<int64_t>(jitter() % 40));
      continue;
    }
    bool got = false;
    try {
      const std::optional<Observed> now = observe(lock_path_);
      if (now && same_lock(*seen, *now)) BORA_CHECK(::unlink(lock_path_.c_str()) == 0 || errno == ENOENT, IoError,
                                                     "cannot remove the stale ", lock_path_, ": ", std::strerror(errno));
      // Still the stale holder: removed, ours now. Changed: link() fails and the
      // loop looks at the new holder.
      got = link_exclusive(dir_, lock_path_, content, self_);
    } catch (...) {
      const std::optional<Observed> b = observe(break_path);
      if (b && b->holder && b->holder->token == self_.token) ::unlink(break_path.c_str());
      throw;
    }
    const std::optional<Observed> b = observe(break_path);
    if (b && b->holder && b->holder->token == self_.token) ::unlink(break_path.c_str());
    if (got) {
      held_ = true;
      BORA_WARN(options_.what, " ", dir_, ": took over the lock of ", who(*seen), " (since ",
                seen->holder ? seen->holder->started : "?", "): ", reason);
      return;
    }
    (void)attempt;
  }
}

void RunLock::heartbeat_loop() {
  const auto period = std::chrono::duration<double>(options_.heartbeat_s);
  bool warned = false;
  std::unique_lock<std::mutex> lk(mutex_);
  while (!wake_.wait_for(lk, period, [this] { return stopping_; })) {
    lk.unlock();
    try {
      const std::optional<Observed> o = observe(lock_path_);
      if (o && o->holder && o->holder->token == self_.token) {
        ::utimensat(AT_FDCWD, lock_path_.c_str(), nullptr, 0);
      } else if (!warned) {
        // verify() turns this into an error before the next commit.
        BORA_WARN("run folder ", dir_, ": lost its lock to ", o ? who(*o) : std::string("nobody (LOCK is gone)"),
                  "; the next checkpoint or output will be refused");
        warned = true;
      }
    } catch (const std::exception& e) {
      if (!warned) BORA_WARN("run folder ", dir_, ": heartbeat failed: ", e.what());
      warned = true;
    }
    lk.lock();
  }
}

void RunLock::verify(const std::string& action) const {
  const std::optional<Observed> o = observe(lock_path_);
  BORA_CHECK(o, ConfigError, "cannot ", action, ": run folder ", dir_, " lost its lock (", lock_path_,
             " is gone); another job may be writing there");
  BORA_CHECK(o->holder && o->holder->token == self_.token, ConfigError, "cannot ", action, ": run folder ", dir_,
             " is now held by ", who(*o), " (since ", o->holder ? o->holder->started : "?", "), not by this job (",
             self_.describe(), "); two jobs wrote there, nothing more is marked complete by this one");
}

}  // namespace bora
