// A progress bar for long work: on a terminal it redraws one line (rate, ETA) at
// most 10 times a second; when stderr is not a terminal (logs, Slurm) it prints a
// plain line every `log_every_s` seconds and one at the end, so logs stay short.
//
//   Progress bar("tokenize", total_bytes, "B");
//   for (...) bar.add(n);
//   bar.finish();
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace bora {

class Progress {
 public:
  Progress(std::string label, int64_t total, std::string unit, bool enabled = true,
           double log_every_s = 30.0);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void add(int64_t n) { set(done_ + n); }
  void set(int64_t done);
  // Extra text shown after the bar, e.g. "loss 2.31".
  void set_note(std::string note) { note_ = std::move(note); }
  void finish();

 private:
  void draw(bool final);

  std::string label_, unit_, note_;
  int64_t total_, done_ = 0;
  bool enabled_, tty_, finished_ = false;
  double log_every_s_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// "1.23 M", "456 k": human-readable counts for progress and logs.
std::string human_count(double v);
// A rate with its unit: "12 steps/s", "1.50 M B/s"; below one per second the time per
// item instead, "2.4 s/step" (unit " steps": its leading space and plural s dropped).
std::string human_rate(double per_second, const std::string& unit);
// "1h02m", "3m05s", "12s".
std::string human_duration(double seconds);

// Wall-clock stopwatch.
class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  void reset() { start_ = std::chrono::steady_clock::now(); }

 private:
  std::chrono::steady_clock::time_point start_;
};

}  // namespace bora
