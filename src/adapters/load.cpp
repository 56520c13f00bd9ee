#include "adapters/load.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "adapters/export.h"
#include "adapters/peft_config.h"
#include "core/error.h"
#include "core/json.h"
#include "core/options.h"

namespace bora {
namespace {
bool is_peft(const std::string& dir) { return std::filesystem::exists(dir + "/adapter_config.json"); }
}  // namespace

AdapterConfig adapter_config_of(const std::string& dir, const CausalLM& model) {
  AdapterConfig c;
  if (is_peft(dir)) return read_peft_lora_config(dir, model).bank_config();
  const std::string path = dir + "/bora_adapter.json";
  BORA_CHECK(std::filesystem::exists(path), ConfigError, "'", dir,
             "' holds no adapter (neither adapter_config.json nor bora_adapter.json)");
  Json j = read_json_file(path);
  c.preset = json_get<std::string>(j, "preset", path);
  c.r = json_get<int64_t>(j, "r", path);
  c.alpha = json_get<double>(j, "alpha", path);
  c.rslora = j.value("rslora", false);
  c.targets = json_get<std::vector<std::string>>(j, "targets", path);
  c.fused_qkv = j.value("fused_qkv", false);
  c.tie = json_get<bool>(j, "tied", path) ? "layers" : "none";
  std::string trainable;
  for (const auto& f : json_get<std::vector<std::string>>(j, "trainable", path))
    trainable += (trainable.empty() ? "" : ",") + f;
  c.trainable = trainable;
  c.scale = format_double(json_get<double>(j, "scale", path));
  c.seed = json_get<int64_t>(j, "seed", path);
  return c;
}

std::unique_ptr<AdapterBank> load_adapters(const std::vector<std::string>& folders, const CausalLM& model) {
  BORA_CHECK(!folders.empty(), ConfigError, "no adapter folders given");
  AdapterConfig first = adapter_config_of(folders[0], model);
  if (is_peft(folders[0])) {
    // PEFT adapters of one run may differ in rank and adapted layers (rank_pattern,
    // layers_to_transform): the bank takes the largest rank and every target, keeps
    // the first adapter's scale, and import_peft pads and folds the others into it.
    const double scale = AdapterSpec::resolve(first, model.shape()).scale;
    const int64_t r0 = first.r;
    for (size_t i = 1; i < folders.size(); ++i) {
      if (!is_peft(folders[i])) continue;  // import_adapter names the mismatch
      const AdapterConfig other = adapter_config_of(folders[i], model);
      first.r = std::max(first.r, other.r);
      for (const auto& t : other.targets)
        if (std::find(first.targets.begin(), first.targets.end(), t) == first.targets.end()) first.targets.push_back(t);
    }
    if (first.r != r0) first.alpha = scale * (first.rslora ? std::sqrt(double(first.r)) : double(first.r));
  }
  auto bank = std::make_unique<AdapterBank>(AdapterSpec::resolve(first, model.shape()), model.shape(),
                                            static_cast<int64_t>(folders.size()), model.device());
  for (size_t i = 0; i < folders.size(); ++i) {
    if (is_peft(folders[i])) import_peft(*bank, model, static_cast<int64_t>(i), folders[i]);
    else import_adapter(*bank, static_cast<int64_t>(i), folders[i]);
  }
  return bank;
}

torch::Tensor import_row(const AdapterSpec& spec, const CausalLM& model, const std::string& dir) {
  AdapterBank bank(spec, model.shape(), 1, torch::kCPU);
  if (is_peft(dir)) import_peft(bank, model, 0, dir);
  else import_adapter(bank, 0, dir);
  return bank.rows()[0].clone();
}

}  // namespace bora
