// HF PEFT's adapter_config.json for LoRA, read against one base model.
//
// PEFT 0.21.2's LoraConfig has some 40 fields. Each is either honoured exactly
// (r, lora_alpha, use_rslora, target_modules as a list or a regex, exclude_modules,
// layers_to_transform, layers_pattern, rank_pattern, alpha_pattern, lora_dropout),
// irrelevant to the function an adapter computes (metadata, initialisation-only
// and training-only fields), or refused with a ConfigError that names the field and
// says what bora cannot reproduce (use_dora, bias, lora_bias, modules_to_save,
// layer_replication, target_parameters, trainable_token_indices, init_lora_weights
// that rewrite the base weights, ...). docs/adapters.md has the table.
//
// The result says, for every decoder layer and adaptable linear layer (Site), the
// rank and scaling PEFT gives it, resolved exactly as PEFT resolves them:
//   target_modules list: the module name equals an entry or ends with "." + entry;
//     restricted to layers_to_transform (layer index found by layers_pattern);
//   target_modules string: re.fullmatch against the module name ("all-linear":
//     every nn.Linear but the output layer);
//   exclude_modules: the same rules, removing modules;
//   rank_pattern / alpha_pattern: the FIRST key (in file order) with
//     re.match("(.*\.)?(key)$", module name) gives that module's r / lora_alpha.
// Regexes are Python's `re` in PEFT and ECMAScript here: the same for the patterns
// people write (. * + ? | () [] ^ $ \d \.); a Python-only construct ((?P<name>...),
// lookbehind, inline flags) is a ConfigError naming the option.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "adapters/adapter_config.h"

namespace bora {

struct PeftLoraModule {
  int64_t r = 0;       // 0: PEFT does not adapt this module
  double scale = 0.0;  // its lora_alpha / r (lora_alpha / sqrt(r) with use_rslora)
};

struct PeftLoraConfig {
  std::string path;  // the adapter_config.json
  int64_t r = 0;     // the config's default r and lora_alpha
  double lora_alpha = 0;
  bool rslora = false;
  double dropout = 0;
  std::vector<std::array<PeftLoraModule, kNumSites>> modules;  // [layer][site]

  int64_t max_r() const;
  double default_scale() const;  // lora_alpha / r (or / sqrt(r))
  // The smallest untied lora bank that holds this adapter exactly: r = max_r over
  // the modules, s = default_scale, targets = every site adapted in some layer.
  // import_peft zero-pads each module's A/B to that rank and folds the module's
  // scale / s into its B (docs/adapters.md, "Importing").
  AdapterConfig bank_config() const;
};

// Reads <dir>/adapter_config.json (peft_type LORA) for `model`. ConfigError for
// an option bora does not reproduce, naming it; FormatError for a malformed file.
PeftLoraConfig read_peft_lora_config(const std::string& dir, const CausalLM& model);

// "model.decoder.layers.3.self_attn.q_proj": the HF module name of a site, which
// PEFT's target_modules and patterns match against.
std::string peft_module_name(const CausalLM& model, int layer, Site site);

}  // namespace bora
