// The trainer against independent expectations: tasks do not interact at tau = 0,
// tau = inf is one adapter trained on the pooled data (and a large tau approaches
// it), theta_update = mean keeps Theta at the mean, evaluation equals a direct
// computation from log-probabilities, training learns on real text, outputs, every
// bad input of the issue, non-finite losses and priors, and a bfloat16 base that
// tracks the float32 run.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>

#include "bora/prior.h"
#include "core/error.h"
#include "core/json.h"
#include "data/dataset.h"
#include "data/dataset_writer.h"
#include "train_fixture.h"

namespace bora {
namespace {

using namespace train_test;

int64_t train_sequences(const std::string& data, const std::string& task = "") {
  int64_t n = 0;
  for (const auto& t : Manifest::read(data).tasks)
    if (task.empty() || t.name == task) n += t.split(Split::Train).sequences;
  return n;
}

double rel_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).norm() / b.norm()).item<double>();
}

// Full-batch runs: every step sees every training sequence, so a task's gradient
// does not depend on which other tasks share the run.
TrainConfig full_batch(const std::string& data, const std::string& run, int steps) {
  TrainConfig c = base_config(data, run);
  c.batch_size = train_sequences(data);
  c.max_steps = steps;
  return c;
}

TEST(Trainer, TauZeroTasksDoNotInteract) {
  const std::string data = fortunes_dataset();
  TrainConfig c = full_batch(data, "tau0_joint", 4);
  c.bora.tau = 0;
  SoloRank joint(c);
  for (int i = 0; i < 4; ++i) joint.trainer.step();
  for (size_t t = 0; t < joint.trainer.task_names().size(); ++t) {
    const std::string name = joint.trainer.task_names()[t];
    TrainConfig s = full_batch(data, "tau0_" + name, 4);
    s.bora.tau = 0;
    s.tasks = {name};
    s.batch_size = train_sequences(data, name);
    SoloRank solo(s);
    for (int i = 0; i < 4; ++i) solo.trainer.step();
    const torch::Tensor together = joint.trainer.bank().rows()[int64_t(t)];
    const torch::Tensor alone = solo.trainer.bank().rows()[0];
    EXPECT_LT(rel_diff(together, alone), 1e-5) << name;
    EXPECT_GT(rel_diff(together, solo.trainer.theta()), 1e-3) << name << " did not move";
  }
}

// A copy of `data` whose tasks are pooled into one task "pooled" (same sequences).
std::string pooled_copy(const std::string& data, const std::string& name) {
  Manifest info = Manifest::read(data);
  DatasetReader reader(data, {});
  TaskSequences pooled;
  pooled.name = pooled.source_name = "pooled";
  Sequence seq;
  for (Split split : kAllSplits)
    for (int64_t t : reader.open_tasks())
      for (int64_t i = 0; i < reader.size(t, split); ++i) {
        reader.read(t, split, i, &seq);
        pooled.splits[int(split)].add(seq.tokens.data(), int64_t(seq.tokens.size()), seq.prompt_len, i, false);
      }
  pooled.rows = pooled.documents();
  std::string out = scratch(name) + "/data";
  DatasetWriteOptions o;
  o.overwrite = true;
  DatasetWriter w(out, info, o);
  w.add_task(pooled);
  w.finish();
  return out;
}

TEST(Trainer, TauInfIsOneAdapterOnThePooledData) {
  // No task prompt: the pooled copy then holds exactly the same token sequences.
  const std::string data = make_dataset("noprompt", {"food", "kids", "magic", "pets"}, "");
  const std::string pooled = pooled_copy(data, "pooled");
  TrainConfig u = full_batch(data, "tauinf", 5);
  u.bora.tau = INFINITY;
  u.bora.likelihood_weight = LikelihoodWeight::Tokens;  // sum_d T_d * mean-NLL_d = the pooled NLL sum
  SoloRank unified(u);
  EXPECT_EQ(unified.trainer.bank().num_tasks(), 1);
  EXPECT_FALSE(unified.trainer.theta().defined());
  TrainConfig p = full_batch(pooled, "pooled_run", 5);
  p.bora.tau = 0;
  p.bora.likelihood_weight = LikelihoodWeight::Tokens;
  p.bora.init_noise = 0;  // start at the preset init, as the unified adapter does
  SoloRank one(p);
  for (int i = 0; i < 5; ++i) {
    unified.trainer.step();
    one.trainer.step();
  }
  const torch::Tensor shared = unified.trainer.bank().rows()[0];
  EXPECT_LT(rel_diff(shared, one.trainer.bank().rows()[0]), 1e-5);
  EXPECT_GT(rel_diff(shared, unified.trainer.bank().preset_row()), 1e-2);  // it trained

  // A finite, growing tau pulls the theta_d onto one adapter: their spread around
  // Theta shrinks monotonically. (It does not retrace the tau = inf trajectory:
  // AdamW normalises each coupled copy on its own — docs/bora.md — which is why
  // tau = inf is a mode of its own and not a large number.)
  std::vector<double> spread;
  for (double tau : {1.0, 100.0, 1e4}) {
    TrainConfig c = full_batch(data, "taularge", 5);
    c.bora.tau = tau;
    c.bora.likelihood_weight = LikelihoodWeight::Tokens;
    SoloRank r(c);
    for (int i = 0; i < 5; ++i) r.trainer.step();
    spread.push_back(distance_to_theta(r.trainer.bank().rows(), r.trainer.theta()).mean().item<double>());
  }
  EXPECT_GT(spread[0], spread[1]);
  EXPECT_GT(spread[1], spread[2]);
  EXPECT_LT(spread[2], 0.5 * spread[0]);
}

