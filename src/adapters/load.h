// Exported adapters back into a bank: reads the folder's own description
// (adapter_config.json for PEFT, bora_adapter.json for bora's format), rebuilds the
// AdapterConfig it was trained with, and imports the tensors.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "adapters/bank.h"

namespace bora {

// The adapter configuration an exported folder was made with (ConfigError when
// the folder holds neither format).
AdapterConfig adapter_config_of(const std::string& dir);

// A bank with one row per folder, all of which must share one configuration;
// row i is folders[i]. Checks every key and shape against `model`.
std::unique_ptr<AdapterBank> load_adapters(const std::vector<std::string>& folders, const CausalLM& model);

}  // namespace bora
