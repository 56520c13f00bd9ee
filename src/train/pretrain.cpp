#include "train/pretrain.h"

#include <filesystem>

#include "bora/sampler.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/log.h"
#include "core/options.h"
#include "core/progress.h"
#include "data/dataset.h"
#include "model/causal_lm.h"
#include "model/tokenizer.h"
#include "train/adamw.h"
#include "train/batch.h"
#include "train/evaluator.h"

namespace bora {

void PretrainConfig::declare(OptionTable& t) {
  t.group("run");
  t.add("model", &model, "initial HF model folder (config.json, model.safetensors, tokenizer files)");
  t.add("data", &data, "dataset folder made by data_prep; only its train split is read");
  t.add("out", &out, "HF model folder to write");
  t.add("seed", &seed, "sampler seed");
  t.add("threads", &threads, "intra-op threads (0 = OMP_NUM_THREADS or all cores)");
  t.add("drop_prompt", &drop_prompt, "train on [bos] + text + [eos]: the base never sees task names");
  t.group("optimizer");
  t.add("batch_size", &batch_size, "sequences per step");
  t.add("micro_batch", &micro_batch, "sequences per forward/backward (gradient accumulation)");
  t.add("epochs", &epochs, "passes over the pooled training split");
  t.add("max_steps", &max_steps, "steps (> 0 overrides epochs)");
  optim.declare(t, "peak learning rate");
  t.group("evaluation");
  t.add("eval_every", &eval_every, "pooled validation perplexity every N steps (0 = at the end)");
  t.add("eval_batch", &eval_batch, "sequences per evaluation forward");
  t.add("log_every", &log_every, "log every N steps");
}

void PretrainConfig::validate() const {
  BORA_CHECK(!model.empty() && !data.empty() && !out.empty(), ConfigError, "model, data and out must be set");
  BORA_CHECK(batch_size > 0 && micro_batch > 0 && eval_batch > 0, ConfigError, "batch sizes must be > 0");
  BORA_CHECK(epochs > 0 || max_steps > 0, ConfigError, "epochs or max_steps must be > 0");
  optim.validate();
}

PretrainResult pretrain(const PretrainConfig& c) {
  c.validate();
  Stopwatch wall;
  auto model = load_causal_lm(c.model);
  model->set_trainable(true);
  DatasetReader reader(c.data, {});
  Tokenizer tok = Tokenizer::from_folder(c.model);
  reader.check_tokenizer(tok.identity_hex(), model->shape().vocab_size);
  const int64_t pad_id = model->shape().pad_token_id;

  const std::vector<int64_t>& tasks = reader.open_tasks();
  std::vector<int64_t> sizes;
  for (int64_t t : tasks) sizes.push_back(reader.size(t, Split::Train));
  GlobalSampler sampler(sizes, c.batch_size, static_cast<uint64_t>(c.seed));
  const int64_t total = c.max_steps > 0 ? c.max_steps : c.epochs * sampler.steps_per_epoch();

  std::vector<torch::Tensor> params = model->parameters();
  std::vector<std::unique_ptr<AdamW>> opts;
  for (auto& p : params) opts.push_back(std::make_unique<AdamW>(p, c.optim.adamw()));
  BatchBuilder builder(reader, pad_id, model->device(), c.drop_prompt);
  std::vector<int64_t> rows_of_task(tasks.size(), 0);
  Evaluator eval(*model, reader, tasks, rows_of_task, c.eval_batch, pad_id, c.drop_prompt);
  auto val_ppl = [&] {
    torch::NoGradGuard g;
    return summarize(eval.run(nullptr, Split::Validation)).micro_ppl();
  };

  PretrainResult r;
  r.initial_val_ppl = val_ppl();
  BORA_INFO("pretraining ", c.model, " on ", sampler.num_sequences(), " training sequences of ", tasks.size(),
            " tasks: ", total, " steps; validation perplexity ", r.initial_val_ppl);
  Progress bar("pretrain", total, " steps");
  int64_t tokens = 0;
  double train_s = 0;
  for (int64_t step = 0; step < total; ++step) {
    Stopwatch sw;
    std::vector<RowRef> rows;
    for (const SeqRef& ref : sampler.batch(step)) rows.push_back({tasks[size_t(ref.task)], ref.index, 0, 0});
    int64_t targets = 0;
    for (const auto& row : rows)
      targets += reader.length(row.task, Split::Train, row.index) - reader.prompt_len(row.task, Split::Train, row.index);
    double nll_sum = 0;
    for (const auto& chunk : chunk_rows(rows, c.micro_batch)) {
      MicroBatch mb = builder.build(chunk, Split::Train);
      torch::Tensor nll = target_nll(*model, mb.ids, mb.attention_mask, mb.targets).sum();
      (nll / double(targets)).backward();
      nll_sum += nll.item<double>();
    }
    const double lr = c.optim.lr_at(c.optim.lr, step, total);
    torch::NoGradGuard g;
    double sq = 0;
    for (auto& p : params) sq += p.grad().pow(2).sum().item<double>();
    const double clip = c.optim.grad_clip;
    const double scale = clip > 0 && std::sqrt(sq) > clip ? clip / (std::sqrt(sq) + 1e-6) : 1.0;
    for (size_t i = 0; i < params.size(); ++i) {
      if (scale != 1.0) params[i].mutable_grad().mul_(scale);
      opts[i]->step(params[i].grad(), lr);
      params[i].mutable_grad().zero_();
    }
    tokens += targets;
    train_s += sw.seconds();
    bar.set_note(cat("nll ", nll_sum / double(targets)));
    bar.set(step + 1);
    if ((step + 1) % c.log_every == 0)
      BORA_DEBUG("pretrain step ", step + 1, ": nll ", nll_sum / double(targets), " lr ", lr);
    if (c.eval_every > 0 && (step + 1) % c.eval_every == 0 && step + 1 < total)
      BORA_INFO("step ", step + 1, ": validation perplexity ", val_ppl());
  }
  bar.finish();
  r.steps = total;
  r.final_val_ppl = val_ppl();
  r.seconds = wall.seconds();
  r.tokens_per_s = train_s > 0 ? double(tokens) / train_s : 0;
  model->set_trainable(false);
  model->save_pretrained(c.out, torch::kFloat32);
  tok.save(c.out);
  BORA_INFO("pretrained ", c.out, ": validation perplexity ", r.initial_val_ppl, " -> ", r.final_val_ppl, " in ",
            human_duration(r.seconds), " (", human_count(r.tokens_per_s), " tokens/s)");
  return r;
}

}  // namespace bora
