// One task's adapter on disk, three ways:
//
// 1. HF PEFT (lora preset only), loadable by PeftModel.from_pretrained:
//      <dir>/adapter_model.safetensors   metadata {"format": "pt"}; keys
//        base_model.model.model.decoder.layers.{i}.self_attn.q_proj.lora_A.weight [r, in]
//        base_model.model.model.decoder.layers.{i}.self_attn.q_proj.lora_B.weight [out, r]
//        (likewise k_proj, v_proj, out_proj; fc1/fc2 sit at ...layers.{i}.fc1...)
//      <dir>/adapter_config.json         peft_type LORA, r, lora_alpha, target_modules, ...
//    bora never folds q_proj's head_dim^-0.5 into W_q, so the exported q_proj
//    factors are exactly the ones PEFT multiplies before that scaling.
// 2. bora's own format for every preset (docs/adapters.md):
//      <dir>/adapter.safetensors         the task's tensors by slot name
//                                        ("layers.3.q_proj.lora_u", "q_proj.lora_A"),
//                                        frozen shared matrices included
//      <dir>/bora_adapter.json           format, version, preset, r, scale, tying, ...
// 3. A merged HF checkpoint: W + s diag(v) B diag(u) A folded into every adapted
//    weight, for serving without an adapter.
// Writers are atomic per file; readers check every key and shape against the bank
// and name the offending file and key.
#pragma once

#include <string>

#include "adapters/bank.h"

namespace bora {

void export_peft(const AdapterBank& bank, const CausalLM& model, int64_t task, const std::string& dir,
                 const std::string& base_model_name);
void import_peft(AdapterBank& bank, const CausalLM& model, int64_t task, const std::string& dir);

void export_adapter(const AdapterBank& bank, int64_t task, const std::string& dir);
void import_adapter(AdapterBank& bank, int64_t task, const std::string& dir);

void export_merged(const CausalLM& model, const AdapterBank& bank, int64_t task,
                   const std::string& dir, torch::ScalarType dtype = torch::kFloat32);

// The PEFT key of a site's factor: "base_model.model.<weight key without .weight>.lora_A.weight".
std::string peft_key(const CausalLM& model, int layer, Site site, Factor f);

}  // namespace bora
