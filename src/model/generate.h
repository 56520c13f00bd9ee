// Sampling text from a causal LM (optionally through an adapter): greedy, or
// temperature + top-k + top-p (nucleus) sampling with a seeded, portable RNG, so
// that a seed reproduces a sample on any machine.
//
// Each new token re-runs the forward over the whole sequence (no key/value cache):
// exact and simple, and fast enough for the small models and short continuations
// this is used for (looking at what a task's adapter learned).
#pragma once

#include <cstdint>
#include <vector>

#include "model/causal_lm.h"

namespace bora {

struct SamplingOptions {
  int64_t max_new_tokens = 64;
  bool greedy = false;
  double temperature = 1.0;  // > 0
  int64_t top_k = 0;         // 0 = no limit
  double top_p = 1.0;        // nucleus mass in (0, 1]
  uint64_t seed = 0;
  int64_t stop_id = -1;      // stop after emitting this id (eos); -1 = never
};

// Continues `prompt` (ids, the bos included) and returns only the new ids.
std::vector<int64_t> generate(CausalLM& model, const std::vector<int64_t>& prompt, const LinearAdapter* adapter,
                              const SamplingOptions& options);

// The next id from one row of logits [V] under `options` (exposed for tests).
int64_t sample_next(const torch::Tensor& logits, const SamplingOptions& options, uint64_t draw);

}  // namespace bora
