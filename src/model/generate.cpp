#include "model/generate.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace bora {
namespace {

// splitmix64 of (seed, draw): one uniform number in [0, 1) per sampling step.
double uniform01(uint64_t seed, uint64_t draw) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (draw + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

}  // namespace

int64_t sample_next(const torch::Tensor& logits_in, const SamplingOptions& o, uint64_t draw) {
  torch::Tensor logits = logits_in.to(torch::kFloat64).cpu();
  if (o.greedy) return logits.argmax().item<int64_t>();
  BORA_CHECK(o.temperature > 0, ConfigError, "temperature must be > 0, got ", o.temperature);
  BORA_CHECK(o.top_p > 0 && o.top_p <= 1, ConfigError, "top_p must be in (0, 1], got ", o.top_p);
  // Candidates in decreasing probability; top-k then top-p cut the tail.
  torch::Tensor probs = torch::softmax(logits / o.temperature, -1);
  auto sorted = probs.sort(/*dim=*/-1, /*descending=*/true);
  torch::Tensor p = std::get<0>(sorted), idx = std::get<1>(sorted);
  const int64_t V = p.size(0);
  int64_t keep = o.top_k > 0 ? std::min(o.top_k, V) : V;
  auto pa = p.accessor<double, 1>();
  double mass = 0;
  for (int64_t i = 0; i < keep; ++i) {
    mass += pa[i];
    if (mass >= o.top_p) {
      keep = i + 1;
      break;
    }
  }
  double total = 0;
  for (int64_t i = 0; i < keep; ++i) total += pa[i];
  double u = uniform01(o.seed, draw) * total, acc = 0;
  for (int64_t i = 0; i < keep; ++i) {
    acc += pa[i];
    if (u < acc) return idx[i].item<int64_t>();
  }
  return idx[keep - 1].item<int64_t>();
}

std::vector<int64_t> generate(CausalLM& model, const std::vector<int64_t>& prompt, const LinearAdapter* adapter,
                              const SamplingOptions& o) {
  BORA_CHECK(!prompt.empty(), ConfigError, "generate: the prompt is empty (it needs at least the bos token)");
  torch::NoGradGuard no_grad;
  std::vector<int64_t> ids = prompt, out;
  for (int64_t n = 0; n < o.max_new_tokens; ++n) {
    torch::Tensor t = torch::tensor(ids, torch::kLong).unsqueeze(0).to(model.device());
    torch::Tensor h = model.hidden(t, torch::ones_like(t), adapter);
    torch::Tensor logits = model.lm_head(h[0][int64_t(ids.size()) - 1]);
    const int64_t next = sample_next(logits, o, static_cast<uint64_t>(n));
    ids.push_back(next);
    out.push_back(next);
    if (next == o.stop_id) break;
  }
  return out;
}

}  // namespace bora
