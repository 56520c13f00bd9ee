#include "adapters/bank.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <map>

#include "core/error.h"
#include "model/staging.h"

namespace bora {

std::vector<TaskSegment> segments_of(const std::vector<int64_t>& row_task) {
  std::vector<TaskSegment> out;
  for (int64_t b = 0; b < static_cast<int64_t>(row_task.size()); ++b) {
    if (out.empty() || out.back().task != row_task[b]) out.push_back({row_task[b], b, 0});
    ++out.back().length;
  }
  return out;
}

AdapterBank::AdapterBank(const AdapterSpec& spec, const ModelShape& shape, int64_t num_tasks,
                         torch::Device device)
    : spec_(spec), shape_(shape), layout_(AdapterLayout::build(spec, shape)), num_tasks_(num_tasks) {
  BORA_CHECK(num_tasks > 0, ConfigError, "an adapter bank needs at least one task");
  BORA_CHECK(layout_.row_size > 0, ConfigError, "adapter ", spec.describe(), " has nothing to train");
  auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  rows_ = torch::zeros({num_tasks, layout_.row_size}, opts);
  grad_ = torch::zeros({num_tasks, layout_.row_size}, opts);
  shared_ = torch::zeros({layout_.shared_size}, opts);
  for (const auto& slot : layout_.slots) {
    std::vector<int64_t> shape_t{slot.trainable ? num_tasks : 1};
    shape_t.insert(shape_t.end(), slot.shape.begin(), slot.shape.end());
    if (slot.trainable) {
      // A leaf that views the rows; its gradient accumulates in place into grad_.
      torch::Tensor leaf = rows_.narrow(1, slot.offset, slot.numel()).view(shape_t).detach();
      leaf.requires_grad_(true);
      leaf.mutable_grad() = grad_.narrow(1, slot.offset, slot.numel()).view(shape_t);
      params_.push_back(leaf);
    } else {
      params_.push_back(shared_.narrow(0, slot.offset, slot.numel()).view(shape_t));
    }
  }
  slot_index_.assign(layout_.units.size(),
                     std::vector<std::array<int, 4>>(static_cast<size_t>(shape.num_layers)));
  for (auto& per_unit : slot_index_)
    for (auto& a : per_unit) a.fill(-1);
  for (int i = 0; i < static_cast<int>(layout_.slots.size()); ++i) {
    const AdapterSlot& s = layout_.slots[i];
    for (int64_t l = 0; l < shape.num_layers; ++l)
      if (s.layer == -1 || s.layer == l) slot_index_[s.unit][l][static_cast<int>(s.factor)] = i;
  }

  // Frozen random matrices, deterministic in the seed: kaiming-uniform(a = sqrt 5)
  // on their own fan-in, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), so that s = 1 keeps the
  // update at the scale of the base outputs.
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(spec.seed ^ 0x5eedf00dULL);
  for (size_t i = 0; i < layout_.slots.size(); ++i) {
    const AdapterSlot& s = layout_.slots[i];
    if (s.trainable) continue;
    double bound = 1.0 / std::sqrt(double(s.shape[1]));
    params_[i].copy_(torch::empty(s.shape, torch::kFloat32).uniform_(-bound, bound, gen).unsqueeze(0));
  }
  init_preset();
}

std::vector<torch::Tensor> AdapterBank::parameters() const {
  std::vector<torch::Tensor> out;
  for (size_t i = 0; i < layout_.slots.size(); ++i)
    if (layout_.slots[i].trainable) out.push_back(params_[i]);
  return out;
}

torch::Tensor AdapterBank::slot_view(const torch::Tensor& row, const AdapterSlot& slot) {
  return row.narrow(0, slot.offset, slot.numel()).view(slot.shape);
}

torch::Tensor AdapterBank::preset_row() const {
  torch::NoGradGuard no_grad;
  torch::Tensor row = torch::empty({layout_.row_size}, torch::kFloat32);
  auto gen = at::detail::createCPUGenerator(spec_.seed);
  const bool trains_a = spec_.trains(Factor::A), trains_b = spec_.trains(Factor::B);
  const bool trains_v = spec_.trains(Factor::V);
  for (const auto& s : layout_.slots) {
    if (!s.trainable) continue;
    torch::Tensor v = slot_view(row, s);
    switch (s.factor) {
      case Factor::A:
        // With B frozen (random), A must start at 0 for the update to be zero.
        if (trains_b) v.uniform_(-1.0 / std::sqrt(double(s.shape[1])), 1.0 / std::sqrt(double(s.shape[1])), gen);
        else v.zero_();
        break;
      case Factor::B: v.zero_(); break;
      case Factor::U: v.fill_(!trains_a && !trains_b && !trains_v ? 0.0 : 1.0); break;
      case Factor::V: v.fill_(!trains_a && !trains_b ? 0.0 : 1.0); break;
    }
  }
  return row.to(rows_.device());
}

void AdapterBank::init_preset() {
  torch::NoGradGuard no_grad;
  rows_.copy_(preset_row().unsqueeze(0).expand_as(rows_));
}

NamedTensors AdapterBank::task_tensors(int64_t task) const {
  BORA_CHECK(task >= 0 && task < num_tasks_, InternalError, "task ", task, " out of range");
  NamedTensors out;
  for (size_t i = 0; i < layout_.slots.size(); ++i)
    out.emplace_back(layout_.slots[i].name,
                     params_[i].select(0, layout_.slots[i].trainable ? task : 0).detach());
  return out;
}

torch::Tensor AdapterBank::delta_weight(int64_t task, int layer, Site site) const {
  torch::NoGradGuard no_grad;
  int unit = layout_.unit_of.at(static_cast<size_t>(layer))[static_cast<int>(site)];
  BORA_CHECK(unit >= 0, InternalError, site_name(site), " of layer ", layer, " is not adapted");
  auto factor = [&](Factor f) -> torch::Tensor {
    int i = slot_index(unit, layer, f);
    if (i < 0) return {};
    return params_[i].select(0, layout_.slots[i].trainable ? task : 0);
  };
  torch::Tensor b = factor(Factor::B);
  if (auto u = factor(Factor::U); u.defined()) b = b * u.unsqueeze(0);
  if (auto v = factor(Factor::V); v.defined()) b = b * v.unsqueeze(1);
  torch::Tensor w = torch::matmul(b, factor(Factor::A)) * spec_.scale;  // [unit.out, in]
  // A fused unit's output is q, k, v stacked: take this site's rows.
  int64_t offset = 0;
  for (Site s : layout_.units[unit].sites) {
    if (s == site) break;
    offset += shape_.site_out[static_cast<int>(s)];
  }
  return w.narrow(0, offset, shape_.site_out[static_cast<int>(site)]);
}

// ---- the adapter bound to one batch ------------------------------------------------

namespace {

class BoundAdapter : public LinearAdapter {
 public:
  BoundAdapter(const AdapterBank& bank, const std::vector<int64_t>& row_task, bool training)
      : bank_(bank), segments_(segments_of(row_task)), training_(training) {
    for (int64_t t : row_task)
      BORA_CHECK(t >= 0 && t < bank.num_tasks(), InternalError, "row task ", t, " outside the bank's ",
                 bank.num_tasks(), " tasks");
    gather_ = bank.spec().strategy != AdapterStrategy::Segments;  // auto = gather (measured on CPU: docs/adapters.md; no launch storm on CUDA)
    if (gather_ && segments_.size() > 1)
      row_task_ = to_device_async(torch::tensor(row_task, torch::kLong), bank.device());
  }

