#include "core/log.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>

namespace bora {
namespace {

thread_local int t_rank = 0;
thread_local int t_world = 1;

LogLevel level_from_env() {
  const char* env = std::getenv("BORA_LOG_LEVEL");
  if (!env) return LogLevel::Info;
  if (!std::strcmp(env, "debug")) return LogLevel::Debug;
  if (!std::strcmp(env, "warn")) return LogLevel::Warn;
  if (!std::strcmp(env, "error")) return LogLevel::Error;
  return LogLevel::Info;
}

// The level is process-wide configuration (like an environment variable), not
// per-rank state; it is read once.
LogLevel& level_ref() {
  static LogLevel level = level_from_env();
  return level;
}

}  // namespace

void set_log_rank(int rank, int world) {
  t_rank = rank;
  t_world = world;
}

void set_log_level(LogLevel level) { level_ref() = level; }
LogLevel log_level() { return level_ref(); }

void log_line(LogLevel level, const std::string& message) {
  static const char* names[] = {"debug", "info", "warn", "error"};
  auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  localtime_r(&now, &tm);
  char stamp[16];
  std::strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
  std::string prefix = std::string("[") + stamp;
  if (t_world > 1) prefix += " r" + std::to_string(t_rank);
  prefix += "] ";
  if (level != LogLevel::Info) prefix += std::string(names[static_cast<int>(level)]) + ": ";
  // One fwrite per line keeps lines of concurrent ranks from interleaving.
  std::string line = prefix + message + "\n";
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace bora
