// The OPT base model: an independent naive forward, causality, padding,
// checkpoint round trips (F32 bit-exact, F16/BF16 within dtype tolerance, sharded),
// target_nll against the full log-softmax, and every bad checkpoint input.
#include <gtest/gtest.h>
#include <torch/nn/functional/loss.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "model/causal_lm.h"
#include "model/hf_checkpoint.h"
#include "model/opt.h"
#include "model/safetensors.h"
#include "common/tiny_models.h"

namespace bora {
namespace {

using testing_util::tiny_opt;
using testing_util::tiny_opt_config;
namespace fs = std::filesystem;

std::string tmpdir(const std::string& name) {
  std::string d = ::testing::TempDir() + "/bora_opt_" + name;
  fs::remove_all(d);
  make_dirs(d);
  return d;
}

// A direct transcription of HF's OPTForCausalLM for ONE unpadded sequence, with
// explicit per-head loops and no shared code with the model's forward.
torch::Tensor naive_logits(OptForCausalLM& m, const torch::Tensor& ids1d) {
  const OptConfig& c = m.config();
  auto P = m.named_parameters();
  auto W = [&](const std::string& k) { return P["model.decoder." + k]; };
  auto lin = [&](const torch::Tensor& x, const std::string& k) {
    return torch::matmul(x, W(k + ".weight").t()) + W(k + ".bias");
  };
  auto ln = [&](const torch::Tensor& x, const std::string& k) {
    auto mu = x.mean(-1, true);
    auto var = (x - mu).pow(2).mean(-1, true);
    return (x - mu) / torch::sqrt(var + 1e-5) * W(k + ".weight") + W(k + ".bias");
  };
  const int64_t S = ids1d.size(0), H = c.num_attention_heads, hd = c.head_dim();
  torch::Tensor x = W("embed_tokens.weight").index_select(0, ids1d);
  if (c.has_projections()) x = torch::matmul(x, W("project_in.weight").t());
  x = x + W("embed_positions.weight").index_select(0, torch::arange(S) + 2);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    std::string p = "layers." + std::to_string(l) + ".";
    torch::Tensor res = x;
    torch::Tensor h = c.do_layer_norm_before ? ln(x, p + "self_attn_layer_norm") : x;
    torch::Tensor q = lin(h, p + "self_attn.q_proj") * std::pow(double(hd), -0.5);
    torch::Tensor k = lin(h, p + "self_attn.k_proj"), v = lin(h, p + "self_attn.v_proj");
    std::vector<torch::Tensor> heads;
    for (int64_t i = 0; i < H; ++i) {
      auto qi = q.slice(1, i * hd, (i + 1) * hd), ki = k.slice(1, i * hd, (i + 1) * hd);
      auto vi = v.slice(1, i * hd, (i + 1) * hd);
      auto s = torch::matmul(qi, ki.t());
      for (int64_t a = 0; a < S; ++a)
        for (int64_t b = a + 1; b < S; ++b) s[a][b] = -1e30;
      heads.push_back(torch::matmul(torch::softmax(s, 1), vi));
    }
    x = res + lin(torch::cat(heads, 1), p + "self_attn.out_proj");
    if (!c.do_layer_norm_before) x = ln(x, p + "self_attn_layer_norm");
    res = x;
    h = c.do_layer_norm_before ? ln(x, p + "final_layer_norm") : x;
    x = res + lin(torch::relu(lin(h, p + "fc1")), p + "fc2");
    if (!c.do_layer_norm_before) x = ln(x, p + "final_layer_norm");
  }
  if (c.has_final_layer_norm()) x = ln(x, "final_layer_norm");
  if (c.has_projections()) x = torch::matmul(x, W("project_out.weight").t());
  return torch::matmul(x, W("embed_tokens.weight").t());
}

class OptBothStyles : public ::testing::TestWithParam<bool> {};

TEST_P(OptBothStyles, MatchesNaiveReference) {
  torch::manual_seed(0);
  auto m = tiny_opt(GetParam());
  auto ids = torch::randint(0, 97, {11}, torch::kLong);
  auto got = m->logits(ids.unsqueeze(0), torch::ones({1, 11}, torch::kLong))[0];
  auto want = naive_logits(*m, ids);
  EXPECT_LT((got - want).abs().max().item<double>(), 1e-4);
  EXPECT_GT(want.abs().max().item<double>(), 0.1);  // not a trivially zero model
}

TEST_P(OptBothStyles, CausalityIsExact) {
  torch::manual_seed(1);
  auto m = tiny_opt(GetParam());
  auto ids = torch::randint(0, 97, {2, 12}, torch::kLong);
  auto mask = torch::ones_like(ids);
  auto base = m->logits(ids, mask);
  for (int64_t t : {0, 5, 10}) {
    auto ids2 = ids.clone();
    ids2.index_put_({torch::indexing::Slice(), t + 1}, (ids.select(1, t + 1) + 7) % 97);
    auto out = m->logits(ids2, mask);
    EXPECT_TRUE(torch::equal(out.slice(1, 0, t + 1), base.slice(1, 0, t + 1))) << "t = " << t;
    EXPECT_FALSE(torch::equal(out.slice(1, t + 1, t + 2), base.slice(1, t + 1, t + 2)));
  }
}

TEST_P(OptBothStyles, PaddingNeverChangesRealTokens) {
  torch::manual_seed(2);
  auto m = tiny_opt(GetParam());
  auto ids = torch::randint(3, 97, {1, 9}, torch::kLong);
  auto ref = m->logits(ids, torch::ones_like(ids))[0];
  const int64_t pad = 4, S = 9 + pad;
  // Right padding.
  auto r_ids = torch::full({1, S}, 1, torch::kLong), r_mask = torch::zeros({1, S}, torch::kLong);
  r_ids.slice(1, 0, 9).copy_(ids);
  r_mask.slice(1, 0, 9).fill_(1);
  EXPECT_LT((m->logits(r_ids, r_mask)[0].slice(0, 0, 9) - ref).abs().max().item<double>(), 1e-5);
  // Left padding: positions come from the mask, so nothing shifts.
  auto l_ids = torch::full({1, S}, 1, torch::kLong), l_mask = torch::zeros({1, S}, torch::kLong);
  l_ids.slice(1, pad).copy_(ids);
  l_mask.slice(1, pad).fill_(1);
  auto left = m->logits(l_ids, l_mask)[0];
  EXPECT_TRUE(torch::isfinite(left).all().item<bool>());
  EXPECT_LT((left.slice(0, pad) - ref).abs().max().item<double>(), 1e-5);
  // A mixed batch: one left-padded, one full row.
  auto b_ids = torch::cat({l_ids, torch::randint(3, 97, {1, S}, torch::kLong)});
  auto b_mask = torch::cat({l_mask, torch::ones({1, S}, torch::kLong)});
  EXPECT_LT((m->logits(b_ids, b_mask)[0].slice(0, pad) - ref).abs().max().item<double>(), 1e-5);
}

TEST_P(OptBothStyles, SaveLoadIsBitIdentical) {
  auto m = tiny_opt(GetParam());
  std::string dir = tmpdir(GetParam() ? "rt350" : "rt125");
  m->save_pretrained(dir, torch::kFloat32);
  auto loaded = std::dynamic_pointer_cast<OptForCausalLM>(load_causal_lm(dir));
  ASSERT_TRUE(loaded);
  auto a = m->named_parameters(), b = loaded->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& p : a) EXPECT_TRUE(torch::equal(p.value(), b[p.key()])) << p.key();
  for (const auto& p : b) EXPECT_FALSE(p.value().requires_grad()) << p.key();
  auto ids = torch::randint(0, 97, {2, 8}, torch::kLong);
  auto mask = torch::ones_like(ids);
  EXPECT_TRUE(torch::equal(m->logits(ids, mask), loaded->logits(ids, mask)));
  // HF writes F32 with 8-byte-aligned data: the loaded weights view the map directly.
  EXPECT_EQ(read_json_file(dir + "/config.json")["architectures"][0], "OPTForCausalLM");
}

