// Typed errors of bora. Every failure that a user can cause (a bad option, a
// corrupt file, a failing rank) is thrown as one of these, with the source file and
// line that detected it, and caught exactly once, in the tool's main (core/main.h),
// which prints it as ONE line and exits non-zero.
//
//   BORA_CHECK(n > 0, DataError, "task '", name, "' has no training documents");
//   BORA_THROW(FormatError, path, ": header length ", n, " runs past end of file");
//
// These are always-on checks (never compiled out like assert): they guard files,
// checkpoints and configuration, where a silent wrong answer costs a whole run.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace bora {

// Concatenates anything streamable: cat("rank ", 3, ": ", msg).
template <class... Args>
std::string cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

class Error : public std::runtime_error {
 public:
  Error(const std::string& message, const char* file, int line)
      : std::runtime_error(message + " [" + file + ":" + std::to_string(line) + "]"),
        message_(message), file_(file), line_(line) {}
  // The message without the source location.
  const std::string& message() const { return message_; }
  const char* file() const { return file_; }
  int line() const { return line_; }
  // The process exit code this error maps to (README, "Using bora", the exit-code table).
  virtual int exit_code() const { return 1; }

 private:
  std::string message_;
  const char* file_;
  int line_;
};

#define BORA_DEFINE_ERROR(Name, code)               \
  class Name : public Error {                        \
   public:                                           \
    using Error::Error;                              \
    int exit_code() const override { return code; } \
  }

BORA_DEFINE_ERROR(ConfigError, 2);      // unknown key, bad value, inconsistent options
BORA_DEFINE_ERROR(IoError, 3);          // cannot open, read, write, rename a file
BORA_DEFINE_ERROR(FormatError, 4);      // a file exists but its content is invalid/corrupt
BORA_DEFINE_ERROR(DataError, 5);        // valid files, unusable content (empty task, ...)
BORA_DEFINE_ERROR(NumericError, 6);     // NaN/Inf loss and other numerical failures
BORA_DEFINE_ERROR(DistError, 7);        // communicator, partition, replica mismatch
BORA_DEFINE_ERROR(CheckpointError, 8);  // checkpoint missing, corrupt or incompatible
BORA_DEFINE_ERROR(InternalError, 70);   // a bug in bora itself

#undef BORA_DEFINE_ERROR

}  // namespace bora

#define BORA_THROW(Type, ...) throw ::bora::Type(::bora::cat(__VA_ARGS__), __FILE__, __LINE__)

#define BORA_CHECK(cond, Type, ...)   \
  do {                                \
    if (!(cond)) {                    \
      BORA_THROW(Type, __VA_ARGS__);  \
    }                                 \
  } while (0)