  bool adapts(int layer, Site site) const override {
    return bank_.layout().unit_of[static_cast<size_t>(layer)][static_cast<int>(site)] >= 0;
  }

  torch::Tensor apply(int layer, Site site, const torch::Tensor& x, torch::Tensor y) const override {
    int unit = bank_.layout().unit_of[static_cast<size_t>(layer)][static_cast<int>(site)];
    torch::Tensor d = delta(unit, layer, x);
    const AdapterUnit& u = bank_.layout().units[unit];
    if (u.sites.size() > 1) d = d.narrow(-1, out_offset(u, site), out_size(site));
    return y + d.to(y.scalar_type());
  }

  void apply_qkv(int layer, const torch::Tensor& x, torch::Tensor* q, torch::Tensor* k,
                 torch::Tensor* v) const override {
    int unit = bank_.layout().unit_of[static_cast<size_t>(layer)][static_cast<int>(Site::Q)];
    if (unit < 0 || bank_.layout().units[unit].sites.size() == 1) {
      LinearAdapter::apply_qkv(layer, x, q, k, v);
      return;
    }
    // Fused QKV: A x is computed once for the three projections.
    torch::Tensor d = delta(unit, layer, x);
    const int64_t n = out_size(Site::Q);
    *q = *q + d.narrow(-1, 0, n).to(q->scalar_type());
    *k = *k + d.narrow(-1, n, n).to(k->scalar_type());
    *v = *v + d.narrow(-1, 2 * n, n).to(v->scalar_type());
  }

