// The run's tasks and where each one lives. Five index spaces meet in the trainer,
// all of them int64_t; every conversion between them is a named call here, never a
// bare subscript:
//
//   task      a run task, 0 .. num_tasks-1: the manifest's order, restricted to the
//             `tasks` option; every rank agrees on it (names, weights, results)
//   slot      one of this rank's tasks, 0 .. num_local-1, in task order: the
//             balanced sampler, per-task sums of a step and the rank's part of a
//             checkpoint are indexed by it
//   bank row  the adapter row a slot trains: the slot itself, or row 0 for every
//             slot when all tasks share one adapter (tau = inf)
//   manifest  the dataset's task index, what DatasetReader and RowRef::task take
//   sequence  a document inside a task's split (SeqRef::index, RowRef::index)
//
// (Micro-batch rows are positions inside one MicroBatch, train/batch.h.) The plan is
// a pure function of the manifest, the options and the world size: every rank
// computes the same one without communicating.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bora/bora_config.h"
#include "data/manifest.h"
#include "dist/communicator.h"

namespace bora {

class TaskPlan {
 public:
  // The tasks of the dataset `data_dir` (its manifest) that `wanted` names (all
  // when empty), in manifest order, partitioned over `world` ranks by training
  // target tokens (dist/partition.h). ConfigError for a task named twice;
  // DataError for one not in the dataset or without training sequences.
  TaskPlan(const Manifest& manifest, const std::string& data_dir, const std::vector<std::string>& wanted, LikelihoodWeight weight, int world,
           int rank, bool one_shared_row);

  int64_t num_tasks() const { return static_cast<int64_t>(names_.size()); }
  int64_t num_local() const { return static_cast<int64_t>(local_.size()); }
  int world() const { return world_; }
  int rank() const { return rank_; }

  // By task.
  const std::vector<std::string>& names() const { return names_; }
  const std::string& name(int64_t task) const { return names_.at(static_cast<size_t>(task)); }
  const std::vector<int64_t>& train_documents() const { return train_docs_; }
  int64_t train_documents(int64_t task) const { return train_docs_.at(static_cast<size_t>(task)); }
  int64_t train_targets(int64_t task) const { return train_targets_.at(static_cast<size_t>(task)); }
  double weight(int64_t task) const { return weight_.at(static_cast<size_t>(task)); }  // w_d
  int owner(int64_t task) const { return owner_.at(static_cast<size_t>(task)); }
  int64_t manifest_task(int64_t task) const { return manifest_.at(static_cast<size_t>(task)); }
  // The slot of a task of this rank; -1 for another rank's.
  int64_t slot_of_task(int64_t task) const { return slot_of_.at(static_cast<size_t>(task)); }

  // By slot.
  int64_t task_of_slot(int64_t slot) const { return local_.at(static_cast<size_t>(slot)); }
  int64_t bank_row(int64_t slot) const { return shared_row_ ? 0 : slot; }
  int64_t num_bank_rows() const { return shared_row_ ? 1 : num_local(); }
  const std::vector<int64_t>& local_tasks() const { return local_; }  // slot -> task
  std::vector<std::string> local_names() const;
  std::vector<int64_t> local_manifest_tasks() const;  // slot -> manifest task
  std::vector<int64_t> local_bank_rows() const;       // slot -> bank row
  std::vector<int64_t> local_train_documents() const;  // slot -> training sequences

  int64_t total_train_documents() const;
  // Steps of an epoch of the global minibatch (the last one may be short).
  int64_t steps_per_epoch(int64_t batch_size) const;
  // "rank  tasks  tokens  share" per rank, printed by rank 0 at start.
  std::string partition_table() const;

  // Collective: every rank's values by slot -> every task's value, on every rank.
  std::vector<double> gather_by_task(Communicator& comm, const std::vector<double>& by_slot) const;

 private:
  int world_, rank_;
  bool shared_row_;
  std::vector<std::string> names_;
  std::vector<int64_t> manifest_, train_docs_, train_targets_;
  std::vector<double> weight_;
  std::vector<int> owner_;
  std::vector<int64_t> local_;    // slot -> task
  std::vector<int64_t> slot_of_;  // task -> slot, or -1
};

}  // namespace bora
