// Logging: one line per message on stderr, prefixed with time and rank.
//
//   BORA_INFO("loaded ", n, " tensors in ", secs, " s");
//
// The rank prefix is thread-local, not a process global, so that N simulated ranks
// running as threads in one test process each print their own.
#pragma once

#include "core/error.h"

namespace bora {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3 };

// Sets the rank shown in this thread's log lines (world <= 1 shows none).
void set_log_rank(int rank, int world);
// Messages below this level are dropped (default Info; BORA_LOG_LEVEL=debug|info|warn).
void set_log_level(LogLevel level);
LogLevel log_level();
void log_line(LogLevel level, const std::string& message);

}  // namespace bora

#define BORA_LOG(level, ...)                                   \
  do {                                                         \
    if (static_cast<int>(level) >= static_cast<int>(::bora::log_level())) \
      ::bora::log_line(level, ::bora::cat(__VA_ARGS__));       \
  } while (0)
#define BORA_DEBUG(...) BORA_LOG(::bora::LogLevel::Debug, __VA_ARGS__)
#define BORA_INFO(...) BORA_LOG(::bora::LogLevel::Info, __VA_ARGS__)
#define BORA_WARN(...) BORA_LOG(::bora::LogLevel::Warn, __VA_ARGS__)