TEST(Trainer, MeanUpdateKeepsThetaAtTheMeanOfTheTasks) {
  TrainConfig c = base_config(fortunes_dataset(), "mean");
  c.bora.tau = 10;
  c.bora.theta_update = ThetaUpdate::Mean;
  SoloRank r(c);
  EXPECT_EQ(r.trainer.theta_optimizer(), nullptr);
  for (int i = 0; i < 5; ++i) {
    r.trainer.step();
    const torch::Tensor mean = r.trainer.bank().rows().mean(0);
    EXPECT_LT((r.trainer.theta() - mean).abs().max().item<double>(), 1e-6) << "step " << i + 1;
  }
}

// One step from the same start, noncentered against adam: AdamW's first step is lr
// g / (|g| + eps) per element, so the rows take the same own step in both modes
// (delta_d's gradient is theta_d's), and non-centred every row then moves by the
// same vector as Theta: Theta_1 - Theta_0 (1 - lr wd), of size lr where Theta's
// gradient (the tasks' summed likelihood gradient) is not tiny. Weight decay is on,
// so a row decayed as theta_d instead of delta_d would show.
TEST(Trainer, NoncenteredStepMovesEveryTaskWithTheta) {
  auto make = [](const char* name, ThetaUpdate u) {
    TrainConfig c = base_config(fortunes_dataset(), name);
    c.bora.tau = 10;
    c.bora.theta_update = u;
    c.optim.weight_decay = 0.1;
    return c;
  };
  SoloRank adam(make("nc_adam", ThetaUpdate::Adam)), nc(make("nc_nc", ThetaUpdate::Noncentered));
  const torch::Tensor theta0 = nc.trainer.theta().clone();
  ASSERT_TRUE(torch::equal(adam.trainer.bank().rows(), nc.trainer.bank().rows()));
  adam.trainer.step();
  nc.trainer.step();
  const double lr = nc.trainer.config().optim.lr, wd = 0.1;
  const torch::Tensor shift = nc.trainer.theta() - theta0 * (1 - lr * wd);
  const torch::Tensor moved = nc.trainer.bank().rows() - adam.trainer.bank().rows();
  EXPECT_LT((moved - shift.unsqueeze(0)).abs().max().item<double>(), 1e-7);
  EXPECT_LE(shift.abs().max().item<double>(), lr * 1.001);  // float32 rounding of Theta (~1e-7)
  EXPECT_GT(shift.abs().median().item<double>(), 0.9 * lr);
  // adam moves Theta by its prior gradient instead: a different vector.
  EXPECT_GT((adam.trainer.theta() - nc.trainer.theta()).abs().max().item<double>(), 0.5 * lr);
}

