// The causal-LM interface that the rest of bora sees, and the hook through which
// adapters change the base model's linear layers.
//
// A model is frozen by default: its parameters never require grad (pretraining
// calls set_trainable(true)). Adapters do not live inside the model: for each
// forward the caller passes a LinearAdapter, bound to the batch (which row belongs
// to which task), and the model asks it to add its update to every adaptable
// linear layer's output. This keeps one copy of the base for any number of tasks
// and lets new architectures (GPT-2, LLaMA) plug in by implementing this interface
// (plus what still assumes OPT: the six adaptable sites and their module paths,
// PEFT's module names, the GPT-2 tokenizer; docs/contributing.md lists them).
//
// Sequence conventions (every caller): ids [B, S] int64, attention_mask [B, S]
// (1 = real token, 0 = padding; left or right padding), target_mask [B, S] bool:
// target_mask[b, t] says token t is a loss target, predicted from position t - 1.
#pragma once

#include <torch/nn/module.h>
#include <torch/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/options.h"

namespace bora {

// The linear layers of a decoder block that adapters may target, named as in HF.
enum class Site : int { Q = 0, K = 1, V = 2, Out = 3, Fc1 = 4, Fc2 = 5 };
constexpr int kNumSites = 6;
const char* site_name(Site s);  // "q_proj", ..., "fc2"
std::optional<Site> site_from_name(const std::string& name);
// "self_attn.q_proj" or "fc1": the module path of a site inside a decoder layer.
std::string site_module_path(Site s);

// Adds adapter updates to linear-layer outputs. `x` is the layer's input [B, S, in],
// `y` the base output W x + b [B, S, out]; apply returns y + delta. Called once per
// adapted linear layer per forward; apply_qkv lets adapters that share work across
// q/k/v (a fused-QKV adapter computes A x once) do so.
class LinearAdapter {
 public:
  virtual ~LinearAdapter() = default;
  virtual bool adapts(int layer, Site site) const = 0;
  virtual torch::Tensor apply(int layer, Site site, const torch::Tensor& x, torch::Tensor y) const = 0;
  virtual void apply_qkv(int layer, const torch::Tensor& x, torch::Tensor* q, torch::Tensor* k,
                         torch::Tensor* v) const;
};

// What the caller knows about a batch's padding. Right: every row's real tokens come
// first (or there is no padding), so causality alone hides the padding and the
// attention needs no mask. Unknown: the model finds out from attention_mask, which
// reads a device tensor (a host synchronisation on CUDA): callers that build their
// batches (BatchBuilder) know the layout and say Right.
enum class Padding { Unknown, Right };

// The loss targets of a [B, S] batch as flat positions b * S + t (t >= 1: position
// t - 1 predicts token t), ascending. Computed on the host by whoever lays the batch
// out, so that the forward never asks the device where the targets are.
struct TargetPositions {
  torch::Tensor flat;                // int64 [N], on the model's device
  Padding padding = Padding::Unknown;
  // From a bool/0-1 target_mask [B, S] (any device). A nonzero() of the mask: a host
  // synchronisation on CUDA, for tests and tools, not for the training step.
  static TargetPositions from_mask(const torch::Tensor& target_mask);
};

// Shapes of the base model that adapters and exporters need.
struct ModelShape {
  std::string model_type;  // "opt"
  int64_t num_layers = 0;
  int64_t hidden_size = 0;
  int64_t vocab_size = 0;
  int64_t pad_token_id = 1;          // config.json's: the id batches are padded with
  int64_t site_in[kNumSites] = {};   // in_features of each site's linear layer
  int64_t site_out[kNumSites] = {};  // out_features
};

class CausalLM : public torch::nn::Module {
 public:
  virtual const ModelShape& shape() const = 0;
  // Final hidden states [B, S, H] (before the LM head).
  virtual torch::Tensor hidden(const torch::Tensor& ids, const torch::Tensor& attention_mask,
                               const LinearAdapter* adapter = nullptr, Padding padding = Padding::Unknown) = 0;
  // The LM head's weight [V, H] (the tied embedding, or a separate lm_head).
  virtual const torch::Tensor& lm_head_weight() const = 0;
  // Logits for hidden states of any leading shape: [..., H] -> [..., V].
  torch::Tensor lm_head(const torch::Tensor& hidden) const { return torch::matmul(hidden, lm_head_weight().t()); }
  // The frozen weight [out, in] and bias [out] (may be undefined) of a site's linear layer.
  virtual torch::Tensor site_weight(int layer, Site site) const = 0;
  virtual torch::Tensor site_bias(int layer, Site site) const = 0;
  // Writes an HF checkpoint folder: config.json + model.safetensors in `dtype`.
  // `replace` substitutes tensors by key (a merged adapter's W + s B A).
  virtual void save_pretrained(const std::string& dir, torch::ScalarType dtype,
                               const std::map<std::string, torch::Tensor>& replace = {}) const = 0;
  // The checkpoint key of a site's weight, e.g. "model.decoder.layers.3.self_attn.q_proj.weight".
  virtual std::string site_weight_key(int layer, Site site) const = 0;