TEST_P(OptBothStyles, HalfPrecisionCheckpointsLoadWithinTolerance) {
  auto m = tiny_opt(GetParam());
  auto ids = torch::randint(0, 97, {2, 8}, torch::kLong);
  auto mask = torch::ones_like(ids);
  auto ref = m->logits(ids, mask);
  for (auto [dtype, tol] : {std::pair{torch::kFloat16, 2e-2}, std::pair{torch::kBFloat16, 1.5e-1}}) {
    std::string dir = tmpdir(std::string("half") + (GetParam() ? "350" : "125") + c10::toString(dtype));
    m->save_pretrained(dir, dtype);
    auto st = SafetensorsFile::open(dir + "/model.safetensors");
    EXPECT_EQ(st.tensors()[0].dtype, to_st_dtype(dtype));
    auto loaded = load_causal_lm(dir);  // converted to float32 on load
    EXPECT_EQ(loaded->dtype(), torch::kFloat32);
    for (const auto& p : m->named_parameters()) {
      auto back = loaded->named_parameters()[p.key()];
      EXPECT_TRUE(torch::equal(back, p.value().to(dtype).to(torch::kFloat32))) << p.key();
    }
    double diff = (loaded->logits(ids, mask) - ref).abs().max().item<double>();
    EXPECT_LT(diff, tol) << c10::toString(dtype);
  }
}