// What noncentered is for: at a large tau the tasks must move together, and in the
// paper's coordinates AdamW cannot move them (each theta_d's step is dominated by
// the prior pulling it back to Theta, and Theta's by the theta_d), so a tau = 1e4
// run crawls where tau = inf learns. Non-centred, Theta follows the pooled gradient
// and the run keeps up with tau = inf.
TEST(Trainer, NoncenteredLargeTauKeepsPaceWithTauInf) {
  const std::string data = fortunes_dataset();
  auto run = [&](const char* name, double tau, ThetaUpdate u) {
    TrainConfig c = full_batch(data, name, 8);
    c.bora.tau = tau;
    c.bora.theta_update = u;
    SoloRank r(c);
    for (int i = 0; i < 8; ++i) r.trainer.step();
    return std::make_pair(r.trainer.bank().rows().mean(0), r.trainer.bank().preset_row());
  };
  const auto [shared, start] = run("pace_inf", INFINITY, ThetaUpdate::Adam);
  const double travelled = (shared - start).norm().item<double>();
  const double nc = (run("pace_nc", 1e4, ThetaUpdate::Noncentered).first - shared).norm().item<double>() / travelled;
  const double centred = (run("pace_adam", 1e4, ThetaUpdate::Adam).first - shared).norm().item<double>() / travelled;
  std::printf("distance to the tau = inf adapter after 8 steps, relative to its travel: noncentered %.3f, adam %.3f\n",
              nc, centred);
  EXPECT_LT(nc, 0.25);
  EXPECT_GT(centred, 0.75);
}

TEST(Trainer, EvaluationEqualsDirectLogProbabilities) {
  TrainConfig c = base_config(fortunes_dataset(), "eval");
  c.bora.tau = 1;
  c.eval_batch = 5;  // several micro-batches that mix tasks
  SoloRank r(c);
  for (int i = 0; i < 3; ++i) r.trainer.step();
  EvalSummary got = r.trainer.evaluate(Split::Validation);

  DatasetReader reader(c.data, {});
  Sequence seq;
  torch::NoGradGuard g;
  double macro = 0, total = 0;
  int64_t tokens = 0;
  for (size_t t = 0; t < r.trainer.task_names().size(); ++t) {
    const int64_t task = reader.task_index(r.trainer.task_names()[t]);
    double nll = 0;
    int64_t n = 0;
    for (int64_t i = 0; i < reader.size(task, Split::Validation); ++i) {
      reader.read(task, Split::Validation, i, &seq);
      torch::Tensor ids = torch::tensor(std::vector<int64_t>(seq.tokens.begin(), seq.tokens.end())).unsqueeze(0);
      auto adapter = r.trainer.bank().bind({int64_t(t)}, false);
      torch::Tensor logp = torch::log_softmax(r.trainer.model().logits(ids, torch::ones_like(ids), adapter.get())[0], -1);
      for (size_t j = size_t(seq.prompt_len); j < seq.tokens.size(); ++j, ++n)
        nll -= logp[int64_t(j) - 1][seq.tokens[j]].item<double>();
    }
    EXPECT_NEAR(got.tasks[t].ppl(), std::exp(nll / n), 1e-4 * std::exp(nll / n)) << r.trainer.task_names()[t];
    EXPECT_EQ(got.tasks[t].tokens, n);
    macro += nll / n;
    total += nll;
    tokens += n;
  }
  const double T = double(r.trainer.task_names().size());
  const double want_macro = std::exp(macro / T), want_micro = std::exp(total / double(tokens));
  EXPECT_NEAR(got.macro_ppl(), want_macro, 1e-4 * want_macro);
  EXPECT_NEAR(got.micro_ppl(), want_micro, 1e-4 * want_micro);
  EXPECT_NE(got.macro_ppl(), got.micro_ppl());
}

std::vector<Json> read_jsonl(const std::string& path) {
  std::vector<Json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(Json::parse(line));
  return out;
}

TEST(Trainer, LearnsOnRealTextAndWritesItsOutputs) {
  TrainConfig c = base_config(fortunes_dataset(), "learn");
  c.bora.tau = 10;
  c.epochs = 4;
  c.optim.lr = 1e-2;
  c.eval_base = true;
  SoloRank r(c);
  ASSERT_TRUE(r.trainer.run());
  Json res = read_json_file(c.run_dir + "/results.json");
  EXPECT_LT(res["validation"]["macro_ppl"].get<double>(), 0.9 * res["base_validation"]["macro_ppl"].get<double>());
  std::vector<double> nll;
  double cpu = 0;
  for (const auto& j : read_jsonl(c.run_dir + "/metrics.jsonl"))
    if (j.contains("nll")) {
      nll.push_back(j["nll"].get<double>());
      // The step's process CPU time: non-negative, at most (threads + 1) x its wall time.
      const double cpu_s = j.at("cpu_s").get<double>();
      EXPECT_GE(cpu_s, 0);
      EXPECT_LE(cpu_s, double(torch::get_num_threads() + 1) * j.at("step_s").get<double>() + 0.05);
      cpu += cpu_s;
    }
  EXPECT_GT(cpu, 0);
  ASSERT_GE(nll.size(), 8u);
  auto avg = [](auto b, auto e) { return std::accumulate(b, e, 0.0) / double(e - b); };
  EXPECT_LT(avg(nll.end() - 3, nll.end()), avg(nll.begin(), nll.begin() + 3) - 0.1);
  // Outputs: the table, every task's PEFT adapter, Theta, the resolved config.
  for (const auto& t : r.trainer.task_names()) {
    EXPECT_TRUE(fs::exists(c.run_dir + "/adapters/" + t + "/adapter_model.safetensors")) << t;
    EXPECT_TRUE(fs::exists(c.run_dir + "/adapters/" + t + "/adapter_config.json")) << t;
  }
  EXPECT_TRUE(fs::exists(c.run_dir + "/theta/adapter.safetensors"));
  EXPECT_TRUE(fs::exists(c.run_dir + "/results.md"));
  const double macro = res["validation"]["macro_nll"].get<double>();
  double sum = 0;
  for (const auto& t : res["tasks"]) sum += std::log(t["validation_ppl"].get<double>());
  EXPECT_NEAR(macro, sum / double(res["tasks"].size()), 1e-9);
}

