#include "dist/partition.h"

#include <algorithm>
#include <numeric>
#include <sstream>

#include "core/error.h"

namespace bora {

std::vector<int> partition_tasks(const std::vector<int64_t>& work, int world) {
  const int64_t n = static_cast<int64_t>(work.size());
  BORA_CHECK(world >= 1, DistError, "world size must be >= 1");
  for (size_t t = 0; t < work.size(); ++t)
    BORA_CHECK(work[t] >= 0, DistError, "task ", t, " has negative work ", work[t]);
  BORA_CHECK(n >= world, DistError, "more ranks (", world, ") than tasks (", n,
             "): a rank needs at least one task; run with at most ", n, " ranks");
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return work[a] > work[b]; });
  std::vector<int64_t> load(static_cast<size_t>(world), 0), count(static_cast<size_t>(world), 0);
  std::vector<int> owner(static_cast<size_t>(n), -1);
  for (int64_t t : order) {
    // Least load; ties to the rank with fewer tasks (so that tasks without work
    // still reach every rank), then to the lowest rank.
    int best = 0;
    for (int r = 1; r < world; ++r) {
      const auto a = static_cast<size_t>(r), b = static_cast<size_t>(best);
      if (load[a] < load[b] || (load[a] == load[b] && count[a] < count[b])) best = r;
    }
    owner[static_cast<size_t>(t)] = best;
    load[static_cast<size_t>(best)] += work[static_cast<size_t>(t)];
    count[static_cast<size_t>(best)] += 1;
  }
  return owner;
}

std::string partition_table(const std::vector<int>& owner, const std::vector<int64_t>& work,
                            const std::vector<std::string>& names, int world) {
  std::vector<int64_t> tokens(static_cast<size_t>(world), 0);
  std::vector<std::vector<std::string>> tasks(static_cast<size_t>(world));
  int64_t total = 0;
  for (size_t t = 0; t < owner.size(); ++t) {
    tokens[static_cast<size_t>(owner[t])] += work[t];
    tasks[static_cast<size_t>(owner[t])].push_back(names[t]);
    total += work[t];
  }
  std::ostringstream os;
  os << "task partition (" << owner.size() << " tasks over " << world << " ranks, by training tokens):\n";
  os << "  rank  tasks    tokens  share  names\n";
  for (int r = 0; r < world; ++r) {
    char line[96];
    std::snprintf(line, sizeof line, "  %4d  %5zu  %8lld  %4.1f%%  ", r, tasks[size_t(r)].size(),
                  static_cast<long long>(tokens[size_t(r)]), total ? 100.0 * tokens[size_t(r)] / total : 0.0);
    os << line;
    for (size_t i = 0; i < tasks[size_t(r)].size(); ++i) {
      if (i == 6) {
        os << " ... (" << tasks[size_t(r)].size() - 6 << " more)";
        break;
      }
      os << (i ? ", " : "") << tasks[size_t(r)][i];
    }
    os << "\n";
  }
  return os.str();
}

}  // namespace bora
