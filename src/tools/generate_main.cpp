// bora-generate: samples text from the base model alone or through one task's
// adapter, to look at what a task learned.
//   bora-generate --run runs/tau10 --task art --prompt "A picture"   (the run's base model)
//   bora-generate --model base --adapter runs/tau10/adapters/art --greedy true
#include <torch/torch.h>

#include <iostream>

#include "adapters/load.h"
#include "core/error.h"
#include "core/json.h"
#include "core/main.h"
#include "core/options.h"
#include "data/manifest.h"
#include "dist/world.h"
#include "model/generate.h"
#include "model/tokenizer.h"
#include "train/run_folder.h"

namespace {

struct GenerateConfig {
  std::string model, adapter, run, task, prompt;
  bool raw = false;
  int64_t samples = 1;
  int threads = 0;
  bora::SamplingOptions sampling;
  int64_t seed = 0;

  void declare(bora::OptionTable& t) {
    t.group("what to sample from");
    t.add("model", &model, "HF base model folder (default with --run: the run's)");
    t.add("adapter", &adapter, "an exported adapter folder (PEFT or bora format); empty = the base model alone");
    t.add("run", &run, "a bora-train run folder: with --task, uses its adapter and the dataset's prompt template");
    t.add("task", &task, "a task of --run");
    t.add("prompt", &prompt, "text to continue");
    t.add("raw", &raw, "use --prompt as is (no task prompt template)");
    t.add("threads", &threads, "intra-op threads");
    t.group("sampling");
    t.add("max_new_tokens", &sampling.max_new_tokens, "tokens to generate");
    t.add("greedy", &sampling.greedy, "take the most likely token every step");
    t.add("temperature", &sampling.temperature, "softmax temperature");
    t.add("top_k", &sampling.top_k, "sample among the k most likely tokens (0 = all)");
    t.add("top_p", &sampling.top_p, "sample within the smallest set of probability mass >= top_p");
    t.add("seed", &seed, "sampling seed (a seed reproduces a sample)");
    t.add("samples", &samples, "number of samples");
  }
};

// "{task}" and "{text}" substituted as data_prep does; templates may be quoted.
std::string fill(std::string tmpl, const std::string& key, const std::string& value) {
  if (tmpl.size() >= 2 && tmpl.front() == '"' && tmpl.back() == '"') tmpl = tmpl.substr(1, tmpl.size() - 2);
  size_t at = tmpl.find(key);
  return at == std::string::npos ? tmpl : tmpl.replace(at, key.size(), value);
}

}  // namespace

int main(int argc, char** argv) {
  return bora::guarded_main("bora-generate", [&] {
    GenerateConfig c;
    bora::OptionTable table("bora-generate", "Samples text from a base model, alone or through a task's adapter.");
    c.declare(table);
    table.set_version(bora::build_info);
    if (!table.parse(argc, argv)) return 0;
    // A run folder knows its base model (its config.ini): --run --task alone suffice.
    if (c.model.empty() && !c.run.empty()) c.model = bora::run_option(c.run, "model");
    BORA_CHECK(!c.model.empty(), ConfigError, "model is not set (give --model, or --run)");
    torch::set_num_threads(bora::threads_per_rank(c.threads, 1));
    auto model = bora::load_causal_lm(c.model);
    bora::Tokenizer tok = bora::Tokenizer::from_folder(c.model);

    std::string adapter = c.adapter, text = c.prompt;
    if (!c.run.empty()) {
      BORA_CHECK(!c.task.empty(), ConfigError, "--run needs --task");
      adapter = bora::run_adapter_dir(c.run, c.task);
      if (!c.raw) {
        // The training sequences' layout: prompt_template then text_template.
        const std::string data = bora::run_option(c.run, "data");
        bora::Manifest m = bora::Manifest::read(data);
        const std::string p = m.options.value("prompt_template", std::string("\" [task] {task}\""));
        const std::string t = m.options.value("text_template", std::string("\" [text] {text}\""));
        text = fill(p, "{task}", c.task) + fill(t, "{text}", c.prompt);
      }
    }
    std::unique_ptr<bora::AdapterBank> bank;
    std::unique_ptr<bora::LinearAdapter> bound;
    if (!adapter.empty()) {
      bank = bora::load_adapters({adapter}, *model);
      bound = bank->bind({0}, /*training=*/false);
    }
    std::vector<int64_t> prompt{tok.bos_id()};
    for (int32_t id : tok.encode(text)) prompt.push_back(id);
    c.sampling.stop_id = tok.eos_id();
    for (int64_t s = 0; s < c.samples; ++s) {
      c.sampling.seed = static_cast<uint64_t>(c.seed + s);
      std::vector<int64_t> out = bora::generate(*model, prompt, bound.get(), c.sampling);
      std::vector<int32_t> ids(out.begin(), out.end());
      if (!ids.empty() && ids.back() == tok.eos_id()) ids.pop_back();
      std::cout << (c.samples > 1 ? "--- sample " + std::to_string(s + 1) + "\n" : "") << c.prompt
                << tok.decode(ids, /*skip_special=*/true) << "\n";
    }
    return 0;
  });
}
