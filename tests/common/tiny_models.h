// Tiny OPT configurations for tests: both block styles (pre-LN like opt-125m,
// post-LN with project_in/out like opt-350m), small enough to run in milliseconds.
#pragma once

#include <string>

#include "model/opt.h"

namespace bora::testing_util {

inline OptConfig tiny_opt_config(bool like_350m = false) {
  OptConfig c;
  c.vocab_size = 97;
  c.hidden_size = 32;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.ffn_dim = 48;
  c.max_position_embeddings = 64;
  if (like_350m) {
    c.word_embed_proj_dim = 16;
    c.do_layer_norm_before = false;
  }
  return c;
}

inline std::shared_ptr<OptForCausalLM> tiny_opt(bool like_350m = false, uint64_t seed = 1,
                                                double std = 0.2) {
  auto m = std::make_shared<OptForCausalLM>(tiny_opt_config(like_350m), torch::kFloat32);
  m->init_random(seed, std);
  // Non-trivial layer norms, so that a swapped weight/bias would show.
  torch::NoGradGuard g;
  for (auto& p : m->named_parameters())
    if (p.key().find("layer_norm") != std::string::npos) p.value().add_(torch::randn_like(p.value()) * 0.1);
  return m;
}

}  // namespace bora::testing_util
