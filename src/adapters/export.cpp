#include "adapters/export.h"

#include <cmath>
#include <filesystem>
#include <regex>
#include <set>

#include "adapters/peft_config.h"
#include "model/hf_checkpoint.h"

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"

namespace bora {
namespace {

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

bool is_plain_lora(const AdapterSpec& s) {
  return !s.tied && !s.fused_qkv && s.trains(Factor::A) && s.trains(Factor::B) &&
         !s.trains(Factor::U) && !s.trains(Factor::V);
}

std::string peft_key(const CausalLM& model, int layer, Site site, Factor f) {
  return "base_model.model." + peft_module_name(model, layer, site) + "." + factor_name(f) + ".weight";
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
  // PEFT's scaling is lora_alpha / r (or / sqrt(r)); the bank's s may have been
  // set directly (adapter_scale), so lora_alpha is derived from s.
  const double denom = s.rslora ? std::sqrt(double(s.r)) : double(s.r);
  const double alpha = std::fabs(s.alpha / denom - s.scale) <= 1e-12 * s.scale ? s.alpha : s.scale * denom;
  Json config = {
      {"peft_type", "LORA"},           {"task_type", "CAUSAL_LM"},
      {"base_model_name_or_path", base_model_name},
      {"r", s.r},                      {"lora_alpha", alpha},
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
  const PeftLoraConfig cfg = read_peft_lora_config(dir, model);
  BORA_CHECK(cfg.max_r() <= s.r, ConfigError, cfg.path, ": rank ", cfg.max_r(), " does not fit this bank's r = ",
             s.r, " (adapter_r)");
  const std::string path = dir + "/adapter_model.safetensors";
  if (!std::filesystem::exists(path)) refuse_pickle_only(dir, "adapter_model.safetensors");
  SafetensorsFile f = SafetensorsFile::open(path);
  std::set<std::string> used;
  torch::NoGradGuard g;
  torch::Tensor row = bank.rows()[task];
  row.zero_();
  for (int layer = 0; layer < int(cfg.modules.size()); ++layer)
    for (int i = 0; i < kNumSites; ++i) {
      const PeftLoraModule& m = cfg.modules[size_t(layer)][i];
      if (m.r == 0) continue;
      const int unit = bank.layout().unit_of[size_t(layer)][i];
      BORA_CHECK(unit >= 0, ConfigError, cfg.path, ": the adapter adapts ", site_name(Site(i)),
                 ", which this bank's adapter_targets do not include");
      for (Factor fac : {Factor::A, Factor::B}) {
        const AdapterSlot& slot = bank.layout().slots[size_t(bank.slot_index(unit, layer, fac))];
        const std::string key = peft_key(model, layer, Site(i), fac);
        BORA_CHECK(f.contains(key), FormatError, path, ": missing tensor '", key, "' (", cfg.path,
                   " says this layer is adapted)");
        torch::Tensor t = f.tensor(key).to(torch::kFloat64);
        std::vector<int64_t> want = slot.shape;
        want[fac == Factor::A ? 0 : 1] = m.r;
        BORA_CHECK(t.sizes().vec() == want, FormatError, path, ": '", key, "' has shape ", t.sizes(),
                   ", this model and adapter_config.json need ", c10::IntArrayRef(want),
                   " (an adapter for another base model?)");
        // The module's scale relative to the bank's is folded into B; the rank
        // beyond m.r stays zero in both factors.
        if (fac == Factor::B) t = t * (m.scale / s.scale);
        torch::Tensor dst = AdapterBank::slot_view(row, slot);
        (fac == Factor::A ? dst.narrow(0, 0, m.r) : dst.narrow(1, 0, m.r)).copy_(t.to(torch::kFloat32));
        used.insert(key);
      }
    }
  for (const auto& t : f.tensors())
    BORA_CHECK(used.count(t.name), FormatError, path, ": unexpected tensor '", t.name,
               "' (not a lora_A/lora_B of a layer that ", cfg.path, " adapts; PEFT would silently ignore it)");
}

std::string peft_vera_obstacle(const AdapterSpec& s) {
  int units = 0;
  for (bool b : s.sites) units += b;
  if (!s.tied) return "PEFT's VeRA shares one A and one B across all layers; this adapter is untied";
  if (s.fused_qkv)
    return "PEFT's VeRA adapts q, k and v as separate layers; this adapter projects them jointly (fused_qkv)";
  if (units != 1)
    return "PEFT's VeRA shares ONE vera_A/vera_B among all target modules (sliced to each layer's size), while "
           "bora draws an independent pair per target module kind; only a single adapter_targets entry lines up";
  return "";
}

void export_peft_vera(const AdapterBank& bank, const CausalLM& model, int64_t task, const std::string& dir,
                      const std::string& base_model_name) {
  const AdapterSpec& s = bank.spec();
  const std::string obstacle = peft_vera_obstacle(s);
  BORA_CHECK(obstacle.empty(), ConfigError, "PEFT VeRA export of ", s.describe(), ": ", obstacle);
  make_dirs(dir);
  torch::NoGradGuard g;
  const AdapterLayout& L = bank.layout();
  const Site site = L.units[0].sites[0];
  // The tied A and B of the one unit (frozen: shared; trainable: this task's).
  auto tied = [&](Factor f) {
    const int i = bank.slot_index(0, 0, f);
    return bank.slot_param(i)[L.slots[size_t(i)].trainable ? task : 0].detach();
  };
  NamedTensors out = {{"base_model.vera_A", tied(Factor::A)}, {"base_model.vera_B", tied(Factor::B)}};
  for (int layer = 0; layer < int(bank.model_shape().num_layers); ++layer) {
    const std::string prefix = "base_model.model." + peft_module_name(model, layer, site) + ".";
    auto vec = [&](Factor f, int64_t n) {
      const int i = bank.slot_index(0, layer, f);
      return i < 0 ? torch::ones({n}) : bank.slot_param(i)[task].detach();  // a frozen u or v is 1
    };
    // h = W x + diag(lambda_b) B diag(lambda_d) A x: PEFT has no s, so it goes into lambda_b.
    out.emplace_back(prefix + "vera_lambda_b", vec(Factor::V, L.units[0].out) * s.scale);
    out.emplace_back(prefix + "vera_lambda_d", vec(Factor::U, s.r));
  }
  save_safetensors(dir + "/adapter_model.safetensors", out, {{"format", "pt"}});
  Json config = {{"peft_type", "VERA"},
                 {"task_type", "CAUSAL_LM"},
                 {"base_model_name_or_path", base_model_name},
                 {"r", s.r},
                 {"target_modules", {site_name(site)}},
                 {"projection_prng_key", 0},
                 {"save_projection", true},
                 {"vera_dropout", s.dropout},
                 {"d_initial", 0.1},
                 {"init_weights", true},
                 {"fan_in_fan_out", false},
                 {"bias", "none"},
                 {"inference_mode", true}};
  write_json_file_atomic(dir + "/adapter_config.json", config);
}

std::string peft_base_model_name(const std::string& model_dir) {
  namespace fs = std::filesystem;
  const std::string cfg = model_dir + "/config.json";
  if (fs::exists(cfg)) {
    const Json j = read_json_file(cfg);
    const std::string name = j.contains("_name_or_path") && j["_name_or_path"].is_string()
                                 ? j["_name_or_path"].get<std::string>() : "";
    static const std::regex hub(R"([A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+)");
    if (std::regex_match(name, hub) && name.find("..") == std::string::npos && !fs::exists(name)) return name;
  }
  fs::path p = fs::absolute(model_dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();  // "models/opt/" -> ".../models/opt"
  return p.string();
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
