// Adapter options, presets and the parameter layout they imply.
//
// Every adapted linear layer computes (Tied-LoRA, eq. 1)
//     h = W x + b + s * diag(v) B diag(u) A dropout(x)
// with A [r, in], B [out, r], u [r], v [out]. A preset says which of A, B, u, v are
// trainable and whether ONE A and ONE B serve every layer ("tied", per target
// module kind); u and v are always per layer. A frozen u or v is the constant 1 and
// is not stored; a frozen A or B is a random matrix shared by every task.
//
//   preset  tied  trainable     init (the model equals the base at step 0 and every
//   lora    no    A, B          trainable tensor gets a non-zero gradient within two
//   vera    yes   u, v          optimizer steps; see init rules in bank.cpp)
//   tl1     yes   A, u
//   tl2     yes   A, u, v
//   tl3     yes   B
//   tl4     yes   B, u
//   tl5     yes   A, B
//   tl6     yes   A, B, u, v
//
// `fused_qkv` is the Tied-LoRA paper's attention adapter: one A [r, d] projects the
// shared input of q, k and v, B is [3d, r] and v is [3d], split over q, k, v.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/options.h"
#include "model/causal_lm.h"

namespace bora {

// How a batch of many tasks runs through an adapted layer: gather every row's
// factors and batch the matmuls, or one matmul per task segment (auto = gather).
enum class AdapterStrategy { Auto, Gather, Segments };
inline const Names<AdapterStrategy> kAdapterStrategyNames = {
    {"auto", AdapterStrategy::Auto}, {"gather", AdapterStrategy::Gather}, {"segments", AdapterStrategy::Segments}};

// What the user writes (options adapter_*); validated and resolved into AdapterSpec.
struct AdapterConfig {
  std::string preset = "lora";
  int64_t r = 16;
  double alpha = 16;
  double dropout = 0.0;
  bool rslora = false;
  std::vector<std::string> targets{"q_proj", "v_proj"};
  bool fused_qkv = false;
  std::string trainable;         // "" = the preset's; else a subset of "A,B,u,v"
  std::string tie;               // "" = the preset's; else "none" | "layers"
  std::string scale = "auto";    // auto | a number (see AdapterSpec::scale)
  AdapterStrategy strategy = AdapterStrategy::Auto;  // multi-task forward
  int64_t seed = 1234;           // frozen random matrices and the preset init

  void declare(OptionTable& table);
  void validate() const;  // ConfigError naming the option
};

enum class Factor : int { A = 0, B = 1, U = 2, V = 3 };
const char* factor_name(Factor f);  // "lora_A", "lora_B", "lora_u", "lora_v"

// One group of linear layers that shares an adapter input: a single site, or
// q/k/v together under fused_qkv (out = 3 d).
struct AdapterUnit {
  std::string name;          // "q_proj", ..., or "qkv"
  std::vector<Site> sites;   // the sites whose outputs it feeds, in output order
  int64_t in = 0, out = 0;   // out = sum of the sites' out_features
};

// Where one tensor of the adapter lives. Trainable slots are per task and are
// packed into one row of P floats per task (offset/numel); frozen slots (shared
// random A or B) are stored once.
struct AdapterSlot {
  std::string name;            // checkpoint key: "layers.3.q_proj.lora_A" or "q_proj.lora_A" (tied)
  int unit = 0;                // index into units
  int layer = -1;              // -1 for a tied A/B serving every layer
  Factor factor = Factor::A;
  std::vector<int64_t> shape;  // per task (no leading task dimension)
  bool trainable = true;
  int64_t offset = 0;          // in the per-task row (trainable) or the shared buffer (frozen)
  int64_t numel() const;
};

// The resolved, validated adapter: everything the bank needs.
struct AdapterSpec {
  std::string preset;
  int64_t r = 16;
  double scale = 1.0;  // s: alpha / r (alpha / sqrt(r) with rslora) for lora, 1 for the tied family
  double alpha = 16;   // as configured (PEFT export writes lora_alpha)
  bool rslora = false;
  double dropout = 0.0;
  bool tied = false;
  bool fused_qkv = false;
  std::array<bool, 4> trainable{};  // by Factor
  std::array<bool, kNumSites> sites{};
  AdapterStrategy strategy = AdapterStrategy::Auto;
  uint64_t seed = 1234;

  static AdapterSpec resolve(const AdapterConfig& config, const ModelShape& shape);
  bool trains(Factor f) const { return trainable[static_cast<int>(f)]; }
  // A short description for logs: "lora r=16 s=1 on q_proj,v_proj (untied; trains A,B)".
  std::string describe() const;
};

struct AdapterLayout {
  std::vector<AdapterUnit> units;
  std::vector<AdapterSlot> slots;  // trainable first (row order), then frozen
  int64_t row_size = 0;            // P: trainable floats per task
  int64_t shared_size = 0;         // frozen floats stored once
  // For each layer and site: the unit that adapts it, or -1.
  std::vector<std::array<int, kNumSites>> unit_of;

  static AdapterLayout build(const AdapterSpec& spec, const ModelShape& shape);
  const AdapterSlot* find(int unit, int layer, Factor f) const;
};

}  // namespace bora
