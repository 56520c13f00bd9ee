#include "adapters/load.h"

#include <filesystem>

#include "adapters/export.h"
#include "core/error.h"
#include "core/json.h"
#include "core/options.h"

namespace bora {
namespace {
bool is_peft(const std::string& dir) { return std::filesystem::exists(dir + "/adapter_config.json"); }
}  // namespace

AdapterConfig adapter_config_of(const std::string& dir) {
  AdapterConfig c;
  if (is_peft(dir)) {
    const std::string path = dir + "/adapter_config.json";
    Json j = read_json_file(path);
    BORA_CHECK(j.value("peft_type", "") == "LORA", ConfigError, path, ": only LORA adapters are supported");
    c.preset = "lora";
    c.r = json_get<int64_t>(j, "r", path);
    c.alpha = json_get<double>(j, "lora_alpha", path);
    c.rslora = j.value("use_rslora", false);
    c.dropout = j.value("lora_dropout", 0.0);
    c.targets = json_get<std::vector<std::string>>(j, "target_modules", path);
    return c;
  }
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
  const AdapterConfig first = adapter_config_of(folders[0]);
  auto bank = std::make_unique<AdapterBank>(AdapterSpec::resolve(first, model.shape()), model.shape(),
                                            static_cast<int64_t>(folders.size()), model.device());
  for (size_t i = 0; i < folders.size(); ++i) {
    if (is_peft(folders[i])) import_peft(*bank, model, static_cast<int64_t>(i), folders[i]);
    else import_adapter(*bank, static_cast<int64_t>(i), folders[i]);
  }
  return bank;
}

}  // namespace bora