INSTANTIATE_TEST_SUITE_P(Opt, OptBothStyles, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "PostLnProj" : "PreLn"; });

TEST(Opt, ParameterNamesAreHfKeys) {
  auto m = tiny_opt(true);
  auto names = m->named_parameters().keys();
  std::set<std::string> s(names.begin(), names.end());
  for (const char* k : {"model.decoder.embed_tokens.weight", "model.decoder.embed_positions.weight",
                        "model.decoder.project_in.weight", "model.decoder.project_out.weight",
                        "model.decoder.layers.1.self_attn.q_proj.weight",
                        "model.decoder.layers.0.self_attn.out_proj.bias",
                        "model.decoder.layers.1.self_attn_layer_norm.weight",
                        "model.decoder.layers.0.fc1.weight", "model.decoder.layers.0.fc2.bias",
                        "model.decoder.layers.0.final_layer_norm.bias"})
    EXPECT_TRUE(s.count(k)) << k;
  EXPECT_FALSE(s.count("model.decoder.final_layer_norm.weight"));  // post-LN: none
  EXPECT_EQ(m->named_parameters()["model.decoder.embed_positions.weight"].size(0), 64 + 2);
  auto pre = tiny_opt(false);
  EXPECT_TRUE(pre->named_parameters().contains("model.decoder.final_layer_norm.weight"));
  EXPECT_FALSE(pre->named_parameters().contains("model.decoder.project_in.weight"));
}

TEST(Opt, ShardedCheckpointEqualsSingleFile) {
  auto m = tiny_opt(false);
  std::string dir = tmpdir("sharded");
  NamedTensors a, b;
  Json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", Json::object()}};
  int i = 0;
  for (const auto& p : m->named_parameters()) {
    // Old-style keys without "model." in the second shard.
    bool second = (i++ % 2) == 1;
    std::string key = second ? p.key().substr(6) : p.key();
    (second ? b : a).emplace_back(key, p.value());
    index["weight_map"][key] = second ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors";
  }
  save_safetensors(dir + "/model-00001-of-00002.safetensors", a);
  save_safetensors(dir + "/model-00002-of-00002.safetensors", b);
  write_json_file_atomic(dir + "/model.safetensors.index.json", index);
  write_json_file_atomic(dir + "/config.json", m->config().to_json());
  auto loaded = load_causal_lm(dir);
  for (const auto& p : m->named_parameters())
    EXPECT_TRUE(torch::equal(p.value(), loaded->named_parameters()[p.key()])) << p.key();
}

