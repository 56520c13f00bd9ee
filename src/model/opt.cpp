#include "model/opt.h"

#include <cmath>
#include <limits>
#include <set>

#include <ATen/CPUGeneratorImpl.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/log.h"
#include "model/hf_checkpoint.h"
#include "model/safetensors.h"

namespace bora {

// ---- attention -------------------------------------------------------------------

OptAttentionImpl::OptAttentionImpl(const OptConfig& c, const torch::TensorOptions& o)
    : num_heads(c.num_attention_heads), head_dim(c.head_dim()) {
  const int64_t d = c.hidden_size;
  q_proj = register_module("q_proj", Linear(d, d, c.enable_bias, o));
  k_proj = register_module("k_proj", Linear(d, d, c.enable_bias, o));
  v_proj = register_module("v_proj", Linear(d, d, c.enable_bias, o));
  out_proj = register_module("out_proj", Linear(d, d, c.enable_bias, o));
}

torch::Tensor OptAttentionImpl::forward(const torch::Tensor& h, const torch::Tensor& mask, int layer,
                                        const LinearAdapter* adapter) {
  const int64_t B = h.size(0), S = h.size(1);
  torch::Tensor q = q_proj->forward(h), k = k_proj->forward(h), v = v_proj->forward(h);
  // The adapter changes q_proj's OUTPUT before the head_dim^-0.5 scaling, exactly
  // where PEFT's wrapped q_proj would.
  if (adapter) adapter->apply_qkv(layer, h, &q, &k, &v);
  auto heads = [&](const torch::Tensor& t) { return t.view({B, S, num_heads, head_dim}).transpose(1, 2); };
  q = heads(q);
  k = heads(k);
  v = heads(v);
  torch::Tensor out;
  // SDPA's default scale is head_dim^-0.5, HF's scaling of q. Without an explicit
  // mask (right padding) it can use the flash / memory-efficient kernels.
  out = at::scaled_dot_product_attention(q, k, v, mask.defined() ? std::optional<at::Tensor>(mask)
                                                                  : std::nullopt,
                                         /*dropout_p=*/0.0, /*is_causal=*/!mask.defined());
  out = out.transpose(1, 2).reshape({B, S, num_heads * head_dim});
  torch::Tensor y = out_proj->forward(out);
  if (adapter && adapter->adapts(layer, Site::Out)) y = adapter->apply(layer, Site::Out, out, y);
  return y;
}

// ---- decoder layer ---------------------------------------------------------------

OptDecoderLayerImpl::OptDecoderLayerImpl(const OptConfig& c, const torch::TensorOptions& o)
    : pre_ln(c.do_layer_norm_before), gelu(c.activation_function == "gelu") {
  const int64_t d = c.hidden_size;
  const bool affine = c.layer_norm_elementwise_affine;
  self_attn = register_module("self_attn", OptAttention(c, o));
  self_attn_layer_norm = register_module("self_attn_layer_norm", LayerNorm(d, affine, o));
  fc1 = register_module("fc1", Linear(d, c.ffn_dim, c.enable_bias, o));
  fc2 = register_module("fc2", Linear(c.ffn_dim, d, c.enable_bias, o));
  final_layer_norm = register_module("final_layer_norm", LayerNorm(d, affine, o));
}

torch::Tensor OptDecoderLayerImpl::forward(torch::Tensor h, const torch::Tensor& mask, int layer,
                                           const LinearAdapter* adapter) {
  // Pre-LN (most OPTs): x + f(LN(x)). Post-LN (opt-350m): LN(x + f(x)).
  torch::Tensor residual = h;
  if (pre_ln) h = self_attn_layer_norm->forward(h);
  h = residual + self_attn->forward(h, mask, layer, adapter);
  if (!pre_ln) h = self_attn_layer_norm->forward(h);

  residual = h;
  if (pre_ln) h = final_layer_norm->forward(h);
  torch::Tensor x1 = h;
  h = fc1->forward(x1);
  if (adapter && adapter->adapts(layer, Site::Fc1)) h = adapter->apply(layer, Site::Fc1, x1, h);
  torch::Tensor x2 = gelu ? torch::gelu(h) : torch::relu(h);
  h = fc2->forward(x2);
  if (adapter && adapter->adapts(layer, Site::Fc2)) h = adapter->apply(layer, Site::Fc2, x2, h);
  h = residual + h;
  if (!pre_ln) h = final_layer_norm->forward(h);
  return h;
}

// ---- decoder and model -------------------------------------------------------------

OptDecoderImpl::OptDecoderImpl(const OptConfig& c, const torch::TensorOptions& o) {
  embed_tokens = register_module("embed_tokens", Embedding(c.vocab_size, c.proj_dim(), o));
  // Learned positions: HF's OPTLearnedPositionalEmbedding keeps 2 extra rows.
  embed_positions =
      register_module("embed_positions", Embedding(c.max_position_embeddings + 2, c.hidden_size, o));
  if (c.has_projections()) {
    project_out = register_module("project_out", Linear(c.hidden_size, c.proj_dim(), false, o));
    project_in = register_module("project_in", Linear(c.proj_dim(), c.hidden_size, false, o));
  }
  if (c.has_final_layer_norm())
    final_layer_norm = register_module(
        "final_layer_norm", LayerNorm(c.hidden_size, c.layer_norm_elementwise_affine, o));
  // Registered one by one ("layers.0", "layers.1", ...) as nn.ModuleList names them.
  auto list = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    layers.push_back(OptDecoderLayer(c, o));
    list->push_back(layers.back());
  }
}

