#include "model/causal_lm.h"

#include <torch/autograd.h>
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

namespace {

// head_nll over a frozen W (see causal_lm.h): the forward keeps dNLL_i/drow_i.
class ChunkedHeadNll : public torch::autograd::Function<ChunkedHeadNll> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& rows,
                               const torch::Tensor& weight, const torch::Tensor& want, int64_t chunk,
                               bool need_grad) {
    const int64_t n = rows.size(0);
    torch::Tensor nll = torch::empty({n}, rows.options().dtype(torch::kFloat32));
    torch::Tensor grad = need_grad ? torch::empty_like(rows) : torch::Tensor();
    for (int64_t a = 0; a < n; a += chunk) {
      const int64_t b = std::min(n, a + chunk);
      // The same arithmetic as the unchunked path: logits in the base's dtype, then
      // log-softmax in float32.
      torch::Tensor logits = torch::matmul(rows.slice(0, a, b), weight.t()).to(torch::kFloat32);  // [c, V]
      torch::Tensor w = want.slice(0, a, b).unsqueeze(1);
      torch::Tensor lse = logits.logsumexp(1, /*keepdim=*/true);
      nll.slice(0, a, b).copy_((lse - logits.gather(1, w)).squeeze(1));
      if (!need_grad) continue;
      // softmax - onehot, in place over this chunk's logits, then times W.
      logits.sub_(lse).exp_().scatter_add_(1, w, torch::full_like(w, -1.0, logits.options()));
      grad.slice(0, a, b).copy_(torch::matmul(logits.to(rows.scalar_type()), weight));
    }
    if (need_grad) ctx->saved_data["grad"] = grad;  // an intermediate, not an input: saved_data
    return nll;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    const torch::Tensor grad = ctx->saved_data["grad"].toTensor();
    // Each row's NLL depends on that row only: the Jacobian is diagonal by rows.
    torch::Tensor g = grad * grad_out[0].unsqueeze(1).to(grad.scalar_type());
    return {g, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor head_nll(const torch::Tensor& rows, const torch::Tensor& weight, const torch::Tensor& want,
                       int64_t chunk_rows) {
  BORA_CHECK(rows.dim() == 2 && weight.dim() == 2 && rows.size(1) == weight.size(1) && want.dim() == 1 &&
                 want.size(0) == rows.size(0),
             InternalError, "head_nll: rows ", rows.sizes(), ", weight ", weight.sizes(), ", want ", want.sizes());
  if (weight.requires_grad()) {
    namespace F = torch::nn::functional;
    torch::Tensor logits = torch::matmul(rows, weight.t()).to(torch::kFloat32);
    return F::cross_entropy(logits, want, F::CrossEntropyFuncOptions().reduction(torch::kNone));
  }
  // 2^25 float32 logits = 128 MiB a chunk.
  const int64_t chunk = chunk_rows > 0 ? chunk_rows : std::max<int64_t>(1, (int64_t{1} << 25) / weight.size(0));
  const bool need_grad = torch::GradMode::is_enabled() && rows.requires_grad();
  return ChunkedHeadNll::apply(rows, weight, want, chunk, need_grad);
}

torch::Tensor target_nll(CausalLM& model, const torch::Tensor& ids, const torch::Tensor& attention_mask,
                         const TargetPositions& targets, const LinearAdapter* adapter) {
  const int64_t B = ids.size(0), S = ids.size(1);
  torch::Tensor h = model.hidden(ids, attention_mask, adapter, targets.padding);
  // Position t - 1 predicts token t: the rows of the predicting positions, then the
  // head on those rows only.
  torch::Tensor rows = h.reshape({B * S, h.size(-1)}).index_select(0, targets.flat - 1);  // [N, H]
  torch::Tensor want = ids.reshape({B * S}).index_select(0, targets.flat);
  torch::Tensor nll = head_nll(rows, model.lm_head_weight(), want);
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