 private:
  int64_t out_size(Site s) const { return bank_.model_shape().site_out[static_cast<int>(s)]; }
  int64_t out_offset(const AdapterUnit& u, Site site) const {
    int64_t off = 0;
    for (Site s : u.sites) {
      if (s == site) break;
      off += out_size(s);
    }
    return off;
  }

  // The factor tensor of `slot` for one task: [..] (frozen ones are shared).
  torch::Tensor of_task(int slot, int64_t task) const {
    const AdapterSlot& s = bank_.layout().slots[static_cast<size_t>(slot)];
    const torch::Tensor& p = bank_.slot_param(slot);
    if (!s.trainable) return p[0];
    if (segments_.size() == 1) return p.select(0, task);
    // unbind once per forward: its backward stacks the tasks' gradients into one
    // [T, ...] tensor, where one select() per segment would allocate one each.
    auto it = unbound_.find(slot);
    if (it == unbound_.end()) it = unbound_.emplace(slot, p.unbind(0)).first;
    return it->second[static_cast<size_t>(task)];
  }

  // h = s * v * (B (u * (A x))) for rows of one task.
  torch::Tensor one_task(int unit, int layer, const torch::Tensor& x, int64_t task) const {
    torch::Tensor h = torch::matmul(x, of_task(bank_.slot_index(unit, layer, Factor::A), task).t());
    if (int i = bank_.slot_index(unit, layer, Factor::U); i >= 0) h = h * of_task(i, task);
    h = torch::matmul(h, of_task(bank_.slot_index(unit, layer, Factor::B), task).t());
    if (int i = bank_.slot_index(unit, layer, Factor::V); i >= 0) h = h * of_task(i, task);
    return h;
  }

  // x [B, S, in] @ M^T where M is per row ([B, k, in] gathered) or shared.
  torch::Tensor rows_matmul(const torch::Tensor& x, int slot) const {
    const torch::Tensor& p = bank_.slot_param(slot);
    if (!bank_.layout().slots[static_cast<size_t>(slot)].trainable) return torch::matmul(x, p[0].t());
    return torch::bmm(x, p.index_select(0, row_task_).transpose(1, 2));
  }
  torch::Tensor rows_scale(const torch::Tensor& h, int slot) const {
    return h * bank_.slot_param(slot).index_select(0, row_task_).unsqueeze(1);
  }

  torch::Tensor delta(int unit, int layer, const torch::Tensor& x_in) const {
    torch::Tensor x = x_in.to(torch::kFloat32);  // fp32 adapters over a bf16 base
    if (training_ && bank_.spec().dropout > 0) x = torch::dropout(x, bank_.spec().dropout, true);
    torch::Tensor h;
    if (segments_.size() == 1) {
      h = one_task(unit, layer, x, segments_[0].task);
    } else if (!gather_) {
      std::vector<torch::Tensor> parts;
      parts.reserve(segments_.size());
      for (const auto& seg : segments_)
        parts.push_back(one_task(unit, layer, x.narrow(0, seg.start, seg.length), seg.task));
      h = torch::cat(parts, 0);
    } else {
      h = rows_matmul(x, bank_.slot_index(unit, layer, Factor::A));
      if (int i = bank_.slot_index(unit, layer, Factor::U); i >= 0) h = rows_scale(h, i);
      h = rows_matmul(h, bank_.slot_index(unit, layer, Factor::B));
      if (int i = bank_.slot_index(unit, layer, Factor::V); i >= 0) h = rows_scale(h, i);
    }
    return h * bank_.spec().scale;
  }

  const AdapterBank& bank_;
  std::vector<TaskSegment> segments_;
  bool training_, gather_ = false;
  torch::Tensor row_task_;
  mutable std::map<int, std::vector<torch::Tensor>> unbound_;
};

}  // namespace

namespace {

class LayoutContractFilter : public c10::WarningHandler {
 public:
  explicit LayoutContractFilter(c10::WarningHandler* next) : next_(next) {}
  void process(const c10::Warning& w) override {
    if (w.msg().find("gradient layout contract") == std::string::npos) next_->process(w);
  }
 private:
  c10::WarningHandler* next_;
};

}  // namespace

void backward(const torch::Tensor& loss) {
  namespace warn = c10::WarningUtils;
  LayoutContractFilter filter(warn::get_warning_handler());
  warn::WarningHandlerGuard guard(&filter);
  loss.backward();
}

std::unique_ptr<LinearAdapter> AdapterBank::bind(const std::vector<int64_t>& row_task,
                                                 bool training) const {
  BORA_CHECK(!row_task.empty(), InternalError, "bind(): empty batch");
  return std::make_unique<BoundAdapter>(*this, row_task, training);
}

}  // namespace bora