TEST(Opt, UntiedLmHeadIsItsOwnParameter) {
  OptConfig c = tiny_opt_config(true);
  c.tie_word_embeddings = false;
  auto m = std::make_shared<OptForCausalLM>(c, torch::kFloat32);
  m->init_random(4, 0.2);
  auto P = m->named_parameters();
  ASSERT_TRUE(P.contains("lm_head.weight"));
  EXPECT_EQ(P["lm_head.weight"].sizes(), P["model.decoder.embed_tokens.weight"].sizes());
  auto ids = torch::randint(3, 97, {2, 7}, torch::kLong);
  auto mask = torch::ones_like(ids);
  auto h = m->hidden(ids, mask);
  EXPECT_TRUE(torch::allclose(m->logits(ids, mask), torch::matmul(h, P["lm_head.weight"].t())));
  std::string dir = tmpdir("untied");
  m->save_pretrained(dir, torch::kFloat32);
  EXPECT_EQ(read_json_file(dir + "/config.json")["tie_word_embeddings"], false);
  auto loaded = load_causal_lm(dir);
  EXPECT_TRUE(torch::equal(loaded->named_parameters()["lm_head.weight"], P["lm_head.weight"]));
  EXPECT_TRUE(torch::equal(loaded->logits(ids, mask), m->logits(ids, mask)));
}

// transformers' tie_weights at load, for tie_word_embeddings = true: a stored
// lm_head.weight equal to embed_tokens is tied, a different one is kept untied
// (HF warns), and a file with only lm_head.weight gives embed_tokens that tensor.
TEST(Opt, TiedConfigLoadsLikeTransformers) {
  auto m = tiny_opt(false);
  auto ids = torch::randint(3, 97, {2, 7}, torch::kLong);
  auto mask = torch::ones_like(ids);
  const std::string embed = "model.decoder.embed_tokens.weight";
  auto write = [&](const std::string& name, const std::function<void(NamedTensors*)>& edit) {
    std::string dir = tmpdir(name);
    m->save_pretrained(dir, torch::kFloat32);
    NamedTensors t;
    for (const auto& p : m->named_parameters()) t.emplace_back(p.key(), p.value());
    edit(&t);
    save_safetensors(dir + "/model.safetensors", t);
    return load_causal_lm(dir);
  };
  auto copy = write("tie_copy", [&](NamedTensors* t) {
    t->emplace_back("lm_head.weight", m->named_parameters()[embed].clone());
  });
  EXPECT_FALSE(copy->named_parameters().contains("lm_head.weight"));
  EXPECT_TRUE(torch::equal(copy->logits(ids, mask), m->logits(ids, mask)));

  torch::Tensor head = torch::randn_like(m->named_parameters()[embed]);
  auto differ = write("tie_differ", [&](NamedTensors* t) { t->emplace_back("lm_head.weight", head); });
  ASSERT_TRUE(differ->named_parameters().contains("lm_head.weight"));
  EXPECT_TRUE(torch::equal(differ->named_parameters()["lm_head.weight"], head));
  EXPECT_TRUE(torch::allclose(differ->logits(ids, mask), torch::matmul(m->hidden(ids, mask), head.t())));

  auto only_head = write("tie_head_only", [&](NamedTensors* t) {
    for (auto& [k, v] : *t)
      if (k == embed) k = "lm_head.weight";
  });
  EXPECT_TRUE(torch::equal(only_head->named_parameters()[embed], m->named_parameters()[embed]));
  EXPECT_TRUE(torch::equal(only_head->logits(ids, mask), m->logits(ids, mask)));
}

