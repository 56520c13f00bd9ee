#include "core/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace bora {

std::string human_count(double v) {
  const char* units[] = {"", " k", " M", " G", " T"};
  int u = 0;
  while (std::fabs(v) >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f%s" : "%.0f%s", v, units[u]);
  return buf;
}

std::string human_rate(double per_second, const std::string& unit) {
  if (!(per_second > 0) || per_second >= 1) return human_count(per_second) + unit + "/s";
  // Below one per second a count rate rounds to "0 steps/s": say seconds per item.
  std::string one = unit.substr(unit.find_first_not_of(' ') == std::string::npos ? unit.size()
                                                                                 : unit.find_first_not_of(' '));
  if (one.size() > 1 && one.back() == 's') one.pop_back();
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f s/%s", 1 / per_second, one.c_str());
  return buf;
}

std::string human_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  long t = std::lround(s);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

Progress::Progress(std::string label, int64_t total, std::string unit, bool enabled,
                   double log_every_s)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), enabled_(enabled),
      tty_(::isatty(STDERR_FILENO) == 1), log_every_s_(log_every_s),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

Progress::~Progress() {
  if (!finished_ && tty_ && enabled_) std::fputc('\n', stderr);
}

void Progress::set(int64_t done) {
  done_ = done;
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_draw_).count();
  if (since >= (tty_ ? 0.1 : log_every_s_)) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (enabled_) draw(true);
}

void Progress::draw(bool final) {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = elapsed > 0 ? done_ / elapsed : 0;
  double frac = total_ > 0 ? std::min(1.0, double(done_) / double(total_)) : 0;
  double eta = rate > 0 && total_ > 0 ? (total_ - done_) / rate : NAN;
  char line[512];
  if (tty_) {
    const int width = 28;
    int filled = static_cast<int>(frac * width);
    std::string bar(filled, '#');
    bar.resize(width, '.');
    std::snprintf(line, sizeof line, "\r%-12s [%s] %5.1f%% %s/%s %s %s %s\033[K", label_.c_str(),
                  bar.c_str(), 100 * frac, human_count(done_).c_str(), human_count(total_).c_str(),
                  human_rate(rate, unit_).c_str(),
                  final ? ("in " + human_duration(elapsed)).c_str()
                        : ("ETA " + human_duration(eta)).c_str(),
                  note_.c_str());
    std::fputs(line, stderr);
    if (final) std::fputc('\n', stderr);
  } else {
    std::snprintf(line, sizeof line, "%s: %5.1f%% %s/%s %s %s %s\n", label_.c_str(), 100 * frac,
                  human_count(done_).c_str(), human_count(total_).c_str(), human_rate(rate, unit_).c_str(),
                  final ? ("in " + human_duration(elapsed)).c_str()
                        : ("ETA " + human_duration(eta)).c_str(),
                  note_.c_str());
    std::fputs(line, stderr);
  }
  std::fflush(stderr);
}

}  // namespace bora