OptModelImpl::OptModelImpl(const OptConfig& c, const torch::TensorOptions& o) {
  decoder = register_module("decoder", OptDecoder(c, o));
}

OptForCausalLM::OptForCausalLM(const OptConfig& config, const torch::TensorOptions& options)
    : config_(config) {
  config_.validate("OPT config");
  model = register_module("model", OptModel(config_, options.requires_grad(false)));
  if (!config_.tie_word_embeddings)
    untied_lm_head = register_module(
        "lm_head", Linear(config_.proj_dim(), config_.vocab_size, false, options.requires_grad(false)));
  shape_.model_type = "opt";
  shape_.num_layers = config_.num_hidden_layers;
  shape_.hidden_size = config_.hidden_size;
  shape_.vocab_size = config_.vocab_size;
  shape_.pad_token_id = config_.pad_token_id;
  const int64_t d = config_.hidden_size, f = config_.ffn_dim;
  const int64_t in[] = {d, d, d, d, d, f}, out[] = {d, d, d, d, f, d};
  for (int s = 0; s < kNumSites; ++s) {
    shape_.site_in[s] = in[s];
    shape_.site_out[s] = out[s];
  }
}

torch::Tensor opt_attention_mask(const torch::Tensor& attention_mask, torch::ScalarType dtype, Padding padding) {
  if (padding == Padding::Right) return {};
  torch::Tensor m = attention_mask.to(torch::kBool);
  const int64_t S = m.size(1);
  // Right-padded (or unpadded) batches: the mask is non-increasing along each row.
  bool right_padded = S < 2 || (m.slice(1, 1) <= m.slice(1, 0, S - 1)).all().item<bool>();
  if (right_padded) return {};
  auto bool_opts = torch::TensorOptions().dtype(torch::kBool).device(m.device());
  torch::Tensor causal = torch::ones({S, S}, bool_opts).tril();
  torch::Tensor allowed = causal.unsqueeze(0) & m.unsqueeze(1);  // [B, S(q), S(k)]
  allowed = allowed | torch::eye(S, bool_opts).unsqueeze(0);
  auto opts = torch::TensorOptions().dtype(dtype).device(m.device());
  return torch::zeros(allowed.sizes(), opts)
      .masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity())
      .unsqueeze(1);
}

