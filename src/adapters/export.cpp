#include "adapters/export.h"

#include <cmath>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"

namespace bora {
namespace {

bool is_plain_lora(const AdapterSpec& s) {
  return !s.tied && !s.fused_qkv && s.trains(Factor::A) && s.trains(Factor::B) &&
         !s.trains(Factor::U) && !s.trains(Factor::V);
}

std::vector<std::string> target_names(const AdapterSpec& s) {
  std::vector<std::string> out;
  for (int i = 0; i < kNumSites; ++i)
    if (s.sites[i]) out.push_back(site_name(Site(i)));
  return out;
}

// Copies `src` into the row slot of `task`, checking the shape first.
void load_slot(AdapterBank& bank, int64_t task, const AdapterSlot& slot, const torch::Tensor& src,
               const std::string& file, const std::string& key) {
  BORA_CHECK(src.sizes().vec() == slot.shape, FormatError, file, ": '", key, "' has shape ",
             src.sizes(), ", this model and adapter need ", c10::IntArrayRef(slot.shape),
             " (an adapter for another base model?)");
  torch::NoGradGuard g;
  AdapterBank::slot_view(bank.rows()[task], slot).copy_(src.to(torch::kFloat32));
}

}  // namespace

std::string peft_key(const CausalLM& model, int layer, Site site, Factor f) {
  std::string w = model.site_weight_key(layer, site);  // "...q_proj.weight"
  return "base_model.model." + w.substr(0, w.size() - std::string(".weight").size()) + "." +
         factor_name(f) + ".weight";
}

void export_peft(const AdapterBank& bank, const CausalLM& model, int64_t task, const std::string& dir,
                 const std::string& base_model_name) {
  const AdapterSpec& s = bank.spec();
  BORA_CHECK(is_plain_lora(s), ConfigError, "PEFT export needs the untied lora preset; ", s.describe(),
             " is written in bora's own format (export_adapter)");
  make_dirs(dir);
  NamedTensors out;
  for (const auto& slot : bank.layout().slots) {
    Site site = bank.layout().units[slot.unit].sites[0];
    out.emplace_back(peft_key(model, slot.layer, site, slot.factor),
                     AdapterBank::slot_view(bank.rows()[task], slot));
  }
  save_safetensors(dir + "/adapter_model.safetensors", out, {{"format", "pt"}});
  Json config = {
      {"peft_type", "LORA"},           {"task_type", "CAUSAL_LM"},
      {"base_model_name_or_path", base_model_name},
      {"r", s.r},                      {"lora_alpha", s.alpha},
      {"lora_dropout", s.dropout},     {"bias", "none"},
      {"target_modules", target_names(s)},
      {"fan_in_fan_out", false},       {"inference_mode", true},
      {"use_rslora", s.rslora},        {"use_dora", false},
  };
  write_json_file_atomic(dir + "/adapter_config.json", config);
}

void import_peft(AdapterBank& bank, const CausalLM& model, int64_t task, const std::string& dir) {
  const AdapterSpec& s = bank.spec();
  BORA_CHECK(is_plain_lora(s), ConfigError, "PEFT import needs the untied lora preset, not ", s.describe());
  const std::string cfg_path = dir + "/adapter_config.json";
  Json cfg = read_json_file(cfg_path);
  BORA_CHECK(json_get<std::string>(cfg, "peft_type", cfg_path) == "LORA", FormatError, cfg_path,
             ": peft_type is not LORA");
  int64_t r = json_get<int64_t>(cfg, "r", cfg_path);
  BORA_CHECK(r == s.r, FormatError, cfg_path, ": r = ", r, ", the bank has r = ", s.r);
  auto targets = json_get<std::vector<std::string>>(cfg, "target_modules", cfg_path);
  const std::vector<std::string> want = target_names(s);
  std::set<std::string> want_t(want.begin(), want.end());
  std::set<std::string> got_t(targets.begin(), targets.end());
  BORA_CHECK(want_t == got_t, FormatError, cfg_path, ": target_modules differ from the bank's adapter_targets");
  double alpha = json_get<double>(cfg, "lora_alpha", cfg_path);
  bool rslora = cfg.value("use_rslora", false);
  double scale = alpha / (rslora ? std::sqrt(double(r)) : double(r));
  BORA_CHECK(std::fabs(scale - s.scale) <= 1e-9 * s.scale, FormatError, cfg_path, ": scaling ", scale,
             " (lora_alpha ", alpha, ") differs from the bank's ", s.scale);

  const std::string path = dir + "/adapter_model.safetensors";
  SafetensorsFile f = SafetensorsFile::open(path);
  std::set<std::string> used;
  for (const auto& slot : bank.layout().slots) {
    Site site = bank.layout().units[slot.unit].sites[0];
    std::string key = peft_key(model, slot.layer, site, slot.factor);
    BORA_CHECK(f.contains(key), FormatError, path, ": missing tensor '", key, "'");
    load_slot(bank, task, slot, f.tensor(key), path, key);
    used.insert(key);
  }
  for (const auto& t : f.tensors())
    BORA_CHECK(used.count(t.name), FormatError, path, ": unexpected tensor '", t.name,
               "' (PEFT would silently ignore it)");
}

void export_adapter(const AdapterBank& bank, int64_t task, const std::string& dir) {
  const AdapterSpec& s = bank.spec();
  make_dirs(dir);
  save_safetensors(dir + "/adapter.safetensors", bank.task_tensors(task), {{"format", "bora-adapter"}});
  std::vector<std::string> trainable;
  const char* names[] = {"A", "B", "u", "v"};
  for (int i = 0; i < 4; ++i)
    if (s.trainable[i]) trainable.push_back(names[i]);
  const ModelShape& m = bank.model_shape();
  Json config = {{"format", "bora-adapter"}, {"version", 1},          {"preset", s.preset},
                 {"r", s.r},                 {"scale", s.scale},      {"alpha", s.alpha},
                 {"rslora", s.rslora},       {"tied", s.tied},        {"fused_qkv", s.fused_qkv},
                 {"trainable", trainable},   {"targets", target_names(s)},
                 {"seed", s.seed},
                 {"model", {{"model_type", m.model_type}, {"num_layers", m.num_layers},
                            {"hidden_size", m.hidden_size}}}};
  write_json_file_atomic(dir + "/bora_adapter.json", config);
}

void import_adapter(AdapterBank& bank, int64_t task, const std::string& dir) {
  const std::string cfg_path = dir + "/bora_adapter.json";
  Json cfg = read_json_file(cfg_path);
  BORA_CHECK(cfg.value("format", "") == "bora-adapter" && cfg.value("version", 0) == 1, FormatError,
             cfg_path, ": not a bora adapter (format/version)");
  const AdapterSpec& s = bank.spec();
  auto same = [&](const char* key, const Json& want) {
    BORA_CHECK(cfg.contains(key) && cfg[key] == want, FormatError, cfg_path, ": '", key, "' is ",
               cfg.contains(key) ? cfg[key].dump() : "missing", ", the bank has ", want.dump());
  };
  same("preset", s.preset);
  same("r", s.r);
  same("tied", s.tied);
  same("fused_qkv", s.fused_qkv);
  same("targets", target_names(s));
  const std::string path = dir + "/adapter.safetensors";
  SafetensorsFile f = SafetensorsFile::open(path);
  std::set<std::string> used;
  for (size_t i = 0; i < bank.layout().slots.size(); ++i) {
    const AdapterSlot& slot = bank.layout().slots[i];
    BORA_CHECK(f.contains(slot.name), FormatError, path, ": missing tensor '", slot.name, "'");
    torch::Tensor t = f.tensor(slot.name);
    used.insert(slot.name);
    if (slot.trainable) {
      load_slot(bank, task, slot, t, path, slot.name);
    } else {
      // Frozen matrices are shared by every task of the bank: they must agree.
      BORA_CHECK(t.sizes().vec() == slot.shape && torch::equal(t, bank.slot_param(int(i))[0].cpu()),
                 FormatError, path, ": frozen '", slot.name,
                 "' differs from this bank's (made with another adapter_seed?)");
    }
  }
  for (const auto& t : f.tensors())
    BORA_CHECK(used.count(t.name), FormatError, path, ": unexpected tensor '", t.name, "'");
}

void export_merged(const CausalLM& model, const AdapterBank& bank, int64_t task, const std::string& dir,
                   torch::ScalarType dtype) {
  torch::NoGradGuard g;
  std::map<std::string, torch::Tensor> merged;
  const ModelShape& m = bank.model_shape();
  for (int layer = 0; layer < m.num_layers; ++layer)
    for (int i = 0; i < kNumSites; ++i) {
      Site site = Site(i);
      if (bank.layout().unit_of[size_t(layer)][i] < 0) continue;
      torch::Tensor w = model.site_weight(layer, site);
      merged[model.site_weight_key(layer, site)] =
          (w.to(torch::kFloat32) + bank.delta_weight(task, layer, site).to(w.device())).to(w.scalar_type());
    }
  model.save_pretrained(dir, dtype, merged);
}

}  // namespace bora
