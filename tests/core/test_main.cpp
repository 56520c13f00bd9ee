// guarded_main: one line, the error's exit code, on_error called once.
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/main.h"

namespace bora {
namespace {

TEST(Main, ErrorBecomesOneLineAndExitCode) {
  int aborted = -1;
  testing::internal::CaptureStderr();
  int code = guarded_main(
      "tool", [] () -> int { BORA_THROW(ConfigError, "bad\nthing"); },
      [&](int c) { aborted = c; });
  std::string out = testing::internal::GetCapturedStderr();
  EXPECT_EQ(code, 2);
  EXPECT_EQ(aborted, 2);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_EQ(out.rfind("tool: host " + host_name() + ": error: bad thing [tests/core/test_main.cpp:", 0), 0u) << out;
}

TEST(Main, StdExceptionFirstLineOnly) {
  testing::internal::CaptureStderr();
  int code = guarded_main("tool", []() -> int { throw std::runtime_error("first\nsecond"); });
  std::string out = testing::internal::GetCapturedStderr();
  EXPECT_EQ(code, 1);
  EXPECT_EQ(out, "tool: host " + host_name() + ": error: first\n");
  EXPECT_EQ(guarded_main("tool", [] { return 0; }), 0);
}

TEST(Main, RankAndHostPrefix) {
  EXPECT_EQ(format_error_line("t", 3, 4, "n07", "x"), "t: rank 3 on host n07: error: x");
  EXPECT_EQ(format_error_line("t", 0, 1, "n07", "x"), "t: host n07: error: x");
  EXPECT_FALSE(host_name().empty());
}

}  // namespace
}  // namespace bora
