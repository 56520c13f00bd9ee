// OPT's config.json (HF transformers' OPTConfig), read and validated in one place.
// Field names and defaults follow transformers' configuration_opt.py.
#pragma once

#include <cstdint>
#include <string>

#include "core/json.h"

namespace bora {

struct OptConfig {
  int64_t vocab_size = 50272;
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t ffn_dim = 3072;
  int64_t word_embed_proj_dim = -1;  // -1: equal to hidden_size
  int64_t max_position_embeddings = 2048;
  bool do_layer_norm_before = true;
  bool remove_final_layer_norm = false;  // "_remove_final_layer_norm"
  bool enable_bias = true;
  bool layer_norm_elementwise_affine = true;
  bool tie_word_embeddings = true;  // false: a separate lm_head.weight [vocab, proj]
  std::string activation_function = "relu";
  int64_t pad_token_id = 1;
  int64_t bos_token_id = 2;
  int64_t eos_token_id = 2;
  std::string torch_dtype = "float32";

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  int64_t proj_dim() const { return word_embed_proj_dim < 0 ? hidden_size : word_embed_proj_dim; }
  bool has_projections() const { return proj_dim() != hidden_size; }
  // Pre-LN models (all but opt-350m) end with a final layer norm.
  bool has_final_layer_norm() const { return do_layer_norm_before && !remove_final_layer_norm; }

  // Throws ConfigError naming `origin` and the field on any inconsistency.
  void validate(const std::string& origin) const;
  static OptConfig from_json(const Json& j, const std::string& origin);
  Json to_json() const;  // what HF's OPTConfig.from_pretrained accepts
};

}  // namespace bora
