#include "core/parallel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace bora {

void parallel_for(int64_t n, int threads, const std::function<void(int64_t)>& fn, int64_t grain,
                  const std::function<void()>& poll) {
  grain = std::max<int64_t>(1, grain);
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::atomic<int> running{0};
  std::mutex mu;
  int64_t error_at = n;
  std::exception_ptr error;
  auto worker = [&] {
    while (!failed.load(std::memory_order_relaxed)) {
      const int64_t begin = next.fetch_add(grain);
      if (begin >= n) break;
      for (int64_t i = begin; i < std::min(n, begin + grain); ++i) {
        try {
          fn(i);
        } catch (...) {
          std::lock_guard<std::mutex> lock(mu);
          if (i < error_at) error_at = i, error = std::current_exception();
          failed = true;
          break;
        }
      }
    }
    --running;
  };
  const int workers = static_cast<int>(std::clamp<int64_t>((n + grain - 1) / grain, 1, std::max(1, threads)));
  std::vector<std::thread> pool;
  running = poll ? workers : workers - 1;
  for (int t = poll ? 0 : 1; t < workers; ++t) pool.emplace_back(worker);
  if (poll) {
    while (running.load() > 0) {
      poll();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  } else {
    ++running;
    worker();
  }
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace bora
