// The adapter bank: the adapters of T tasks, stacked, over one frozen base model.
//
// Storage. Every task's TRAINABLE tensors are packed into one row of a [T, P]
// buffer (`rows()`), in the order of AdapterLayout::slots: theta_d is exactly
// rows()[d], so the BoRA prior, Theta (a [P] vector), AdamW and checkpoints all
// work on plain rows. The per-layer parameters that the forward uses
// ("layers.3.q_proj.lora_A", [T, r, in]) are leaf tensors VIEWING that buffer, and
// their .grad is bound to views of a [T, P] gradient buffer, so autograd
// accumulates straight into `grad_rows()` with no copy. Frozen random A/B (VeRA and
// tl1-tl4) are stored once ([1, ...]) and shared by every task.
//
// Forward. bind(row_task) returns the LinearAdapter for one batch, whose rows may
// belong to different tasks (rows of a task must be contiguous). Two strategies,
// both exact (docs/adapters.md has the measurements):
//   gather:   index_select each row's A, B, u, v and use batched matmuls — a fixed
//             number of kernels whatever the number of tasks (the CUDA choice);
//   segments: one plain matmul per task segment — fewer, larger GEMMs (the CPU choice).
// A batch of a single task (and the unified bank, T = 1) uses plain matmuls.
#pragma once

#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "adapters/adapter_config.h"
#include "model/safetensors.h"

namespace bora {

// A contiguous run of batch rows that belong to one task.
struct TaskSegment {
  int64_t task = 0;
  int64_t start = 0;
  int64_t length = 0;
};
// The maximal runs of equal tasks in a row -> task assignment (a task may appear in
// several runs; grouping a batch by task just makes the runs fewer and longer).
std::vector<TaskSegment> segments_of(const std::vector<int64_t>& row_task);

// Not a torch::nn::Module: its tensors alias one buffer, which Module::to() or
// clone() would silently break. Slot names (AdapterLayout) are the checkpoint keys.
class AdapterBank {
 public:
  AdapterBank(const AdapterSpec& spec, const ModelShape& shape, int64_t num_tasks,
              torch::Device device = torch::kCPU);
  AdapterBank(const AdapterBank&) = delete;
  AdapterBank& operator=(const AdapterBank&) = delete;

  const AdapterSpec& spec() const { return spec_; }
  const AdapterLayout& layout() const { return layout_; }
  const ModelShape& model_shape() const { return shape_; }
  int64_t num_tasks() const { return num_tasks_; }
  int64_t row_size() const { return layout_.row_size; }

  // [T, P] trainable state and its gradient (views of these are the parameters).
  torch::Tensor rows() const { return rows_; }
  torch::Tensor grad_rows() const { return grad_; }
  // Frozen shared matrices, [shared_size] (empty when the preset trains A and B).
  torch::Tensor shared() const { return shared_; }
  void zero_grad() { grad_.zero_(); }

  // The preset's initial row [P] (deterministic in spec.seed): the adapted model
  // equals the base model, and every trainable tensor gets a gradient within two
  // optimizer steps. Rules: a trainable B starts at 0; else a trainable A starts at
  // 0 (B being frozen random); else a trainable v (else u) starts at 0. Other
  // trainable A are kaiming-uniform(a = sqrt(5)) as in LoRA, u and v start at 1.
  torch::Tensor preset_row() const;
  // Sets every task's row to preset_row().
  void init_preset();

  // The adapter for one forward: row_task[b] = task of batch row b.
  std::unique_ptr<LinearAdapter> bind(const std::vector<int64_t>& row_task, bool training) const;

  // One task's tensors by slot name (views of its row; frozen slots included).
  NamedTensors task_tensors(int64_t task) const;
  // The dense update s * diag(v) B diag(u) A of one task for one site: [out, in].
  torch::Tensor delta_weight(int64_t task, int layer, Site site) const;
  // The view of `slot` in a [P] row (of this bank's layout).
  static torch::Tensor slot_view(const torch::Tensor& row, const AdapterSlot& slot);

  // Index of the slot for (unit, layer, factor), or -1 (frozen u/v, or absent).
  int slot_index(int unit, int layer, Factor f) const {
    return slot_index_[unit][static_cast<size_t>(layer)][static_cast<int>(f)];
  }
  // The tensor behind a slot: [T, ...] for trainable, [1, ...] for frozen.
  const torch::Tensor& slot_param(int slot) const { return params_[static_cast<size_t>(slot)]; }
  // The trainable leaf tensors (for generic gradient checks).
  std::vector<torch::Tensor> parameters() const;
  torch::Device device() const { return rows_.device(); }

 private:
  AdapterSpec spec_;
  ModelShape shape_;
  AdapterLayout layout_;
  int64_t num_tasks_;
  torch::Tensor rows_, grad_, shared_;
  std::vector<torch::Tensor> params_;  // by slot index
  std::vector<std::vector<std::array<int, 4>>> slot_index_;  // [unit][layer][factor]
};

// loss.backward() for graphs through a bank. The bank's parameters are strided
// views whose gradients accumulate in place into grad_rows(), which makes autograd
// warn (once) that grad and param "do not obey the gradient layout contract": that
// is the intended layout here, so this one message is filtered on this thread for
// the duration of the call; every other warning passes through.
void backward(const torch::Tensor& loss);

}  // namespace bora