// The fused loss (hidden rows of the targets only, then the head, then a float32
// cross-entropy) against the formula it replaced: log_softmax over the FULL logits
// [B, S, V], then the target's entry, in float32 and double.
TEST(Opt, FusedTargetNllEqualsFullLogSoftmaxGather) {
  torch::manual_seed(3);
  auto m = tiny_opt(true);
  auto ids = torch::randint(3, 97, {2, 10}, torch::kLong);
  auto mask = torch::ones_like(ids);
  mask[1].slice(0, 7).fill_(0);  // row 1: 7 real tokens, right-padded
  auto targets = torch::zeros({2, 10}, torch::kBool);
  targets[0].slice(0, 3).fill_(true);  // prompt of 3 tokens in row 0
  targets[1].slice(0, 2, 7).fill_(true);
  // The positions as a batch builder lays them out by hand: b * 10 + t.
  std::vector<int64_t> flat;
  for (int64_t t = 3; t < 10; ++t) flat.push_back(t);
  for (int64_t t = 2; t < 7; ++t) flat.push_back(10 + t);
  TargetPositions given{torch::tensor(flat, torch::kLong), Padding::Right};
  EXPECT_TRUE(torch::equal(TargetPositions::from_mask(targets).flat, given.flat));

  auto nll = target_nll(*m, ids, mask, given);
  ASSERT_EQ(nll.scalar_type(), torch::kFloat32);
  // Telling the model the padding side changes nothing but who works it out.
  EXPECT_TRUE(torch::equal(nll, target_nll(*m, ids, mask, targets)));
  auto full = m->logits(ids, mask);  // [2, 10, V]
  auto old = -torch::log_softmax(full, -1).slice(1, 0, 9).gather(2, ids.slice(1, 1).unsqueeze(2)).squeeze(2);
  auto old64 = -torch::log_softmax(full.to(torch::kFloat64), -1).slice(1, 0, 9).gather(2, ids.slice(1, 1).unsqueeze(2)).squeeze(2);
  int checked = 0;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < 10; ++t) {
      if (!targets[b][t].item<bool>()) {
        EXPECT_EQ(nll[b][t].item<float>(), 0.0f) << b << "," << t;
        continue;
      }
      const double got = nll[b][t].item<double>();
      EXPECT_NEAR(got, old[b][t - 1].item<double>(), 1e-6) << b << "," << t;
      EXPECT_NEAR(got, old64[b][t - 1].item<double>(), 1e-6) << b << "," << t;
      EXPECT_GT(got, 0.1);  // a real loss, not a zero that would match anything
      ++checked;
    }
  EXPECT_EQ(checked, 12);

  // Gradients through the fused path equal those through the full formula.
  auto x = m->named_parameters()["model.decoder.layers.0.fc1.weight"];
  m->set_trainable(true);
  auto g_fused = torch::autograd::grad({target_nll(*m, ids, mask, given).sum()}, {x})[0];
  auto logp = torch::log_softmax(m->logits(ids, mask), -1).slice(1, 0, 9).gather(2, ids.slice(1, 1).unsqueeze(2)).squeeze(2);
  auto g_full = torch::autograd::grad({-(logp * targets.slice(1, 1)).sum()}, {x})[0];
  m->set_trainable(false);
  EXPECT_GT(g_full.abs().max().item<double>(), 1e-4);
  EXPECT_LT((g_fused - g_full).abs().max().item<double>(), 1e-6 * (1 + g_full.abs().max().item<double>()));
}

// The chunked head (head_nll over a frozen W) against autograd through the whole
// [N, V] logits: the NLL, the gradient of a weighted sum of it (each row's weight
// different, as the trainer's per-task weights are), with chunks of 1, 4 (a partial
// last one) and all rows, in float32 and bfloat16, and without grad.
TEST(Opt, ChunkedHeadNllEqualsAutogradOverAllLogits) {
  torch::manual_seed(5);
  const int64_t N = 13, H = 8, V = 37;
  auto weight = torch::randn({V, H});
  auto want = torch::randint(0, V, {N}, torch::kLong);
  auto base_rows = torch::randn({N, H});
  auto upstream = torch::rand({N}) + 0.5;
  namespace F = torch::nn::functional;
  auto reference = [&](torch::ScalarType dt) {
    auto rows = base_rows.to(dt).requires_grad_(true);
    auto nll = F::cross_entropy(torch::matmul(rows, weight.to(dt).t()).to(torch::kFloat32), want,
                                F::CrossEntropyFuncOptions().reduction(torch::kNone));
    auto g = torch::autograd::grad({(nll * upstream).sum()}, {rows})[0];
    return std::make_pair(nll.detach(), g.to(torch::kFloat32));
  };
  for (auto dt : {torch::kFloat32, torch::kBFloat16}) {
    const auto [want_nll, want_grad] = reference(dt);
    EXPECT_GT(want_nll.min().item<double>(), 0.01);
    EXPECT_GT(want_grad.abs().max().item<double>(), 0.1);
    // float32: reassociation only; bfloat16: the same roundings in another order.
    const double tol = dt == torch::kFloat32 ? 1e-5 : 2e-2;
    for (int64_t chunk : {int64_t{1}, int64_t{4}, N, int64_t{0}}) {
      auto rows = base_rows.to(dt).requires_grad_(true);
      auto nll = head_nll(rows, weight.to(dt), want, chunk);
      ASSERT_EQ(nll.scalar_type(), torch::kFloat32);
      EXPECT_LT((nll - want_nll).abs().max().item<double>(), tol * want_nll.abs().max().item<double>()) << "chunk " << chunk;
      auto g = torch::autograd::grad({(nll * upstream).sum()}, {rows})[0];
      ASSERT_EQ(g.scalar_type(), dt);
      EXPECT_LT((g.to(torch::kFloat32) - want_grad).abs().max().item<double>(),
                tol * want_grad.abs().max().item<double>())
          << "chunk " << chunk << " dtype " << dt;
      torch::NoGradGuard no_grad;
      EXPECT_TRUE(torch::allclose(head_nll(rows, weight.to(dt), want, chunk), nll, 0, 0));
    }
  }
  // A W that requires grad (pretraining) gets its gradient through plain autograd.
  auto w = weight.clone().requires_grad_(true);
  auto gw = torch::autograd::grad({head_nll(base_rows, w, want, 4).sum()}, {w})[0];
  auto w2 = weight.clone().requires_grad_(true);
  auto gw2 = torch::autograd::grad(
      {F::cross_entropy(torch::matmul(base_rows, w2.t()), want, F::CrossEntropyFuncOptions().reduction(torch::kSum))},
      {w2})[0];
  EXPECT_TRUE(torch::allclose(gw, gw2, 1e-5, 1e-6));
}

