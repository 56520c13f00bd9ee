#include "adapters/peft_config.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <optional>
#include <regex>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/options.h"

namespace bora {
namespace {

// A field's value that PEFT treats as "not set": null, false, "", [], {}.
bool unset(const Json& v) {
  return v.is_null() || (v.is_boolean() && !v.get<bool>()) || (v.is_string() && v.get<std::string>().empty()) ||
         ((v.is_array() || v.is_object()) && v.empty());
}

// Python's re.fullmatch / re.match("(.*\.)?(p)$") through ECMAScript regexes.
std::regex compile(const std::string& pattern, const std::string& option, const std::string& path) {
  try {
    return std::regex(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error&) {
    BORA_THROW(ConfigError, path, ": ", option, ": '", pattern,
               "' is not a regular expression bora can read (ECMAScript; Python-only constructs such as "
               "(?P<name>...), lookbehind or inline flags are not supported)");
  }
}

// Strings of a "list or string" field; `is_regex` says which it was.
std::vector<std::string> names_or_regex(const Json& v, const std::string& option, const std::string& path,
                                        bool* is_regex) {
  *is_regex = v.is_string();
  if (v.is_string()) return {v.get<std::string>()};
  BORA_CHECK(v.is_array(), FormatError, path, ": ", option, " is neither a list nor a string");
  std::vector<std::string> out;
  for (const auto& e : v) {
    BORA_CHECK(e.is_string(), FormatError, path, ": ", option, " holds a non-string entry ", e.dump());
    out.push_back(e.get<std::string>());
  }
  return out;
}

// PEFT's list rule: the name equals an entry or ends with "." + entry.
bool matches_list(const std::string& name, const std::vector<std::string>& entries) {
  for (const auto& e : entries)
    if (name == e || (name.size() > e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0 &&
                      name[name.size() - e.size() - 1] == '.'))
      return true;
  return false;
}

// The fields of PEFT 0.21.2's LoraConfig (and PeftConfig) that do not change the
// function a saved adapter computes: metadata, initialisation of a NEW adapter
// (the file holds the trained factors), training-only settings, and options that
// apply only to module kinds OPT does not have. Anything else that is set and
// neither honoured nor refused below is refused as unknown.
const std::set<std::string> kNoEffect = {
    "peft_type", "task_type", "base_model_name_or_path", "revision", "inference_mode", "auto_mapping",
    "peft_version",
    // initialisation and training only (init_lora_weights values that rewrite the base are refused below)
    "init_lora_weights", "loftq_config", "eva_config", "corda_config", "lora_ga_config", "lora_dropout",
    "velora_config",  // a custom backward for lora_A; the forward is plain LoRA
    "ensure_weight_tying",  // only ties modules_to_save / trainable tokens, both refused when set
    // PEFT sets fan_in_fan_out = False on nn.Linear (it is for GPT-2's Conv1D); OPT's layers are nn.Linear
    "fan_in_fan_out",
    // Megatron's parallel linear layers only; qalora_group_size only with use_qalora (refused)
    "megatron_config", "megatron_core", "qalora_group_size", "runtime_config"};

// Fields bora refuses when set, with why (one line each; docs/adapters.md).
const std::map<std::string, std::string> kRefused = {
    {"use_dora", "DoRA rescales every adapted weight's columns by a trained magnitude (lora_magnitude_vector), "
                 "which bora's adapters do not have"},
    {"lora_bias", "it adds a trained bias to lora_B, which bora's adapters do not have"},
    {"modules_to_save", "the adapter carries full trained copies of those modules, and bora's base is frozen"},
    {"trainable_token_indices", "the adapter carries trained embedding rows, and bora's base is frozen"},
    {"layer_replication", "it rebuilds the model with repeated decoder layers"},
    {"target_parameters", "it adapts raw nn.Parameters (MoE experts), not linear layers"},
    {"alora_invocation_tokens", "activated LoRA applies the adapter only after the invocation tokens"},
    {"use_qalora", "QALoRA pools the adapter input in groups"},
    {"use_bdlora", "BD-LoRA's factors are block-diagonal"},
    {"arrow_config", "Arrow routes between several LoRA experts per token"},
    {"kasa_config", "KaSA truncates the base weights' singular values and adds a trained diagonal"},
    {"monteclora_config", "MonteCLoRA samples the adapter stochastically"},
};


// Refuses, naming it, every field that changes the function in a way bora cannot
// compute, and every unknown field that is set.
void check_options(const Json& j, const std::string& path) {
  const std::string peft_type = j.value("peft_type", std::string());
  BORA_CHECK(peft_type == "LORA", ConfigError, path, ": peft_type ", peft_type.empty() ? "(missing)" : peft_type,
             ": bora imports LORA adapters only");
  if (j.contains("task_type") && !j["task_type"].is_null()) {
    const std::string task = j["task_type"].is_string() ? j["task_type"].get<std::string>() : j["task_type"].dump();
    BORA_CHECK(task == "CAUSAL_LM", ConfigError, path, ": task_type = ", task,
               ": the adapter is for another model head than a causal LM");
  }
  static const std::set<std::string> honoured = {"r", "lora_alpha", "use_rslora", "target_modules",
                                                 "exclude_modules", "layers_to_transform", "layers_pattern",
                                                 "rank_pattern", "alpha_pattern", "bias"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    if (honoured.count(key) || kNoEffect.count(key)) continue;
    auto refused = kRefused.find(key);
    if (refused != kRefused.end())
      BORA_CHECK(unset(it.value()), ConfigError, path, ": ", key, " = ", it.value().dump(), " is not supported: ",
                 refused->second);
    else
      BORA_CHECK(unset(it.value()), ConfigError, path, ": unknown option ", key, " = ", it.value().dump(),
                 " (bora knows PEFT 0.21.2's LoraConfig) may change what the adapter computes");
  }
  const std::string bias = j.value("bias", std::string("none"));
  BORA_CHECK(bias == "none", ConfigError, path, ": bias = ", bias,
             " is not supported: the adapter carries trained biases of the base model, and bora's base is frozen");
  if (j.contains("init_lora_weights") && j["init_lora_weights"].is_string()) {
    const std::string init = j["init_lora_weights"].get<std::string>();
    for (const char* rewrites : {"pissa", "olora", "corda", "loftq", "lora_ga"})
      BORA_CHECK(init.rfind(rewrites, 0) != 0, ConfigError, path, ": init_lora_weights = ", init,
                 " is not supported: PEFT rewrites the base weights when it loads such an adapter (convert it to "
                 "plain LoRA with save_pretrained(..., path_initial_model_for_weight_conversion=...))");
  }
}

// PEFT's check_target_module_exists: target_modules, exclude_modules,
// layers_to_transform and layers_pattern decide whether a module is adapted.
class TargetRule {
 public:
  TargetRule(const Json& j, const std::string& path) {
    BORA_CHECK(j.contains("target_modules") && !j["target_modules"].is_null(), ConfigError, path,
               ": target_modules is not set (PEFT would pick its default for the model; name the modules)");
    bool target_regex = false, exclude_regex = false;
    targets_ = names_or_regex(j["target_modules"], "target_modules", path, &target_regex);
    if (j.contains("exclude_modules") && !unset(j["exclude_modules"]))
      excludes_ = names_or_regex(j["exclude_modules"], "exclude_modules", path, &exclude_regex);
    std::string lowered = targets_.empty() ? "" : targets_[0];
    std::transform(lowered.begin(), lowered.end(), lowered.begin(), [](unsigned char c) { return std::tolower(c); });
    all_linear_ = target_regex && lowered == "all-linear";  // PEFT compares it lower-cased
    if (target_regex && !all_linear_) target_re_ = compile(targets_[0], "target_modules", path);
    if (exclude_regex) exclude_re_ = compile(excludes_[0], "exclude_modules", path);

    if (j.contains("layers_to_transform") && !j["layers_to_transform"].is_null()) {
      const Json& v = j["layers_to_transform"];
      BORA_CHECK(!target_regex, ConfigError, path, ": layers_to_transform cannot be used when target_modules is a "
                 "string (PEFT refuses it too)");
      layers_ = v.is_number_integer() ? std::vector<int64_t>{v.get<int64_t>()}
                                      : json_get<std::vector<int64_t>>(j, "layers_to_transform", path);
      use_layers_ = !(v.is_array() && v.empty());
    }
    if (!use_layers_) return;
    // How PEFT finds a module's layer index: the first "<name>.<digits>." (or
    // "<layers_pattern>.<digits>.") in its name.
    std::vector<std::string> patterns;
    if (j.contains("layers_pattern") && !unset(j["layers_pattern"])) {
      bool unused = false;
      patterns = names_or_regex(j["layers_pattern"], "layers_pattern", path, &unused);
    }
    if (patterns.empty()) layer_res_.push_back(compile(R"(.*?\.[^.]*\.(\d+)\..*)", "layers_pattern", path));
    for (const auto& p : patterns)
      layer_res_.push_back(compile("(?:^|.*?\\.)" + p + "\\.(\\d+)\\..*", "layers_pattern", path));
  }

  // `linear`: the module is an nn.Linear other than the output layer.
  bool adapts(const std::string& name, bool linear) const {
    if (exclude_re_ ? std::regex_match(name, *exclude_re_) : matches_list(name, excludes_)) return false;
    if (all_linear_) return linear;
    if (target_re_) return std::regex_match(name, *target_re_);
    if (!matches_list(name, targets_)) return false;
    if (!use_layers_) return true;
    for (const auto& re : layer_res_) {
      std::smatch m;
      if (std::regex_match(name, m, re))
        return std::find(layers_.begin(), layers_.end(), std::stoll(m[1].str())) != layers_.end();
    }
    return false;
  }

 private:
  std::vector<std::string> targets_, excludes_;
  std::optional<std::regex> target_re_, exclude_re_;
  bool all_linear_ = false, use_layers_ = false;
  std::vector<int64_t> layers_;
  std::vector<std::regex> layer_res_;
};

// rank_pattern or alpha_pattern: the first key in FILE order (PEFT iterates the
// dict) with re.match("(.*\.)?(key)$", name) gives the value; hence an
// order-preserving parse.
class PatternMap {
 public:
  PatternMap(const OrderedJson& j, const char* option, const std::string& path) {
    if (!j.contains(option) || j[option].is_null()) return;
    BORA_CHECK(j[option].is_object(), FormatError, path, ": ", option, " is not an object");
    for (auto it = j[option].begin(); it != j[option].end(); ++it) {
      BORA_CHECK(it.value().is_number() && it.value().get<double>() > 0, FormatError, path, ": ", option, " '",
                 it.key(), "' is not a positive number");
      entries_.emplace_back(compile("(.*\\.)?(" + it.key() + ")", option, path), it.value().get<double>());
    }
  }
  double lookup(const std::string& name, double fallback) const {
    for (const auto& [re, value] : entries_)
      if (std::regex_match(name, re)) return value;
    return fallback;
  }

 private:
  std::vector<std::pair<std::regex, double>> entries_;
};
}  // namespace

std::string peft_module_name(const CausalLM& model, int layer, Site site) {
  std::string w = model.site_weight_key(layer, site);
  return w.substr(0, w.size() - std::string(".weight").size());
}

int64_t PeftLoraConfig::max_r() const {
  int64_t r_max = 0;
  for (const auto& layer : modules)
    for (const auto& m : layer) r_max = std::max(r_max, m.r);
  return r_max;
}

double PeftLoraConfig::default_scale() const {
  return lora_alpha / (rslora ? std::sqrt(double(r)) : double(r));
}

AdapterConfig PeftLoraConfig::bank_config() const {
  AdapterConfig c;
  c.preset = "lora";
  c.r = max_r();
  c.rslora = rslora;
  c.dropout = dropout;
  // s = default_scale() for the bank's rank: alpha = s * r (s * sqrt(r) with rslora).
  c.alpha = c.r == r ? lora_alpha : default_scale() * (rslora ? std::sqrt(double(c.r)) : double(c.r));
  c.targets.clear();
  for (int i = 0; i < kNumSites; ++i) {
    bool any = false;
    for (const auto& layer : modules) any = any || layer[i].r > 0;
    if (any) c.targets.push_back(site_name(Site(i)));
  }
  return c;
}

PeftLoraConfig read_peft_lora_config(const std::string& dir, const CausalLM& model) {
  PeftLoraConfig out;
  out.path = dir + "/adapter_config.json";
  const std::string& path = out.path;
  const std::string text = read_file(path);
  const Json j = parse_json(text, path);
  BORA_CHECK(j.is_object(), FormatError, path, ": not a JSON object");
  check_options(j, path);
  out.r = json_get<int64_t>(j, "r", path);
  out.lora_alpha = json_get<double>(j, "lora_alpha", path);
  out.rslora = j.value("use_rslora", false);
  out.dropout = j.contains("lora_dropout") && j["lora_dropout"].is_number() ? j["lora_dropout"].get<double>() : 0.0;
  BORA_CHECK(out.r > 0 && out.lora_alpha > 0, ConfigError, path, ": r = ", out.r, " and lora_alpha = ",
             out.lora_alpha, " must be > 0");
  const TargetRule rule(j, path);
  const OrderedJson ordered = OrderedJson::parse(text);
  const PatternMap rank_pattern(ordered, "rank_pattern", path), alpha_pattern(ordered, "alpha_pattern", path);

  // The modules PEFT could target in this model: every module that owns a parameter
  // (HF names; bora's parameters carry them), plus lm_head (tied to the embeddings).
  std::set<std::string> all_modules = {"lm_head"};
  for (const auto& p : model.named_parameters()) {
    const std::string& name = p.key();
    for (size_t dot = name.find('.'); dot != std::string::npos; dot = name.find('.', dot + 1))
      all_modules.insert(name.substr(0, dot));
  }
  std::map<std::string, std::pair<int, Site>> sites;  // module name -> (layer, site)
  const int L = static_cast<int>(model.shape().num_layers);
  for (int l = 0; l < L; ++l)
    for (int i = 0; i < kNumSites; ++i) sites[peft_module_name(model, l, Site(i))] = {l, Site(i)};

  out.modules.assign(static_cast<size_t>(L), {});
  std::vector<std::string> others;  // adapted modules that are not sites
  for (const auto& name : all_modules) {
    auto s = sites.find(name);
    // OPT's nn.Linear layers besides the sites: project_in/out (opt-350m); lm_head is the output layer.
    const bool linear = s != sites.end() || name.find("project_") != std::string::npos;
    if (!rule.adapts(name, linear)) continue;
    if (s == sites.end()) {
      others.push_back(name);
      continue;
    }
    const double r_value = rank_pattern.lookup(name, double(out.r));
    BORA_CHECK(r_value == std::floor(r_value), FormatError, path, ": rank_pattern gives ", name, " r = ", r_value);
    PeftLoraModule& m = out.modules[static_cast<size_t>(s->second.first)][static_cast<int>(s->second.second)];
    m.r = static_cast<int64_t>(r_value);
    m.scale = alpha_pattern.lookup(name, out.lora_alpha) / (out.rslora ? std::sqrt(double(m.r)) : double(m.r));
  }
  BORA_CHECK(others.empty(), ConfigError, path, ": target_modules adapts ", others.front(),
             others.size() > 1 ? cat(" (and ", others.size() - 1, " more)") : std::string(),
             ", which bora cannot adapt (only q_proj, k_proj, v_proj, out_proj, fc1, fc2 of the decoder layers)");
  BORA_CHECK(out.max_r() > 0, ConfigError, path, ": target_modules ", j["target_modules"].dump(),
             " matches no adaptable layer of this ", model.shape().model_type, " model");
  return out;
}

}  // namespace bora
