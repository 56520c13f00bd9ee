#include "model/causal_lm.h"

#include <torch/nn/functional/loss.h>

#include "core/error.h"
#include "core/json.h"
#include "model/hf_checkpoint.h"
#include "model/opt.h"

namespace bora {
namespace {
constexpr const char* kSiteNames[kNumSites] = {"q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"};
}

const char* site_name(Site s) { return kSiteNames[static_cast<int>(s)]; }

std::optional<Site> site_from_name(const std::string& name) {
  for (int i = 0; i < kNumSites; ++i)
    if (name == kSiteNames[i]) return static_cast<Site>(i);
  return std::nullopt;
}

std::string site_module_path(Site s) {
  return s == Site::Fc1 || s == Site::Fc2 ? site_name(s) : std::string("self_attn.") + site_name(s);
}

void LinearAdapter::apply_qkv(int layer, const torch::Tensor& x, torch::Tensor* q, torch::Tensor* k,
                              torch::Tensor* v) const {
  if (adapts(layer, Site::Q)) *q = apply(layer, Site::Q, x, *q);
  if (adapts(layer, Site::K)) *k = apply(layer, Site::K, x, *k);
  if (adapts(layer, Site::V)) *v = apply(layer, Site::V, x, *v);
}

void CausalLM::set_trainable(bool trainable) {
  for (auto& p : parameters()) p.requires_grad_(trainable);
}

torch::Device CausalLM::device() const { return parameters().front().device(); }
torch::ScalarType CausalLM::dtype() const { return parameters().front().scalar_type(); }

TargetPositions TargetPositions::from_mask(const torch::Tensor& target_mask) {
  // Column 0 has no predecessor to predict it: it is never a target.
  torch::Tensor nz = target_mask.to(torch::kBool).slice(1, 1).nonzero();  // [N, 2], row-major order
  TargetPositions t;
  t.flat = nz.select(1, 0) * target_mask.size(1) + nz.select(1, 1) + 1;
  return t;
}

torch::Tensor target_nll(CausalLM& model, const torch::Tensor& ids, const torch::Tensor& attention_mask,
                         const TargetPositions& targets, const LinearAdapter* adapter) {
  const int64_t B = ids.size(0), S = ids.size(1);
  torch::Tensor h = model.hidden(ids, attention_mask, adapter, targets.padding);
  // Position t - 1 predicts token t: the rows of the predicting positions, then the
  // head on those rows only.
  torch::Tensor rows = h.reshape({B * S, h.size(-1)}).index_select(0, targets.flat - 1);  // [N, H]
  torch::Tensor logits = model.lm_head(rows).to(torch::kFloat32);                        // [N, V]
  torch::Tensor want = ids.reshape({B * S}).index_select(0, targets.flat);
  namespace F = torch::nn::functional;
  torch::Tensor nll = F::cross_entropy(logits, want, F::CrossEntropyFuncOptions().reduction(torch::kNone));
  // Back to [B, S]: index_copy writes each (distinct) position once, so it is
  // deterministic on every device, and so is its backward (an index_select).
  return torch::zeros({B * S}, nll.options()).index_copy(0, targets.flat, nll).view({B, S});
}

torch::Tensor target_nll(CausalLM& model, const torch::Tensor& ids, const torch::Tensor& attention_mask,
                         const torch::Tensor& target_mask, const LinearAdapter* adapter) {
  BORA_CHECK(target_mask.sizes() == ids.sizes(), InternalError, "target_mask ", target_mask.sizes(),
             " must match ids ", ids.sizes());
  return target_nll(model, ids, attention_mask, TargetPositions::from_mask(target_mask), adapter);
}

std::shared_ptr<CausalLM> load_causal_lm(const std::string& dir, const LoadOptions& options) {
  const std::string config_path = dir + "/config.json";
  Json j = read_json_file(config_path);
  std::string type = j.is_object() ? j.value("model_type", std::string()) : std::string();
  auto topts = torch::TensorOptions().dtype(options.dtype).device(options.device);
  if (type == "opt") {
    auto model = std::make_shared<OptForCausalLM>(OptConfig::from_json(j, config_path), topts);
    model->load_weights(HfCheckpoint::open(dir));
    return model;
  }
  BORA_THROW(ConfigError, config_path, ": model_type '", type,
             "' is not supported (supported: opt)");
}

}  // namespace bora