// A bfloat16 base: the loss still comes out in float32, close to the float32 base's.
TEST(Opt, TargetNllOfABfloat16BaseIsFloat32) {
  torch::manual_seed(4);
  auto m = tiny_opt(true);
  auto ids = torch::randint(3, 97, {2, 10}, torch::kLong);
  auto mask = torch::ones_like(ids);
  auto targets = torch::ones({2, 10}, torch::kBool);
  auto want = target_nll(*m, ids, mask, targets);
  m->to(torch::kBFloat16);
  auto got = target_nll(*m, ids, mask, targets);
  EXPECT_EQ(got.scalar_type(), torch::kFloat32);
  // bfloat16 keeps 8 significant bits: a relative error of a few 2^-8 per token.
  EXPECT_LT(((got - want).abs() / want.abs().clamp_min(1e-3)).slice(1, 1).max().item<double>(), 0.05);
}

// ---- bad input: one-line errors naming the file and the tensor ----------------------

class BadCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = tmpdir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    model = tiny_opt(false);
    model->save_pretrained(dir, torch::kFloat32);
    st = dir + "/model.safetensors";
  }
  // Runs the loader and returns the error text (fails the test if none is thrown).
  template <class E>
  std::string load_error() {
    try {
      load_causal_lm(dir);
    } catch (const E& e) {
      std::string w = e.what();
      EXPECT_EQ(w.find('\n'), std::string::npos) << w;
      return w;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "wrong exception type: " << e.what();
      return "";
    }
    ADD_FAILURE() << "no error";
    return "";
  }
  void rewrite(const NamedTensors& tensors) { save_safetensors(st, tensors); }
  NamedTensors params() {
    NamedTensors out;
    for (const auto& p : model->named_parameters()) out.emplace_back(p.key(), p.value());
    return out;
  }
  std::string dir, st;
  std::shared_ptr<OptForCausalLM> model;
};

#define EXPECT_HAS(text, part) EXPECT_NE((text).find(part), std::string::npos) << (text)

TEST_F(BadCheckpoint, MissingFiles) {
  fs::remove(st);
  EXPECT_HAS(load_error<IoError>(), "model.safetensors");
  fs::remove(dir + "/config.json");
  EXPECT_HAS(load_error<IoError>(), "config.json");
}

TEST_F(BadCheckpoint, TruncatedFile) {
  fs::resize_file(st, fs::file_size(st) - 100);
  auto w = load_error<FormatError>();
  EXPECT_HAS(w, "model.safetensors");
  EXPECT_HAS(w, "outside the data section");
}

TEST_F(BadCheckpoint, HeaderLengthPastEnd) {
  std::string bytes = read_file(st);
  uint64_t n = bytes.size();  // claims more header than the file holds
  std::memcpy(bytes.data(), &n, 8);
  write_file_atomic(st, bytes);
  EXPECT_HAS(load_error<FormatError>(), "header length");
  write_file_atomic(st, "abc");
  EXPECT_HAS(load_error<FormatError>(), "too short");
}

