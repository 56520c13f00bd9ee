// Sequences from the dataset reader -> the tensors of one forward pass.
//
// Rows are right-padded (pad id from the model's config) to the longest row of the
// micro-batch: with right padding, causality alone keeps real tokens from seeing
// padding, so the attention needs no mask tensor (and can use flash kernels on
// CUDA). The loss targets of row b are j in [prompt_len, length): padding and prompt
// never count. The builder knows this layout, so it hands the model the padding side
// and the targets' positions computed on the host: the forward then never reads a
// device tensor to find them (a host synchronisation per micro-batch on CUDA).
//
// On CUDA the tensors are built in pinned host memory and copied with non_blocking:
// the copy is queued on the current stream and the host goes on to the next batch.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "data/dataset.h"
#include "model/causal_lm.h"

namespace bora {

// One sequence of a micro-batch: which task's split, and which adapter row serves it.
struct RowRef {
  int64_t task = 0;      // manifest task index (for the reader)
  int64_t index = 0;     // sequence index within the task's split
  int64_t bank_row = 0;  // adapter-bank row of the task
  int64_t slot = 0;      // the caller's own index for the task (e.g. local position)
};

struct MicroBatch {
  torch::Tensor ids, attention_mask;  // [B, S], on the device
  TargetPositions targets;            // flat target positions (Padding::Right), on the device
  std::vector<int64_t> bank_rows;     // per row
  std::vector<int64_t> targets_per_row;
  int64_t target_tokens = 0;
};

class BatchBuilder {
 public:
  // drop_prompt: remove the prompt after the bos ([bos] + text + [eos]), so that a
  // base model pretrained on the tasks' text never sees their names.
  BatchBuilder(DatasetReader& reader, int64_t pad_id, torch::Device device, bool drop_prompt = false)
      : reader_(reader), pad_id_(pad_id), device_(device), drop_prompt_(drop_prompt) {}
  MicroBatch build(const std::vector<RowRef>& rows, Split split);

 private:
  DatasetReader& reader_;
  int64_t pad_id_;
  torch::Device device_;
  bool drop_prompt_;
  Sequence seq_;
};

// Splits `rows` into consecutive chunks of at most `max_rows`.
std::vector<std::vector<RowRef>> chunk_rows(const std::vector<RowRef>& rows, int64_t max_rows);

// Packs rows grouped by task (equal `slot` adjacent) into micro-batches of at most
// `max_rows` WITHOUT splitting a task across micro-batches, except a task with more
// than `max_rows` rows, which is cut into pieces of max_rows from its own first
// row. A task's pieces then depend only on the task, not on which other tasks
// share the rank: its gradient sums in the same order for any number of ranks.
std::vector<std::vector<RowRef>> pack_by_task(const std::vector<RowRef>& rows, int64_t max_rows);

}  // namespace bora