TEST(Trainer, UnifiedRunExportsOneSharedAdapter) {
  TrainConfig c = base_config(fortunes_dataset(), "unified_out");
  c.bora.tau = INFINITY;
  c.max_steps = 2;
  c.adapter.preset = "tl6";
  SoloRank r(c);
  ASSERT_TRUE(r.trainer.run());
  EXPECT_TRUE(fs::exists(c.run_dir + "/adapters/shared/adapter.safetensors"));
  EXPECT_FALSE(fs::exists(c.run_dir + "/theta"));
  EXPECT_EQ(read_json_file(c.run_dir + "/results.json")["tau"], "inf");
}

// BORA_PROFILE: the named step is recorded by LibTorch's profiler into a chrome trace
// (bench/bench_peer.sh reads its ops when a claim fails).
TEST(Trainer, ProfileEnvironmentWritesATraceOfOneStep) {
  TrainConfig c = base_config(fortunes_dataset(), "profile");
  c.max_steps = 2;
  const std::string trace = c.run_dir + ".trace.json";
  fs::remove(trace);
  setenv("BORA_PROFILE", trace.c_str(), 1);
  setenv("BORA_PROFILE_STEP", "2", 1);
  {
    SoloRank r(c);
    ASSERT_TRUE(r.trainer.run());
  }
  unsetenv("BORA_PROFILE");
  unsetenv("BORA_PROFILE_STEP");
  ASSERT_TRUE(fs::exists(trace));
  std::ifstream in(trace);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("aten::"), std::string::npos) << text.substr(0, 500);
}

// ---- bad input -------------------------------------------------------------------

template <class E>
void expect_error(const std::function<void()>& fn, const std::string& part) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one mentioning '" << part << "'";
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong error type: " << e.what();
  }
}

TEST(Trainer, BadInputIsAClearError) {
  const std::string data = fortunes_dataset();
  TrainConfig c = base_config(data, "bad");
  c.bora.tau = -1;
  expect_error<ConfigError>([&] { c.validate(); }, "tau must be >= 0");
  c = base_config(data, "bad");
  c.optim.lr = 0;
  expect_error<ConfigError>([&] { c.validate(); }, "lr must be > 0");
  c = base_config(data, "bad");
  c.tasks = {"food", "nosuch"};
  expect_error<DataError>([&] { SoloRank r(c); }, "task 'nosuch' named in tasks is not in the dataset");
  c = base_config(data, "bad");
  c.batch_size = train_sequences(data) + 1;
  expect_error<ConfigError>([&] { SoloRank r(c); }, "batch_size");
  // A dataset made with another tokenizer (GPT-2's first 300 merges, not 400).
  c = base_config(make_dataset("othertok", {"magic"}, "\" [task] {task}\"", tiny_model_dir(300)), "bad");
  expect_error<DataError>([&] { SoloRank r(c); }, "tokenizer");
}

// A non-finite loss is found from the flag in the step's all-reduce buffer: the
// error names the step and the task, and the optimizer never runs on that step.
TEST(Trainer, NonFiniteLossNamesStepAndTask) {
  TrainConfig c = base_config(fortunes_dataset(), "nan");
  c.bora.tau = 0;
  c.batch_size = train_sequences(c.data);  // every task is in the first batch
  SoloRank r(c);
  {
    torch::NoGradGuard g;
    r.trainer.bank().rows()[2].fill_(NAN);
  }
  const torch::Tensor before = r.trainer.bank().rows().clone();
  expect_error<NumericError>([&] { r.trainer.step(); }, "non-finite loss at step 1 in task '" + r.trainer.task_names()[2] + "' (last good checkpoint: none)");
  EXPECT_EQ(r.trainer.global_step(), 0);
  for (int64_t t : {0, 1, 3}) EXPECT_TRUE(torch::equal(r.trainer.bank().rows()[t], before[t])) << "row " << t << " moved";
  EXPECT_EQ(r.trainer.rows_optimizer().steps(), 0);
}