TEST_F(BadCheckpoint, BadJsonInHeaderAndConfig) {
  std::string bytes = read_file(st);
  bytes[8] = '[';
  bytes[9] = ',';
  write_file_atomic(st, bytes);
  EXPECT_HAS(load_error<FormatError>(), "invalid JSON");
  write_file_atomic(dir + "/config.json", "{\"model_type\": \"opt\",");
  EXPECT_HAS(load_error<FormatError>(), "config.json");
}

TEST_F(BadCheckpoint, UnknownDtype) {
  std::string bytes = read_file(st);
  size_t at = bytes.find("\"F32\"");
  bytes.replace(at, 5, "\"Q7_\"");
  write_file_atomic(st, bytes);
  auto w = load_error<FormatError>();
  EXPECT_HAS(w, "unknown dtype 'Q7_'");
  EXPECT_HAS(w, "tensor '");
}

TEST_F(BadCheckpoint, ShapeDisagreesWithConfig) {
  auto t = params();
  for (auto& [k, v] : t)
    if (k == "model.decoder.layers.1.fc1.weight") v = torch::zeros({48, 31});
  rewrite(t);
  auto w = load_error<FormatError>();
  EXPECT_HAS(w, "model.decoder.layers.1.fc1.weight");
  EXPECT_HAS(w, "config.json implies");
}

TEST_F(BadCheckpoint, MissingAndUnexpectedTensor) {
  auto t = params();
  t.erase(t.begin() + 3);
  std::string missing = params()[3].first;
  rewrite(t);
  EXPECT_HAS(load_error<FormatError>(), missing);
  t = params();
  t.emplace_back("model.decoder.layers.9.fc1.weight", torch::zeros({2}));
  rewrite(t);
  EXPECT_HAS(load_error<FormatError>(), "unexpected tensor 'model.decoder.layers.9.fc1.weight'");
}

TEST_F(BadCheckpoint, ConfigValuesChecked) {
  Json c = read_json_file(dir + "/config.json");
  c["num_attention_heads"] = 5;
  write_json_file_atomic(dir + "/config.json", c);
  EXPECT_HAS(load_error<ConfigError>(), "not divisible");
  c["num_attention_heads"] = 4;
  c["model_type"] = "llama";
  write_json_file_atomic(dir + "/config.json", c);
  EXPECT_HAS(load_error<ConfigError>(), "model_type 'llama'");
}

TEST(SafetensorsHeader, OverlapAndSizeChecks) {
  auto make = [](const std::string& json, size_t data) {
    std::string out(8, '\0');
    uint64_t n = json.size();
    std::memcpy(out.data(), &n, 8);
    return out + json + std::string(data, '\0');
  };
  auto parse = [](const std::string& b) {
    return parse_st_header(reinterpret_cast<const uint8_t*>(b.data()), b.size(), "x.safetensors");
  };
  auto ok = make(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"format":"pt"}})", 8);
  auto h = parse(ok);
  EXPECT_EQ(h.tensors.size(), 1u);
  EXPECT_EQ(h.metadata.at("format"), "pt");
  EXPECT_THROW(parse(make(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8)), FormatError);
  EXPECT_THROW(parse(make(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8)), FormatError);
  EXPECT_THROW(parse(make(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8)), FormatError);
  EXPECT_THROW(parse(make(R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}})", 8)), FormatError);
  EXPECT_THROW(parse(make(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8)), FormatError);
  EXPECT_THROW(parse(make(R"([1,2])", 0)), FormatError);
  // Found by fuzz_safetensors: a number overflowing a double must be a FormatError...
  EXPECT_THROW(parse(make(R"({"a":1e999})", 0)), FormatError);
  // ...and an empty tensor sorted between two overlapping ones must not hide them.
  EXPECT_THROW(parse(make(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[0],"data_offsets":[8,8]},"c":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})", 16)), FormatError);
  EXPECT_NO_THROW(parse(make(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[0],"data_offsets":[8,8]},"c":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", 16)));
}

}  // namespace
}  // namespace bora
