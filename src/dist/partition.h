// Tasks -> ranks. Tasks, not data, are partitioned: a rank holds the adapters of
// its tasks and reads only their shards. Balance is by training target tokens (the
// work of an epoch), with the longest-processing-time greedy rule: tasks in
// decreasing size (ties by task order) each go to the rank with the least load so
// far (ties to the rank with fewer tasks, then to the lowest rank). Deterministic
// (a pure function of the work vector and the world size: every rank computes the
// same table without communicating), within 4/3 of the optimal largest load, and
// with n >= world every rank gets at least one task.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bora {

// owner[t] = rank of task t. DistError when there are more ranks than tasks.
std::vector<int> partition_tasks(const std::vector<int64_t>& work, int world);

// The table printed at start: "rank  tasks  tokens  share" per rank.
std::string partition_table(const std::vector<int>& owner, const std::vector<int64_t>& work,
                            const std::vector<std::string>& names, int world);

}  // namespace bora
