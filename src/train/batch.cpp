#include "train/batch.h"

#include <algorithm>

#include "core/error.h"
#include "model/staging.h"

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
  // Built on the host in int64 (what embedding lookups take), pinned when the
  // device is CUDA, then moved once without waiting.
  const auto host = staging_options(device_, torch::kLong);
  torch::Tensor ids = torch::full({B, S}, pad_id_, host);
  torch::Tensor mask = torch::zeros({B, S}, host);
  auto ids_a = ids.accessor<int64_t, 2>();
  auto mask_a = mask.accessor<int64_t, 2>();
  std::vector<int64_t> flat;  // b * S + j of every target, ascending
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
    }
    // Token 0 has no predecessor to predict it: it is never a target.
    for (int64_t j = std::max<int64_t>(1, seq_.prompt_len); j < len; ++j) flat.push_back(b * S + j);
    mb.bank_rows.push_back(r.bank_row);
    mb.targets_per_row.push_back(seq_.num_targets());
    mb.target_tokens += seq_.num_targets();
  }
  torch::Tensor positions = torch::empty({static_cast<int64_t>(flat.size())}, host);
  std::copy(flat.begin(), flat.end(), positions.data_ptr<int64_t>());
  const bool async = device_.is_cuda();  // non_blocking is meaningless (and harmless) on the CPU
  mb.ids = ids.to(device_, async);
  mb.attention_mask = mask.to(device_, async);
  mb.targets.flat = positions.to(device_, async);
  mb.targets.padding = Padding::Right;  // every row starts at column 0
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