torch::Tensor OptForCausalLM::hidden(const torch::Tensor& ids, const torch::Tensor& attention_mask,
                                     const LinearAdapter* adapter, Padding padding) {
  BORA_CHECK(ids.dim() == 2 && attention_mask.sizes() == ids.sizes(), InternalError,
             "hidden(): ids ", ids.sizes(), " and attention_mask ", attention_mask.sizes(),
             " must both be [batch, seq]");
  BORA_CHECK(ids.size(1) <= config_.max_position_embeddings, DataError, "sequence length ",
             ids.size(1), " exceeds max_position_embeddings ", config_.max_position_embeddings);
  auto& dec = model->decoder;
  torch::Tensor mask = attention_mask.to(torch::kLong);
  torch::Tensor x = dec->embed_tokens->forward(ids);
  if (!dec->project_in.is_empty()) x = dec->project_in->forward(x);
  // Position ids from the mask: real tokens count 0, 1, 2, ... whatever the padding.
  torch::Tensor positions = (mask.cumsum(1) * mask - 1) + 2;
  x = x + dec->embed_positions->forward(positions);
  torch::Tensor attn_mask = opt_attention_mask(attention_mask, x.scalar_type(), padding);
  for (size_t i = 0; i < dec->layers.size(); ++i)
    x = dec->layers[i]->forward(x, attn_mask, static_cast<int>(i), adapter);
  if (!dec->final_layer_norm.is_empty()) x = dec->final_layer_norm->forward(x);
  if (!dec->project_out.is_empty()) x = dec->project_out->forward(x);
  return x;
}

const torch::Tensor& OptForCausalLM::lm_head_weight() const {
  return untied_lm_head.is_empty() ? model->decoder->embed_tokens->weight : untied_lm_head->weight;
}

const Linear& OptForCausalLM::site_linear(int layer, Site site) const {
  BORA_CHECK(layer >= 0 && layer < config_.num_hidden_layers, InternalError, "layer ", layer,
             " out of range");
  const auto& l = model->decoder->layers[layer];
  switch (site) {
    case Site::Q: return l->self_attn->q_proj;
    case Site::K: return l->self_attn->k_proj;
    case Site::V: return l->self_attn->v_proj;
    case Site::Out: return l->self_attn->out_proj;
    case Site::Fc1: return l->fc1;
    case Site::Fc2: return l->fc2;
  }
  BORA_THROW(InternalError, "bad site");
}

torch::Tensor OptForCausalLM::site_weight(int layer, Site site) const { return site_linear(layer, site)->weight; }
torch::Tensor OptForCausalLM::site_bias(int layer, Site site) const { return site_linear(layer, site)->bias; }

std::string OptForCausalLM::site_weight_key(int layer, Site site) const {
  return "model.decoder.layers." + std::to_string(layer) + "." + site_module_path(site) + ".weight";
}

void OptForCausalLM::init_random(uint64_t seed, double std) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  // Initialise on CPU in float32 whatever the model's dtype/device, so that the
  // same seed gives the same weights everywhere.
  for (auto& p : named_parameters()) {
    torch::Tensor t = torch::empty(p.value().sizes(), torch::kFloat32);
    const std::string& name = p.key();
    bool is_norm = name.find("layer_norm") != std::string::npos;
    bool is_bias = name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    if (is_norm && !is_bias) t.fill_(1.0);
    else if (is_bias) t.zero_();
    else t.normal_(0.0, std, gen);
    p.value().copy_(t);
  }
}

