// bora-eval: per-task perplexity of a base model, alone or with the adapters of a
// run, on a split of a dataset; prints a Markdown table.
//   bora-eval --model base --data data/tasks                       (the base alone)
//   bora-eval --model base --data data/tasks --run runs/tau10      (with its adapters)
//   bora-eval --model base --data data/tasks --adapter peft_dir    (one adapter for every task)
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "adapters/load.h"
#include "core/error.h"
#include "core/json.h"
#include "core/main.h"
#include "core/options.h"
#include "data/dataset.h"
#include "dist/communicator.h"
#include "dist/world.h"
#include "model/tokenizer.h"
#include "train/evaluator.h"
#include "train/run_folder.h"

int main(int argc, char** argv) {
  return bora::guarded_main("bora-eval", [&] {
    std::string model_dir, data, run, adapter, json_out, split = "validation";
    std::vector<std::string> tasks;
    int64_t batch = 32;
    int threads = 0;
    bora::OptionTable t("bora-eval", "Per-task and overall perplexity of a base model, alone or with a run's adapters.");
    t.add("model", &model_dir, "HF base model folder (default with --run: the run's)");
    t.add("data", &data, "dataset folder made by data_prep (default with --run: the run's)");
    t.add("run", &run, "a bora-train run folder whose adapters/<task> to use (empty = the base alone)");
    t.add("adapter", &adapter, "one adapter folder (PEFT or bora format) for every task, instead of --run");
    t.add("json", &json_out, "also write the per-task NLL sums, token counts and perplexities to this JSON file");
    t.add("tasks", &tasks, "tasks to evaluate (default: all)");
    t.add_choice("split", &split, {"train", "validation", "test"}, "which split");
    t.add("eval_batch", &batch, "sequences per forward");
    t.add("threads", &threads, "intra-op threads");
    t.set_version(bora::build_info);
    if (!t.parse(argc, argv)) return 0;
    // A run folder knows its base model and dataset (its config.ini): --run alone suffices.
    if (!run.empty() && model_dir.empty()) model_dir = bora::run_option(run, "model");
    if (!run.empty() && data.empty()) data = bora::run_option(run, "data");
    BORA_CHECK(!model_dir.empty() && !data.empty(), ConfigError, "model and data must be set (or --run)");
    BORA_CHECK(run.empty() || adapter.empty(), ConfigError, "give --run or --adapter, not both");
    torch::set_num_threads(bora::threads_per_rank(threads, 1));
    auto model = bora::load_causal_lm(model_dir);
    bora::DatasetReader reader(data, tasks);
    reader.check_tokenizer(bora::Tokenizer::from_folder(model_dir).identity_hex(), model->shape().vocab_size);
    const int64_t pad = model->shape().pad_token_id;

    const std::vector<int64_t>& open = reader.open_tasks();
    std::vector<std::string> names, folders;
    std::vector<int64_t> rows;
    for (int64_t task : open) names.push_back(reader.manifest().tasks[size_t(task)].name);
    std::unique_ptr<bora::AdapterBank> bank;
    if (!run.empty()) {
      for (const auto& n : names) folders.push_back(bora::run_adapter_dir(run, n));
      const bool shared = std::filesystem::exists(run + "/adapters/shared");  // a tau = inf run: one adapter
      if (shared) folders.resize(1);
      bank = bora::load_adapters(folders, *model);
      for (size_t i = 0; i < names.size(); ++i) rows.push_back(shared ? 0 : int64_t(i));
    } else {
      if (!adapter.empty()) bank = bora::load_adapters({adapter}, *model);
      rows.assign(names.size(), 0);
    }
    bora::Evaluator eval(*model, reader, open, rows, batch, pad);
    bora::EvalSummary s = bora::summarize(eval.run(bank.get(), bora::parse_split(split)));
    std::printf("| task | %s tokens | perplexity |\n|---|---:|---:|\n", split.c_str());
    for (size_t i = 0; i < names.size(); ++i)
      std::printf("| %s | %lld | %.3f |\n", names[i].c_str(), static_cast<long long>(s.tasks[i].tokens), s.tasks[i].ppl());
    if (!json_out.empty()) {
      bora::OrderedJson j = {{"split", split}, {"macro_nll", s.macro_nll}, {"micro_nll", s.micro_nll},
                             {"tasks", bora::OrderedJson::object()}};
      for (size_t i = 0; i < names.size(); ++i)
        j["tasks"][names[i]] = {{"nll_sum", s.tasks[i].nll_sum}, {"tokens", s.tasks[i].tokens},
                                {"nll", s.tasks[i].nll()}, {"ppl", s.tasks[i].ppl()}};
      bora::write_json_file_atomic(json_out, j);
    }
    std::printf("| **overall (macro)** | | %.3f |\n| overall (micro) | | %.3f |\n", s.macro_ppl(), s.micro_ppl());
    return 0;
  });
}