TEST(Trainer, NonFinitePriorNamesStepAndTau) {
  TrainConfig c = base_config(fortunes_dataset(), "nan_prior");
  c.bora.tau = 10;
  SoloRank r(c);
  r.trainer.step();  // a good step first: the error names step 2
  {
    torch::NoGradGuard g;
    r.trainer.theta()[0] = INFINITY;  // R = inf; the likelihood stays finite
  }
  expect_error<NumericError>([&] { r.trainer.step(); }, "non-finite prior at step 2 (tau = 10; last good checkpoint: none)");
  EXPECT_EQ(r.trainer.global_step(), 1);
  EXPECT_EQ(r.trainer.rows_optimizer().steps(), 1);
}

TEST(Trainer, Float16IsRefusedOnTheCpu) {
  TrainConfig c = base_config(fortunes_dataset(), "fp16");
  c.device = DeviceKind::Cpu;
  c.dtype = torch::kFloat16;
  expect_error<ConfigError>([&] { SoloRank r(c); }, "dtype = float16 needs a CUDA device");
}

// Mixed precision: a bfloat16 base under float32 adapters, Theta, gradients, AdamW
// state and loss tracks the float32 run. The tolerances are PROVISIONAL, from
// bfloat16's 8-bit significand: set them from the printed differences with a
// margin (docs/architecture.md, "Precision").
TEST(Trainer, Bfloat16BaseTracksFloat32) {
  const int kSteps = 30;
  auto run = [&](const std::string& dtype, std::vector<double>* nll) {
    TrainConfig c = base_config(fortunes_dataset(), "precision_" + dtype);
    c.dtype = parse_name(kModelDtypeNames, "dtype", dtype);
    c.device = DeviceKind::Cpu;
    c.bora.tau = 10;
    c.max_steps = kSteps;
    auto r = std::make_unique<SoloRank>(c);
    EXPECT_EQ(r->trainer.model().dtype(), dtype == "bfloat16" ? torch::kBFloat16 : torch::kFloat32);
    for (int i = 0; i < kSteps; ++i) nll->push_back(r->trainer.step().nll);
    EXPECT_EQ(r->trainer.bank().rows().scalar_type(), torch::kFloat32);
    EXPECT_EQ(r->trainer.theta().scalar_type(), torch::kFloat32);
    EXPECT_EQ(r->trainer.rows_optimizer().exp_avg().scalar_type(), torch::kFloat32);
    return r;
  };
  std::vector<double> nll32, nll16;
  auto f32 = run("float32", &nll32);
  auto b16 = run("bfloat16", &nll16);
  double step_nll = 0;
  for (int i = 0; i < kSteps; ++i) step_nll = std::max(step_nll, std::abs(nll16[size_t(i)] - nll32[size_t(i)]) / nll32[size_t(i)]);
  const double val32 = f32->trainer.evaluate(Split::Validation).macro_nll;
  const double val16 = b16->trainer.evaluate(Split::Validation).macro_nll;
  const double val = std::abs(val16 - val32) / val32;
  const double rows = rel_diff(b16->trainer.bank().rows(), f32->trainer.bank().rows());
  const double moved = rel_diff(f32->trainer.bank().rows(), f32->trainer.bank().preset_row().unsqueeze(0).expand_as(f32->trainer.bank().rows()));
  std::printf("bf16 vs fp32 after %d steps: max relative step-NLL difference %.3g, validation macro NLL %.6f vs %.6f "
              "(relative %.3g), adapters' relative difference %.3g (fp32 adapters moved %.3g from the init)\n",
              kSteps, step_nll, val16, val32, val, rows, moved);
  // The bounds leave a 10-20x margin over the measured differences (docs/architecture.md,
  // "Precision").
  EXPECT_GT(moved, 0.1);    // it trained: the comparison is not between two idle runs
  EXPECT_GT(step_nll, 0.0);  // and bf16 really ran in bf16
  EXPECT_LT(step_nll, 2e-3);
  EXPECT_LT(val, 1e-3);
  EXPECT_LT(rows, 0.05);
}

}  // namespace
}  // namespace bora