void OptForCausalLM::load_weights(const HfCheckpoint& ckpt) {
  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  const std::string kEmbed = "model.decoder.embed_tokens.weight", kHead = "lm_head.weight";
  // Older checkpoints store "decoder.*" without the "model." prefix.
  auto key_for = [&](const std::string& name) {
    if (ckpt.contains(name) || name == kHead) return name;
    std::string bare = name.substr(std::string("model.").size());
    if (ckpt.contains(bare)) return bare;
    // Tied, and only the head is stored: transformers then ties embed_tokens to it.
    if (name == kEmbed && config_.tie_word_embeddings && ckpt.contains(kHead)) return kHead;
    return name;
  };
  auto load = [&](torch::Tensor& param, const std::string& key) {
    const StTensorInfo& info = ckpt.info(key);
    BORA_CHECK(info.shape == param.sizes().vec(), FormatError, ckpt.file_of(key), ": tensor '", key,
               "' has shape ", c10::IntArrayRef(info.shape), " but config.json implies ", param.sizes());
    torch::Tensor t = ckpt.tensor(key);
    if (t.scalar_type() != param.scalar_type() || t.device() != param.device())
      t = t.to(param.device(), param.scalar_type());
    param.set_data(t);
    used.insert(key);
  };
  for (auto& p : named_parameters()) {
    std::string key = key_for(p.key());
    BORA_CHECK(ckpt.contains(key), FormatError, ckpt.dir(), ": missing tensor '", p.key(),
               "' (required by config.json)");
    load(p.value(), key);
  }
  if (config_.tie_word_embeddings && ckpt.contains(kHead) && !used.count(kHead)) {
    // A tied model whose file also holds lm_head.weight (torch .bin conversions
    // store both). transformers' tie_weights ties them only when the values are
    // equal; different values mean the config is wrong, and HF warns and keeps the
    // file's head. So does bora: the head becomes a parameter of its own.
    torch::Tensor& embed = model->decoder->embed_tokens->weight;
    BORA_CHECK(ckpt.info(kHead).shape == embed.sizes().vec(), FormatError, ckpt.file_of(kHead),
               ": lm_head.weight shape differs from embed_tokens");
    if (!torch::equal(ckpt.tensor(kHead).to(embed.device(), embed.scalar_type()), embed)) {
      BORA_WARN(ckpt.dir(), ": config.json ties lm_head to embed_tokens but the checkpoint holds a different "
                "lm_head.weight; using it untied, as transformers does (set tie_word_embeddings = false)");
      config_.tie_word_embeddings = false;
      untied_lm_head = register_module("lm_head", Linear(config_.proj_dim(), config_.vocab_size, false,
                                                         embed.options().requires_grad(false)));
      load(untied_lm_head->weight, kHead);
    }
    used.insert(kHead);
  }
  for (const auto& name : ckpt.names())
    BORA_CHECK(used.count(name), FormatError, ckpt.file_of(name), ": unexpected tensor '", name,
               "' (not part of an OPT model with this config.json)");
}

void OptForCausalLM::save_pretrained(const std::string& dir, torch::ScalarType dtype,
                                     const std::map<std::string, torch::Tensor>& replace) const {
  make_dirs(dir);
  OptConfig c = config_;
  c.torch_dtype = dtype == torch::kBFloat16 ? "bfloat16" : dtype == torch::kFloat16 ? "float16" : "float32";
  NamedTensors tensors;
  for (const auto& p : named_parameters()) {
    auto r = replace.find(p.key());
    if (r != replace.end())
      BORA_CHECK(r->second.sizes() == p.value().sizes(), InternalError, "replacement for ", p.key(),
                 " has shape ", r->second.sizes(), ", expected ", p.value().sizes());
    tensors.emplace_back(p.key(), (r != replace.end() ? r->second : p.value()).to(dtype));
  }
  for (const auto& r : replace)
    BORA_CHECK(named_parameters().contains(r.first), InternalError, "no parameter ", r.first, " to replace");
  save_safetensors(dir + "/model.safetensors", tensors, {{"format", "pt"}});
  write_json_file_atomic(dir + "/config.json", c.to_json());
}

}  // namespace bora
