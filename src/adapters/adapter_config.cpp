#include "adapters/adapter_config.h"

#include <cmath>
#include <set>

#include "core/error.h"
#include "core/options.h"

namespace bora {
namespace {

struct Preset {
  const char* name;
  bool tied;
  const char* trainable;
};
// The table of adapters.md (Tied-LoRA, Table 2).
constexpr Preset kPresets[] = {
    {"lora", false, "A,B"}, {"vera", true, "u,v"}, {"tl1", true, "A,u"},  {"tl2", true, "A,u,v"},
    {"tl3", true, "B"},     {"tl4", true, "B,u"},  {"tl5", true, "A,B"}, {"tl6", true, "A,B,u,v"},
};

std::vector<std::string> preset_names() {
  std::vector<std::string> out;
  for (const auto& p : kPresets) out.push_back(p.name);
  return out;
}

const Preset* find_preset(const std::string& name) {
  for (const auto& p : kPresets)
    if (name == p.name) return &p;
  return nullptr;
}

std::array<bool, 4> parse_trainable(const std::string& list) {
  std::array<bool, 4> t{};
  for (const auto& item : split_list(list)) {
    if (item == "A") t[0] = true;
    else if (item == "B") t[1] = true;
    else if (item == "u") t[2] = true;
    else if (item == "v") t[3] = true;
    else BORA_THROW(ConfigError, "adapter_trainable: '", item, "' is not one of A, B, u, v");
  }
  return t;
}

}  // namespace

const char* factor_name(Factor f) {
  static const char* names[] = {"lora_A", "lora_B", "lora_u", "lora_v"};
  return names[static_cast<int>(f)];
}

int64_t AdapterSlot::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

void AdapterConfig::declare(OptionTable& t) {
  t.group("adapter");
  t.add_choice("adapter", &preset, preset_names(), "adapter preset (see docs/adapters.md)");
  t.add("adapter_r", &r, "rank r of A [r, in] and B [out, r]");
  t.add("adapter_alpha", &alpha, "LoRA alpha: s = alpha / r (alpha / sqrt(r) with rslora)");
  t.add("adapter_dropout", &dropout, "dropout on the adapter input x while training");
  t.add("adapter_rslora", &rslora, "rank-stabilised scaling s = alpha / sqrt(r)");
  t.add("adapter_targets", &targets, "linear layers to adapt: q_proj,k_proj,v_proj,out_proj,fc1,fc2");
  t.add("adapter_fused_qkv", &fused_qkv,
        "one adapter for q,k,v jointly (A [r, d], B [3d, r]) as in the Tied-LoRA paper");
  t.add("adapter_trainable", &trainable, "override the preset's trainable set, e.g. A,B,u,v");
  t.add("adapter_tie", &tie, "override the preset's tying: none | layers");
  t.add("adapter_scale", &scale, "the scaling s: auto (alpha/r for lora, 1 for tied presets) or a number");
  t.add_choice("adapter_strategy", &strategy, kAdapterStrategyNames,
               "multi-task forward: gather+bmm, or one matmul per task segment (auto = gather)");
  t.add("adapter_seed", &seed, "seed of the frozen random matrices and the preset initialisation");
}

void AdapterConfig::validate() const {
  BORA_CHECK(find_preset(preset), ConfigError, "adapter: unknown preset '", preset,
             "' (lora, vera, tl1 ... tl6)");
  BORA_CHECK(r > 0, ConfigError, "adapter_r must be > 0, got ", r);
  BORA_CHECK(alpha > 0 && std::isfinite(alpha), ConfigError, "adapter_alpha must be > 0, got ", alpha);
  BORA_CHECK(dropout >= 0 && dropout < 1, ConfigError, "adapter_dropout must be in [0, 1), got ", dropout);
  BORA_CHECK(!targets.empty(), ConfigError, "adapter_targets is empty");
  for (const auto& t : targets)
    BORA_CHECK(site_from_name(t), ConfigError, "adapter_targets: unknown target module '", t,
               "' (q_proj, k_proj, v_proj, out_proj, fc1, fc2)");
  BORA_CHECK(tie.empty() || tie == "none" || tie == "layers", ConfigError, "adapter_tie: '", tie,
             "' is not none or layers");
  if (!trainable.empty()) {
    auto t = parse_trainable(trainable);
    BORA_CHECK(t[0] || t[1] || t[2] || t[3], ConfigError, "adapter_trainable names nothing");
  }
  if (scale != "auto") {
    double s = parse_double("adapter_scale", scale);
    BORA_CHECK(s > 0 && std::isfinite(s), ConfigError, "adapter_scale must be > 0, got ", scale);
  }
  if (fused_qkv) {
    std::set<std::string> s(targets.begin(), targets.end());
    BORA_CHECK(s.count("q_proj") && s.count("k_proj") && s.count("v_proj"), ConfigError,
               "adapter_fused_qkv needs q_proj, k_proj and v_proj in adapter_targets");
  }
}

AdapterSpec AdapterSpec::resolve(const AdapterConfig& c, const ModelShape& shape) {
  c.validate();
  const Preset* p = find_preset(c.preset);
  AdapterSpec s;
  s.preset = c.preset;
  s.r = c.r;
  s.dropout = c.dropout;
  s.alpha = c.alpha;
  s.rslora = c.rslora;
  s.tied = c.tie.empty() ? p->tied : c.tie == "layers";
  s.fused_qkv = c.fused_qkv;
  s.trainable = parse_trainable(c.trainable.empty() ? p->trainable : c.trainable);
  s.strategy = c.strategy;
  s.seed = static_cast<uint64_t>(c.seed);
  if (c.scale != "auto") s.scale = parse_double("adapter_scale", c.scale);
  else if (c.preset == "lora") s.scale = c.alpha / (c.rslora ? std::sqrt(double(c.r)) : double(c.r));
  else s.scale = 1.0;  // the Tied-LoRA paper's s for the tied family
  for (const auto& t : c.targets) {
    Site site = *site_from_name(t);
    s.sites[static_cast<int>(site)] = true;
    int64_t limit = std::min(shape.site_in[int(site)], shape.site_out[int(site)]);
    BORA_CHECK(c.r <= limit, ConfigError, "adapter_r = ", c.r, " is larger than ", t,
               "'s dimension ", limit, " (in ", shape.site_in[int(site)], ", out ",
               shape.site_out[int(site)], ")");
  }
  return s;
}

std::string AdapterSpec::describe() const {
  std::string sites_text, train_text;
  for (int i = 0; i < kNumSites; ++i)
    if (sites[i]) sites_text += std::string(sites_text.empty() ? "" : ",") + site_name(Site(i));
  const char* f[] = {"A", "B", "u", "v"};
  for (int i = 0; i < 4; ++i)
    if (trainable[i]) train_text += std::string(train_text.empty() ? "" : ",") + f[i];
  return cat(preset, " r=", r, " s=", scale, " on ", sites_text, fused_qkv ? " (fused qkv" : " (",
             fused_qkv ? ", " : "", tied ? "tied" : "untied", "; trains ", train_text, ")");
}

AdapterLayout AdapterLayout::build(const AdapterSpec& spec, const ModelShape& shape) {
  AdapterLayout L;
  auto add_unit = [&](std::string name, std::vector<Site> sites) {
    AdapterUnit u;
    u.name = std::move(name);
    u.in = shape.site_in[int(sites[0])];
    for (Site s : sites) u.out += shape.site_out[int(s)];
    u.sites = std::move(sites);
    L.units.push_back(std::move(u));
  };
  for (int i = 0; i < kNumSites; ++i) {
    Site s = Site(i);
    if (!spec.sites[i]) continue;
    if (spec.fused_qkv && (s == Site::K || s == Site::V)) continue;
    if (spec.fused_qkv && s == Site::Q) add_unit("qkv", {Site::Q, Site::K, Site::V});
    else add_unit(site_name(s), {s});
  }
  L.unit_of.assign(shape.num_layers, {});
  for (auto& row : L.unit_of) row.fill(-1);
  for (int u = 0; u < int(L.units.size()); ++u)
    for (auto& row : L.unit_of)
      for (Site s : L.units[u].sites) row[int(s)] = u;

  // Trainable slots first, in (unit, layer, factor) order, packed into the row.
  std::vector<AdapterSlot> frozen;
  for (int u = 0; u < int(L.units.size()); ++u) {
    const AdapterUnit& unit = L.units[u];
    for (int layer = -1; layer < shape.num_layers; ++layer) {
      for (Factor f : {Factor::A, Factor::B, Factor::U, Factor::V}) {
        bool matrix = f == Factor::A || f == Factor::B;
        // Tied matrices live at layer -1; untied matrices and all u, v per layer.
        if (layer == -1 && !(matrix && spec.tied)) continue;
        if (layer >= 0 && matrix && spec.tied) continue;
        bool train = spec.trains(f);
        if (!matrix && !train) continue;  // a frozen u or v is the constant 1
        AdapterSlot slot;
        slot.unit = u;
        slot.layer = layer;
        slot.factor = f;
        slot.trainable = train;
        slot.name = (layer >= 0 ? "layers." + std::to_string(layer) + "." : std::string()) +
                    unit.name + "." + factor_name(f);
        switch (f) {
          case Factor::A: slot.shape = {spec.r, unit.in}; break;
          case Factor::B: slot.shape = {unit.out, spec.r}; break;
          case Factor::U: slot.shape = {spec.r}; break;
          case Factor::V: slot.shape = {unit.out}; break;
        }
        if (train) {
          slot.offset = L.row_size;
          L.row_size += slot.numel();
          L.slots.push_back(slot);
        } else {
          slot.offset = L.shared_size;
          L.shared_size += slot.numel();
          frozen.push_back(slot);
        }
      }
    }
  }
  L.slots.insert(L.slots.end(), frozen.begin(), frozen.end());
  return L;
}

const AdapterSlot* AdapterLayout::find(int unit, int layer, Factor f) const {
  for (const auto& s : slots)
    if (s.unit == unit && s.factor == f && (s.layer == layer || s.layer == -1)) return &s;
  return nullptr;
}

}  // namespace bora
