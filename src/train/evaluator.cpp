#include "train/evaluator.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "train/batch.h"

namespace bora {

EvalSummary summarize(std::vector<TaskEval> tasks) {
  EvalSummary s;
  double macro = 0, total = 0;
  int64_t tokens = 0, counted = 0;
  for (const auto& t : tasks) {
    if (t.tokens == 0) continue;
    macro += t.nll();
    ++counted;
    total += t.nll_sum;
    tokens += t.tokens;
  }
  s.tasks = std::move(tasks);
  if (counted) s.macro_nll = macro / double(counted);
  if (tokens) s.micro_nll = total / double(tokens);
  return s;
}

Evaluator::Evaluator(CausalLM& model, DatasetReader& reader, std::vector<int64_t> tasks,
                     std::vector<int64_t> bank_rows, int64_t batch_rows, int64_t pad_id, bool drop_prompt)
    : model_(model), reader_(reader), tasks_(std::move(tasks)), bank_rows_(std::move(bank_rows)),
      batch_rows_(batch_rows), pad_id_(pad_id), drop_prompt_(drop_prompt) {}

std::vector<TaskEval> Evaluator::run(const AdapterBank* bank, Split split) {
  torch::NoGradGuard no_grad;
  // Every sequence of every local task, grouped by task and sorted by length inside
  // it, so that micro-batches waste little padding.
  std::vector<RowRef> rows;
  for (size_t i = 0; i < tasks_.size(); ++i) {
    const int64_t n = reader_.size(tasks_[i], split);
    std::vector<RowRef> task_rows;
    for (int64_t j = 0; j < n; ++j) task_rows.push_back({tasks_[i], j, bank_rows_[i], int64_t(i)});
    std::stable_sort(task_rows.begin(), task_rows.end(), [&](const RowRef& a, const RowRef& b) {
      return reader_.length(a.task, split, a.index) > reader_.length(b.task, split, b.index);
    });
    rows.insert(rows.end(), task_rows.begin(), task_rows.end());
  }
  std::vector<TaskEval> out(tasks_.size());
  BatchBuilder builder(reader_, pad_id_, model_.device(), drop_prompt_);
  for (const auto& chunk : chunk_rows(rows, batch_rows_)) {
    MicroBatch mb = builder.build(chunk, split);
    std::unique_ptr<LinearAdapter> adapter;
    if (bank) adapter = bank->bind(mb.bank_rows, /*training=*/false);
    torch::Tensor nll = target_nll(model_, mb.ids, mb.attention_mask, mb.targets, adapter.get());
    torch::Tensor per_row = nll.to(torch::kFloat64).sum(1).cpu();
    auto a = per_row.accessor<double, 1>();
    for (size_t b = 0; b < chunk.size(); ++b) {
      TaskEval& e = out[static_cast<size_t>(chunk[b].slot)];
      e.nll_sum += a[static_cast<int64_t>(b)];
      e.tokens += mb.targets_per_row[b];
    }
  }
  return out;
}

std::vector<TaskEval> gather_task_evals(Communicator& comm, const std::vector<int64_t>& local_run_index,
                                        const std::vector<TaskEval>& local, int64_t num_tasks) {
  // Wire format per task: run index (int64), nll_sum (double), tokens (int64).
  struct Item {
    int64_t task;
    double nll_sum;
    int64_t tokens;
  };
  std::string mine(local.size() * sizeof(Item), '\0');
  for (size_t i = 0; i < local.size(); ++i) {
    Item it{local_run_index[i], local[i].nll_sum, local[i].tokens};
    std::memcpy(mine.data() + i * sizeof(Item), &it, sizeof(Item));
  }
  std::vector<TaskEval> all(static_cast<size_t>(num_tasks));
  for (const std::string& part : comm.all_gather_bytes(mine)) {
    BORA_CHECK(part.size() % sizeof(Item) == 0, DistError, "corrupt evaluation message");
    for (size_t off = 0; off < part.size(); off += sizeof(Item)) {
      Item it;
      std::memcpy(&it, part.data() + off, sizeof(Item));
      BORA_CHECK(it.task >= 0 && it.task < num_tasks, DistError, "evaluation message names task ", it.task);
      all[static_cast<size_t>(it.task)] = {it.nll_sum, it.tokens};
    }
  }
  return all;
}

}  // namespace bora
