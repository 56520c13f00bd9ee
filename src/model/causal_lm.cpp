#include "model/causal_lm.h"

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

torch::Tensor target_nll(CausalLM& model, const torch::Tensor& ids, const torch::Tensor& attention_mask,
                         const torch::Tensor& target_mask, const LinearAdapter* adapter) {
  const int64_t B = ids.size(0), S = ids.size(1);
  BORA_CHECK(target_mask.sizes() == ids.sizes(), InternalError, "target_mask ", target_mask.sizes(),
             " must match ids ", ids.sizes());
  torch::Tensor h = model.hidden(ids, attention_mask, adapter);
  // Position t - 1 predicts token t: pair hidden[:, :-1] with targets[:, 1:].
  torch::Tensor tm = target_mask.slice(1, 1).to(torch::kBool);
  torch::Tensor rows = h.slice(1, 0, S - 1).index({tm});  // [N, H], targets only
  torch::Tensor logits = model.lm_head(rows).to(torch::kFloat32);
  torch::Tensor targets = ids.slice(1, 1).index({tm});
  torch::Tensor nll = -torch::log_softmax(logits, -1).gather(1, targets.unsqueeze(1)).squeeze(1);
  torch::Tensor where = torch::zeros({B, S}, tm.options());
  where.slice(1, 1).copy_(tm);
  return torch::zeros({B, S}, nll.options()).index_put({where}, nll);
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
