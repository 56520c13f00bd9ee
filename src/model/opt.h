// OPT (Zhang et al. 2022) in LibTorch, reproducing HF transformers'
// OPTForCausalLM for every OPT config: pre- and post-layer-norm blocks (opt-350m
// is post-LN, without a final layer norm), project_in/project_out when
// word_embed_proj_dim != hidden_size, learned positions with an offset of 2 whose
// ids come from the attention mask (so left padding does not shift them), q_proj
// output scaled by head_dim^-0.5, lm_head tied to embed_tokens (every released
// OPT) or, with tie_word_embeddings = false, its own "lm_head.weight" [vocab, proj].
//
// Module names double as checkpoint keys: named_parameters() gives exactly HF's
// "model.decoder.layers.{i}.self_attn.q_proj.weight", ...
#pragma once

#include <torch/nn/modules/container/modulelist.h>

#include "model/causal_lm.h"
#include "model/layers.h"
#include "model/opt_config.h"

namespace bora {

class OptAttentionImpl : public torch::nn::Module {
 public:
  OptAttentionImpl(const OptConfig& c, const torch::TensorOptions& o);
  // mask: additive [B, 1, S, S] or undefined for causal-only (right padding).
  torch::Tensor forward(const torch::Tensor& h, const torch::Tensor& mask, int layer,
                        const LinearAdapter* adapter);
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
  int64_t num_heads, head_dim;
};
TORCH_MODULE(OptAttention);

class OptDecoderLayerImpl : public torch::nn::Module {
 public:
  OptDecoderLayerImpl(const OptConfig& c, const torch::TensorOptions& o);
  torch::Tensor forward(torch::Tensor h, const torch::Tensor& mask, int layer,
                        const LinearAdapter* adapter);
  OptAttention self_attn{nullptr};
  LayerNorm self_attn_layer_norm{nullptr}, final_layer_norm{nullptr};
  Linear fc1{nullptr}, fc2{nullptr};
  bool pre_ln, gelu;
};
TORCH_MODULE(OptDecoderLayer);

class OptDecoderImpl : public torch::nn::Module {
 public:
  OptDecoderImpl(const OptConfig& c, const torch::TensorOptions& o);
  Embedding embed_tokens{nullptr}, embed_positions{nullptr};
  Linear project_in{nullptr}, project_out{nullptr};  // null unless proj_dim != hidden
  LayerNorm final_layer_norm{nullptr};               // null for post-LN models
  std::vector<OptDecoderLayer> layers;
};
TORCH_MODULE(OptDecoder);

// OPTModel: only a "decoder" child, kept so that keys carry HF's "model." prefix.
class OptModelImpl : public torch::nn::Module {
 public:
  OptModelImpl(const OptConfig& c, const torch::TensorOptions& o);
  OptDecoder decoder{nullptr};
};
TORCH_MODULE(OptModel);

class OptForCausalLM : public CausalLM {
 public:
  // Parameters are allocated uninitialised: call init_random() or load weights.
  OptForCausalLM(const OptConfig& config, const torch::TensorOptions& options);

  const ModelShape& shape() const override { return shape_; }
  const OptConfig& config() const { return config_; }
  torch::Tensor hidden(const torch::Tensor& ids, const torch::Tensor& attention_mask,
                       const LinearAdapter* adapter = nullptr, Padding padding = Padding::Unknown) override;
  const torch::Tensor& lm_head_weight() const override;
  torch::Tensor site_weight(int layer, Site site) const override;
  torch::Tensor site_bias(int layer, Site site) const override;
  std::string site_weight_key(int layer, Site site) const override;
  void save_pretrained(const std::string& dir, torch::ScalarType dtype,
                       const std::map<std::string, torch::Tensor>& replace = {}) const override;

  // HF's _init_weights: normal(0, 0.02) for linear and embedding weights, zero
  // biases, identity layer norms. Deterministic for a given seed.
  void init_random(uint64_t seed, double std = 0.02);
  // Replaces every parameter by the checkpoint's tensor (zero-copy when dtype and
  // device match), checking names and shapes against the config.
  void load_weights(const class HfCheckpoint& ckpt);

  OptModel model{nullptr};
  // Registered as "lm_head" only when tie_word_embeddings is false; null when tied.
  Linear untied_lm_head{nullptr};

 private:
  const Linear& site_linear(int layer, Site site) const;

  OptConfig config_;
  ModelShape shape_;
};

// The additive attention mask for a batch: 0 where query i may see key j (j <= i
// and key j is real), -inf elsewhere; the diagonal is always open so that padding
// rows stay finite (their outputs are never used). Undefined when the batch is
// right-padded or unpadded: causality alone is then exact for every real token.
// Padding::Right says so without looking (looking reads the mask on the host).
torch::Tensor opt_attention_mask(const torch::Tensor& attention_mask, torch::ScalarType dtype,
                                 Padding padding = Padding::Unknown);

}  // namespace bora
