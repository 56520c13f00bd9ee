#include "train/task_plan.h"

#include <cmath>
#include <cstring>
#include <set>

#include "core/error.h"
#include "dist/partition.h"

namespace bora {

TaskPlan::TaskPlan(const Manifest& manifest, const std::string& data_dir, const std::vector<std::string>& wanted, LikelihoodWeight weight,
                   int world, int rank, bool one_shared_row)
    : world_(world), rank_(rank), shared_row_(one_shared_row) {
  const std::set<std::string> selected(wanted.begin(), wanted.end());
  BORA_CHECK(selected.size() == wanted.size(), ConfigError, "tasks lists a task twice");
  for (const auto& name : wanted)
    BORA_CHECK(manifest.find_task(name) >= 0, DataError, "task '", name, "' named in tasks is not in the dataset ",
               data_dir);
  for (size_t i = 0; i < manifest.tasks.size(); ++i) {
    const TaskInfo& t = manifest.tasks[i];
    if (!selected.empty() && !selected.count(t.name)) continue;
    BORA_CHECK(t.split(Split::Train).sequences > 0, DataError, "task '", t.name, "' has no training sequences");
    names_.push_back(t.name);
    manifest_.push_back(static_cast<int64_t>(i));
    train_docs_.push_back(t.split(Split::Train).sequences);
    train_targets_.push_back(t.split(Split::Train).target_tokens);
  }
  BORA_CHECK(!names_.empty(), DataError, "the dataset ", data_dir, " has no tasks");
  for (size_t t = 0; t < names_.size(); ++t)
    weight_.push_back(weight == LikelihoodWeight::Documents ? double(train_docs_[t])
                      : weight == LikelihoodWeight::Tokens  ? double(train_targets_[t])
                                                            : 1.0);
  owner_ = partition_tasks(train_targets_, world);
  slot_of_.assign(names_.size(), -1);
  for (size_t t = 0; t < names_.size(); ++t)
    if (owner_[t] == rank) {
      slot_of_[t] = static_cast<int64_t>(local_.size());
      local_.push_back(static_cast<int64_t>(t));
    }
}

std::vector<std::string> TaskPlan::local_names() const {
  std::vector<std::string> out;
  for (int64_t t : local_) out.push_back(name(t));
  return out;
}

std::vector<int64_t> TaskPlan::local_manifest_tasks() const {
  std::vector<int64_t> out;
  for (int64_t t : local_) out.push_back(manifest_task(t));
  return out;
}

std::vector<int64_t> TaskPlan::local_bank_rows() const {
  std::vector<int64_t> out;
  for (int64_t s = 0; s < num_local(); ++s) out.push_back(bank_row(s));
  return out;
}

std::vector<int64_t> TaskPlan::local_train_documents() const {
  std::vector<int64_t> out;
  for (int64_t t : local_) out.push_back(train_documents(t));
  return out;
}

int64_t TaskPlan::total_train_documents() const {
  int64_t total = 0;
  for (int64_t n : train_docs_) total += n;
  return total;
}

int64_t TaskPlan::steps_per_epoch(int64_t batch_size) const {
  return (total_train_documents() + batch_size - 1) / batch_size;
}

std::string TaskPlan::partition_table() const {
  return bora::partition_table(owner_, train_targets_, names_, world_);
}

std::vector<double> TaskPlan::gather_by_task(Communicator& comm, const std::vector<double>& by_slot) const {
  // (task, value) pairs of 16 bytes each, from every rank.
  std::string mine(local_.size() * 16, '\0');
  for (size_t i = 0; i < local_.size(); ++i) {
    std::memcpy(mine.data() + 16 * i, &local_[i], 8);
    std::memcpy(mine.data() + 16 * i + 8, &by_slot.at(i), 8);
  }
  std::vector<double> all(names_.size(), NAN);
  for (const auto& part : comm.all_gather_bytes(mine))
    for (size_t off = 0; off + 16 <= part.size(); off += 16) {
      int64_t t;
      double v;
      std::memcpy(&t, part.data() + off, 8);
      std::memcpy(&v, part.data() + off + 8, 8);
      BORA_CHECK(t >= 0 && t < num_tasks(), DistError, "gathered value names task ", t);
      all[static_cast<size_t>(t)] = v;
    }
  return all;
}

}  // namespace bora
