// bora-export: one task's adapter of a run, written for other tools.
//   bora-export --run runs/tau10 --task art --merged out/art-merged   (an HF checkpoint, W + s B A folded in)
//   bora-export --run runs/tau10 --task art --peft out/art-peft       (PEFT LoRA, or PEFT VeRA for a tied
//                                                                      adapter with one target module)
//   bora-export --run runs/tau10 --task art --adapter out/art         (bora's own format)
//   bora-export --model base --from some_peft_adapter --merged out    (any adapter folder)
// docs/adapters.md describes the three formats.
#include <torch/torch.h>

#include <filesystem>

#include "adapters/export.h"
#include "adapters/load.h"
#include "core/error.h"
#include "core/log.h"
#include "core/main.h"
#include "core/options.h"
#include "dist/world.h"
#include "train/run_folder.h"

int main(int argc, char** argv) {
  return bora::guarded_main("bora-export", [&] {
    std::string run, task, model_dir, from, merged, peft, adapter;
    torch::Dtype dtype = torch::kFloat32;
    bora::OptionTable t("bora-export", "Writes one task's adapter of a run as a merged HF checkpoint, a PEFT adapter "
                                       "or a bora-format adapter.");
    t.group("input");
    t.add("run", &run, "a bora-train run folder");
    t.add("task", &task, "the task of --run whose adapter to export");
    t.add("model", &model_dir, "HF base model folder (default: the run's model, from its config.ini)");
    t.add("from", &from, "an adapter folder (PEFT or bora format) instead of --run/--task; needs --model");
    t.group("outputs (any of)");
    t.add("merged", &merged, "write an HF checkpoint with the adapter folded into the weights (+ the tokenizer)");
    t.add_choice("dtype", &dtype, bora::kModelDtypeNames, "dtype of the merged checkpoint's weights");
    t.add("peft", &peft, "write a PEFT adapter (LoRA; VeRA for a tied adapter with one target module)");
    t.add("adapter", &adapter, "write bora's own adapter format");
    t.set_version(bora::build_info);
    if (!t.parse(argc, argv)) return 0;
    BORA_CHECK(from.empty() != run.empty(), ConfigError, "give --run and --task, or --from (an adapter folder)");
    BORA_CHECK(run.empty() || !task.empty(), ConfigError, "--run needs --task");
    BORA_CHECK(!merged.empty() || !peft.empty() || !adapter.empty(), ConfigError,
               "nothing to write: give --merged, --peft and/or --adapter");
    if (model_dir.empty()) {
      BORA_CHECK(!run.empty(), ConfigError, "--from needs --model");
      model_dir = bora::run_option(run, "model");
    }
    const std::string dir = run.empty() ? from : bora::run_adapter_dir(run, task);
    torch::set_num_threads(bora::threads_per_rank(0, 1));
    auto model = bora::load_causal_lm(model_dir);
    auto bank = bora::load_adapters({dir}, *model);
    BORA_INFO("adapter ", bank->spec().describe(), " from ", dir);

    if (!merged.empty()) {
      bora::export_merged(*model, *bank, 0, merged, dtype);
      // The tokenizer travels with the weights, so the folder is a complete model.
      namespace fs = std::filesystem;
      for (const char* f : {"vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json",
                            "special_tokens_map.json", "generation_config.json"})
        if (fs::exists(model_dir + "/" + f))
          fs::copy_file(model_dir + "/" + f, merged + "/" + f, fs::copy_options::overwrite_existing);
      BORA_INFO("wrote the merged checkpoint ", merged, " (", bora::name_of(bora::kModelDtypeNames, dtype), ")");
    }
    if (!peft.empty()) {
      const bora::AdapterSpec& s = bank->spec();
      const std::string base = bora::peft_base_model_name(model_dir);
      if (s.tied) bora::export_peft_vera(*bank, *model, 0, peft, base);
      else bora::export_peft(*bank, *model, 0, peft, base);
      BORA_INFO("wrote the PEFT ", s.tied ? "VeRA" : "LoRA", " adapter ", peft, " (base ", base, ")");
    }
    if (!adapter.empty()) {
      bora::export_adapter(*bank, 0, adapter);
      BORA_INFO("wrote the bora adapter ", adapter);
    }
    return 0;
  });
}