  torch::Tensor logits(const torch::Tensor& ids, const torch::Tensor& attention_mask,
                       const LinearAdapter* adapter = nullptr) {
    return lm_head(hidden(ids, attention_mask, adapter));
  }
  // requires_grad of every base parameter (false = frozen, the default).
  void set_trainable(bool trainable);
  torch::Device device() const;
  torch::ScalarType dtype() const;
};

// Per-token negative log-likelihood [B, S] (float32), zero off the targets. A fused
// cross-entropy: the target positions' hidden states are selected first and only
// they go through the LM head (padding and prompt tokens cost nothing and never
// count), then log-softmax and the target's pick in float32 whatever the base's
// dtype, through head_nll below. Reads no device tensor on the host.
torch::Tensor target_nll(CausalLM& model, const torch::Tensor& ids, const torch::Tensor& attention_mask,
                         const TargetPositions& targets, const LinearAdapter* adapter = nullptr);
// The same with the targets as a mask [B, S] (true = loss target): see from_mask.
torch::Tensor target_nll(CausalLM& model, const torch::Tensor& ids,
                         const torch::Tensor& attention_mask, const torch::Tensor& target_mask,
                         const LinearAdapter* adapter = nullptr);

// -log softmax(rows W^T)[want] per row [N] (float32), for rows [N, H], the LM head's
// weight W [V, H] and targets want [N], computed `chunk_rows` rows at a time
// (0 = as many as keep a chunk's float32 logits within 128 MiB).
//
// Why chunks: the [N, V] logits of a training batch are large (64 x 128 targets of a
// 50,257-word vocabulary: 1.6 GB in float32) and one log-softmax over them runs out
// of cache, a large share of bora's CPU step (bench/README.md, bench_peer).
// With a frozen W (every BoRA run) the gradient of row i's NLL is known in the
// forward pass: (softmax_i - onehot(want_i)) W, an [N, H] matrix. So each chunk's
// logits are made, used for the NLL and that gradient, and dropped; the backward
// only scales row i by its incoming gradient. The logits never exist whole and no
// log-softmax backward runs. A W that requires grad (pretraining) takes plain
// autograd over the whole [N, V] instead.
torch::Tensor head_nll(const torch::Tensor& rows, const torch::Tensor& weight, const torch::Tensor& want,
                       int64_t chunk_rows = 0);

// The dtypes a base computes in (option dtype) or is saved as.
inline const Names<torch::Dtype> kModelDtypeNames = {
    {"float32", torch::kFloat32}, {"bfloat16", torch::kBFloat16}, {"float16", torch::kFloat16}};

struct LoadOptions {
  torch::Dtype dtype = torch::kFloat32;  // compute dtype of the base
  torch::Device device = torch::kCPU;
};

// Loads an HF checkpoint folder (config.json + model.safetensors or a sharded
// model.safetensors.index.json), dispatching on config.json's model_type.
std::shared_ptr<CausalLM> load_causal_lm(const std::string& dir, const LoadOptions& options = {});

}  // namespace bora
