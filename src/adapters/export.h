// One task's adapter on disk, three ways:
//
// 1. HF PEFT LoRA (lora preset only), loadable by PeftModel.from_pretrained:
//      <dir>/adapter_model.safetensors   metadata {"format": "pt"}; keys
//        base_model.model.model.decoder.layers.{i}.self_attn.q_proj.lora_A.weight [r, in]
//        base_model.model.model.decoder.layers.{i}.self_attn.q_proj.lora_B.weight [out, r]
//        (likewise k_proj, v_proj, out_proj; fc1/fc2 sit at ...layers.{i}.fc1...)
//      <dir>/adapter_config.json         peft_type LORA, r, lora_alpha, target_modules, ...
//    bora never folds q_proj's head_dim^-0.5 into W_q, so the exported q_proj
//    factors are exactly the ones PEFT multiplies before that scaling. Import
//    honours the LoraConfig options that PEFT applies (adapters/peft_config.h).
// 1b. HF PEFT VeRA, for a tied bank with ONE target module kind (PEFT shares one
//    vera_A/vera_B among all targets, bora draws one pair per kind):
//      base_model.vera_A [r, in], base_model.vera_B [out, r] (save_projection),
//      base_model.model.<module>.vera_lambda_d [r] (= u), .vera_lambda_b [out] (= s v)
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

// PEFT's LoRA: untied, unfused, training exactly A and B (what export_peft writes
// and import_peft reads).
bool is_plain_lora(const AdapterSpec& spec);
void export_peft(const AdapterBank& bank, const CausalLM& model, int64_t task, const std::string& dir,
                 const std::string& base_model_name);
// Any PEFT LoRA adapter whose largest rank is <= the bank's r and whose adapted
// layers are among the bank's targets: each module's A/B is zero-padded to the
// bank's rank, its scale folded into B (B * s_module / s_bank), and layers PEFT
// does not adapt get A = B = 0. The bank computes exactly what PEFT computes.
void import_peft(AdapterBank& bank, const CausalLM& model, int64_t task, const std::string& dir);
// Whether export_peft_vera can write this bank ("" = yes, else why not).
std::string peft_vera_obstacle(const AdapterSpec& spec);
void export_peft_vera(const AdapterBank& bank, const CausalLM& model, int64_t task, const std::string& dir,
                      const std::string& base_model_name);

void export_adapter(const AdapterBank& bank, int64_t task, const std::string& dir);
void import_adapter(AdapterBank& bank, int64_t task, const std::string& dir);

void export_merged(const CausalLM& model, const AdapterBank& bank, int64_t task,
                   const std::string& dir, torch::ScalarType dtype = torch::kFloat32);

// base_model_name_or_path for PEFT exports of a base model folder: the hub name
// that its config.json records as _name_or_path when that looks like "org/name"
// and is not a local path (a model downloaded from the hub, portable to any
// machine), else the folder's absolute path (so that AutoPeftModelForCausalLM
// finds the base from any working directory).
std::string peft_base_model_name(const std::string& model_dir);

// The PEFT key of a site's factor: "base_model.model.<weight key without .weight>.lora_A.weight".
std::string peft_key(const CausalLM& model, int layer, Site site, Factor f);

}  // namespace bora
