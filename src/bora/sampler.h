// The global minibatch sampler: which training sequences make up step s.
//
// Every rank computes the same global batch whatever the number of ranks and the
// placement of tasks: the sequences of all tasks form one list (task by task in
// the run's task order), each epoch visits them in a permutation seeded by
// (seed, epoch), and step s takes the next batch_size entries (the last batch of an
// epoch may be smaller, as a DataLoader without drop_last). Tasks are therefore
// mixed in every batch in proportion to their sizes, as in the reference. A rank
// keeps the entries of its own tasks.
//
// The sampler is a pure function of (sizes, batch_size, seed, step): resuming needs
// only the step number, and no random state is saved.
#pragma once

#include <cstdint>
#include <vector>

#include "core/options.h"

namespace bora {

// Which sequences a rank trains on at each step (option sampler): `global`, its
// tasks' entries of the one global minibatch (results independent of the number of
// ranks); `balanced`, batch_size / ranks drawn from its own tasks alone (results
// depend on the partition).
enum class SamplerKind { Global, Balanced };
inline const Names<SamplerKind> kSamplerNames = {{"global", SamplerKind::Global}, {"balanced", SamplerKind::Balanced}};

struct SeqRef {
  int32_t task = 0;   // index in the run's task list
  int64_t index = 0;  // sequence index inside the task's training split
};

// Deterministic and portable random numbers (std::uniform_int_distribution differs
// between standard libraries): splitmix64 seeding + Lemire's bounded integers.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next();
  uint64_t below(uint64_t n);  // uniform in [0, n)
  double uniform();            // [0, 1)

 private:
  uint64_t state_;
};

class GlobalSampler {
 public:
  GlobalSampler(std::vector<int64_t> task_sizes, int64_t batch_size, uint64_t seed);

  int64_t num_sequences() const { return total_; }
  int64_t steps_per_epoch() const { return (total_ + batch_size_ - 1) / batch_size_; }
  int64_t batch_size() const { return batch_size_; }
  // The global batch of `step` (0-based).
  std::vector<SeqRef> batch(int64_t step);

 private:
  void ensure_epoch(int64_t epoch);

  std::vector<int64_t> sizes_, starts_;
  int64_t total_ = 0, batch_size_;
  uint64_t seed_;
  int64_t epoch_ = -1;
  std::vector<int64_t> perm_;  // of the global sequence ids of the current epoch
};

}  // namespace bora
