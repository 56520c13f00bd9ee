// Exported adapters back into a bank: reads the folder's own description
// (adapter_config.json for PEFT, bora_adapter.json for bora's format), rebuilds the
// AdapterConfig it was trained with, and imports the tensors.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "adapters/bank.h"

namespace bora {

// The adapter configuration an exported folder was made with, for `model` (PEFT:
// the smallest bank that holds it exactly, adapters/peft_config.h). ConfigError
// when the folder holds neither format.
AdapterConfig adapter_config_of(const std::string& dir, const CausalLM& model);

// A bank with one row per folder; row i is folders[i]. bora-format folders must
// share one configuration; PEFT folders may differ in rank and adapted layers (the
// bank holds the largest). Checks every key and shape against `model`.
std::unique_ptr<AdapterBank> load_adapters(const std::vector<std::string>& folders, const CausalLM& model);

// One exported adapter folder as a row [P] of a bank with `spec` (on the CPU): a
// PEFT adapter is padded and folded into it (import_peft: its rank <= spec.r, its
// layers among spec's targets), a bora-format folder must have spec's
// configuration. bora-train's init_adapter starts Theta and every task from it.
torch::Tensor import_row(const AdapterSpec& spec, const CausalLM& model, const std::string& dir);

}  // namespace bora
