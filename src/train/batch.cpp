#include "train/batch.h"

#include <algorithm>

#include "core/error.h"

namespace bora {

MicroBatch BatchBuilder::build(const std::vector<RowRef>& rows, Split split) {
  BORA_CHECK(!rows.empty(), InternalError, "empty micro-batch");
  const int64_t B = static_cast<int64_t>(rows.size());
  int64_t S = 0;
  for (const auto& r : rows) {
    int64_t len = reader_.length(r.task, split, r.index);
    if (drop_prompt_) len -= reader_.prompt_len(r.task, split, r.index) - 1;
    S = std::max(S, len);
  }
  // Built on the CPU in int64 (what embedding lookups take), then moved once.
  torch::Tensor ids = torch::full({B, S}, pad_id_, torch::kLong);
  torch::Tensor mask = torch::zeros({B, S}, torch::kLong);
  torch::Tensor targets = torch::zeros({B, S}, torch::kBool);
  auto ids_a = ids.accessor<int64_t, 2>();
  auto mask_a = mask.accessor<int64_t, 2>();
  auto tgt_a = targets.accessor<bool, 2>();
  MicroBatch mb;
  mb.bank_rows.reserve(rows.size());
  for (int64_t b = 0; b < B; ++b) {
    const RowRef& r = rows[static_cast<size_t>(b)];
    reader_.read(r.task, split, r.index, &seq_);
    if (drop_prompt_ && seq_.prompt_len > 1) {
      seq_.tokens.erase(seq_.tokens.begin() + 1, seq_.tokens.begin() + seq_.prompt_len);
      seq_.prompt_len = 1;
    }
    const int64_t len = static_cast<int64_t>(seq_.tokens.size());
    for (int64_t j = 0; j < len; ++j) {
      ids_a[b][j] = seq_.tokens[static_cast<size_t>(j)];
      mask_a[b][j] = 1;
      tgt_a[b][j] = j >= seq_.prompt_len;
    }
    mb.bank_rows.push_back(r.bank_row);
    mb.targets_per_row.push_back(seq_.num_targets());
    mb.target_tokens += seq_.num_targets();
  }
  mb.ids = ids.to(device_);
  mb.attention_mask = mask.to(device_);
  mb.target_mask = targets.to(device_);
  return mb;
}

std::vector<std::vector<RowRef>> chunk_rows(const std::vector<RowRef>& rows, int64_t max_rows) {
  std::vector<std::vector<RowRef>> out;
  for (size_t i = 0; i < rows.size(); i += static_cast<size_t>(max_rows))
    out.emplace_back(rows.begin() + static_cast<std::ptrdiff_t>(i),
                     rows.begin() + static_cast<std::ptrdiff_t>(std::min(rows.size(), i + size_t(max_rows))));
  return out;
}

std::vector<std::vector<RowRef>> pack_by_task(const std::vector<RowRef>& rows, int64_t max_rows) {
  std::vector<std::vector<RowRef>> out;
  std::vector<RowRef> current;
  size_t i = 0;
  while (i < rows.size()) {
    size_t j = i;
    while (j < rows.size() && rows[j].slot == rows[i].slot) ++j;  // [i, j): one task
    const auto n = static_cast<int64_t>(j - i);
    if (n > max_rows) {
      if (!current.empty()) out.push_back(std::move(current)), current.clear();
      for (auto piece : chunk_rows(std::vector<RowRef>(rows.begin() + long(i), rows.begin() + long(j)), max_rows))
        out.push_back(std::move(piece));
    } else {
      if (static_cast<int64_t>(current.size()) + n > max_rows) out.push_back(std::move(current)), current.clear();
      current.insert(current.end(), rows.begin() + long(i), rows.begin() + long(j));
    }
    i = j;
  }
  if (!current.empty()) out.push_back(std::move(current));
  return out;
}

}  // namespace bora
