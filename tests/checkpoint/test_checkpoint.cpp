// Checkpoints in one process (world of one): a resumed run equals the uninterrupted
// run bit for bit (per-task, tau = inf and mean-update runs), a corrupt newest
// checkpoint falls back to the previous one, run-defining changes are refused and
// safe ones allowed, pruning keeps the newest K and the best, and a stop signal
// ends the run after a complete checkpoint. The multi-rank cases (kill -9, another
// world size, SIGTERM, read-only and full disks) are the shell tests beside this.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "checkpoint/checkpoint.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/options.h"
#include "train/train_fixture.h"

namespace bora {
namespace {

using train_test::base_config;
using train_test::fortunes_dataset;
namespace fs = std::filesystem;

// The resolved configuration, as bora-train writes it (what checkpoints compare).
std::string resolved_ini(TrainConfig c) {
  OptionTable t("test", "");
  c.declare(t);
  return t.to_ini();
}

struct Solo {
  explicit Solo(const TrainConfig& c) : trainer(c, resolved_ini(c), comm) {}
  LocalCommunicator comm;
  Trainer trainer;
};

TrainConfig config(const std::string& run, double tau = 10, const std::string& update = "adam") {
  TrainConfig c = base_config(fortunes_dataset(), run);
  fs::remove_all(c.run_dir);
  c.max_steps = 12;
  c.eval_every = 4;
  c.patience = 0;
  c.bora.tau = tau;
  c.bora.theta_update = update;
  return c;
}

// The final (best) adapters, Theta and the perplexities of a finished run.
struct Outcome {
  torch::Tensor rows, theta;
  Json results;
};
Outcome outcome(Solo& s) {
  Outcome o{s.trainer.bank().rows().clone(), s.trainer.theta().defined() ? s.trainer.theta().clone() : torch::Tensor(),
            read_json_file(s.trainer.config().run_dir + "/results.json")};
  return o;
}

void expect_identical(const Outcome& a, const Outcome& b) {
  EXPECT_TRUE(torch::equal(a.rows, b.rows)) << "adapters differ: max |diff| " << (a.rows - b.rows).abs().max().item<double>();
  if (a.theta.defined()) {
    EXPECT_TRUE(torch::equal(a.theta, b.theta));
  }
  EXPECT_EQ(a.results["validation"], b.results["validation"]);
  EXPECT_EQ(a.results["test"], b.results["test"]);
  EXPECT_EQ(a.results["best_step"], b.results["best_step"]);
  ASSERT_EQ(a.results["tasks"].size(), b.results["tasks"].size());
  for (size_t t = 0; t < a.results["tasks"].size(); ++t)
    EXPECT_EQ(a.results["tasks"][t]["test_ppl"], b.results["tasks"][t]["test_ppl"]) << t;
}

// Runs `c` to completion, interrupted by an exception after step `crash_at` (the
// injected failure of docs/distributed.md) and resumed with resume = auto.
Outcome run_interrupted(TrainConfig c, int crash_at) {
  ::setenv("BORA_TEST_FAIL_AT", ("0:" + std::to_string(crash_at)).c_str(), 1);
  {
    Solo first(c);
    EXPECT_THROW(first.trainer.run(), InternalError);
  }
  ::unsetenv("BORA_TEST_FAIL_AT");
  c.checkpoint.resume = "auto";
  Solo second(c);
  EXPECT_EQ(second.trainer.global_step(), (crash_at - 1) / c.checkpoint.every_steps * c.checkpoint.every_steps);
  EXPECT_TRUE(second.trainer.run());
  return outcome(second);
}

TEST(Checkpoint, ResolvedIniAndRunDefiningKeys) {
  auto a = parse_resolved_ini("# run\nmodel = m\ntau = 10\neval_every = 5\n\n[x]\nlr=0.001\n");
  EXPECT_EQ(a.size(), 4u);
  EXPECT_EQ(a["lr"], "0.001");
  auto b = a;
  b["eval_every"] = "7";  // safe
  b["run_dir"] = "elsewhere";
  EXPECT_TRUE(run_defining_differences(a, b).empty());
  b["tau"] = "100";
  b.erase("model");
  const auto d = run_defining_differences(a, b);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0], "model: 'm' -> '(absent)'");
  EXPECT_EQ(d[1], "tau: '10' -> '100'");
}

TEST(Checkpoint, ResumedRunIsBitIdenticalToUninterrupted) {
  struct Case { double tau; std::string update; };
  for (const Case& k : {Case{10, "adam"}, Case{INFINITY, "adam"}, Case{10, "mean"}}) {
    SCOPED_TRACE(cat("tau ", k.tau, " theta_update ", k.update));
    const std::string tag = cat(std::isinf(k.tau) ? "inf" : "10", "_", k.update);
    TrainConfig ref = config("ref_" + tag, k.tau, k.update);
    Solo whole(ref);
    ASSERT_TRUE(whole.trainer.run());
    const Outcome expected = outcome(whole);

    TrainConfig c = config("resumed_" + tag, k.tau, k.update);
    c.checkpoint.every_steps = 3;
    // A crash in step 8: the newest checkpoint is step 6's, and step 7 is redone.
    const Outcome got = run_interrupted(c, 8);
    expect_identical(expected, got);
    // The run folder records the resume.
    bool logged = false;
    std::ifstream metrics(c.run_dir + "/metrics.jsonl");
    for (std::string line; std::getline(metrics, line);)
      logged |= line.find("\"event\":\"resume\"") != std::string::npos && line.find("step_00000006") != std::string::npos;
    EXPECT_TRUE(logged);
  }
}

TEST(Checkpoint, LayoutIsCompleteAndInspectable) {
  TrainConfig c = config("layout");
  c.max_steps = 4;
  Solo s(c);
  ASSERT_TRUE(s.trainer.run());  // the end of training writes step 4
  const std::string dir = c.run_dir + "/checkpoints/step_00000004";
  ASSERT_TRUE(fs::exists(dir + "/COMPLETE"));
  Json meta = read_json_file(dir + "/meta.json");
  EXPECT_EQ(meta["format"], "bora-checkpoint");
  EXPECT_EQ(meta["step"], 4);
  EXPECT_EQ(meta["world_size"], 1);
  EXPECT_EQ(meta["adamw_steps"]["rows"], 4);
  EXPECT_EQ(meta["config"]["tau"], "10");
  EXPECT_EQ(meta["tasks"].size(), 4u);
  // Every file is in the table with its true size and digest.
  for (const auto& name : meta["tasks"]) {
    const std::string rel = "tasks/" + name.get<std::string>() + ".safetensors";
    ASSERT_TRUE(meta["files"].contains(rel)) << rel;
    const std::string bytes = read_file(dir + "/" + rel);
    EXPECT_EQ(meta["files"][rel]["bytes"], bytes.size());
    EXPECT_EQ(meta["files"][rel]["xxh3"], hex64(hash64(bytes)));
    SafetensorsFile f = SafetensorsFile::open(dir + "/" + rel);
    for (const char* key : {"theta", "exp_avg", "exp_avg_sq", "best"}) EXPECT_TRUE(f.contains(key)) << key;
  }
  SafetensorsFile shared = SafetensorsFile::open(dir + "/shared.safetensors");
  EXPECT_EQ(shared.tensor("theta").numel(), s.trainer.bank().row_size());
  EXPECT_TRUE(fs::exists(dir + "/rng/rank_0.safetensors"));
  EXPECT_FALSE(fs::exists(c.run_dir + "/checkpoints/.step_00000004.tmp"));
}

TEST(Checkpoint, CorruptNewestFallsBackToThePreviousOne) {
  TrainConfig c = config("corrupt");
  c.max_steps = 9;
  c.eval_every = 3;
  c.checkpoint.every_steps = 3;
  Outcome expected;
  {
    Solo s(c);
    ASSERT_TRUE(s.trainer.run());
    expected = outcome(s);
  }
  const std::string root = c.run_dir + "/checkpoints/";
  // Alter one byte in the middle of a task file of step 9 ...
  {
    const std::string path = root + "step_00000009/tasks/magic.safetensors";
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(path) / 2));
    f.put('\x7f');
  }
  // ... and truncate the shared file of step 6.
  fs::resize_file(root + "step_00000006/shared.safetensors", fs::file_size(root + "step_00000006/shared.safetensors") - 4);

  TrainConfig r = c;
  r.checkpoint.resume = root + "step_00000009";  // an explicit path is never skipped
  EXPECT_THROW(Solo bad(r), CheckpointError);

  r.checkpoint.resume = "auto";
  testing::internal::CaptureStderr();
  Solo s(r);
  const std::string log = testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("step_00000009 is unusable"), std::string::npos) << log;
  EXPECT_NE(log.find("checksum"), std::string::npos) << log;
  EXPECT_NE(log.find("step_00000006 is unusable"), std::string::npos) << log;
  EXPECT_NE(log.find("falling back"), std::string::npos) << log;
  EXPECT_EQ(s.trainer.global_step(), 3);
  EXPECT_TRUE(s.trainer.resumed_from().find("step_00000003") != std::string::npos);
  // From step 3 the run retraces its steps (replacing the corrupt checkpoints) and
  // ends exactly where the uninterrupted run ended.
  ASSERT_TRUE(s.trainer.run());
  expect_identical(expected, outcome(s));
  EXPECT_EQ(Checkpointer::list_complete(root).size(), 3u);
}

TEST(Checkpoint, RunDefiningChangesAreRefusedSafeOnesAllowed) {
  TrainConfig c = config("changes");
  c.max_steps = 4;
  { Solo s(c); ASSERT_TRUE(s.trainer.run()); }

  TrainConfig fresh = c;  // resume not set: the checkpoints must not be overwritten
  try {
    Solo s(fresh);
    FAIL() << "a fresh start over checkpoints was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("already holds checkpoints"), std::string::npos) << e.what();
  }

  TrainConfig other = c;
  other.checkpoint.resume = "auto";
  other.bora.tau = 100;
  other.adapter.r = 8;
  try {
    Solo s(other);
    FAIL() << "a run-defining change was accepted";
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("tau: '10' -> '100'"), std::string::npos) << m;
    EXPECT_NE(m.find("adapter_r: '4' -> '8'"), std::string::npos) << m;
  }
  // The refused resume left the run's configuration record alone.
  EXPECT_NE(read_file(c.run_dir + "/config.ini").find("tau = 10"), std::string::npos);

  TrainConfig safe = c;
  safe.checkpoint.resume = "auto";
  safe.eval_every = 2;
  safe.log_every = 5;
  safe.micro_batch = 4;
  Solo s(safe);
  EXPECT_EQ(s.trainer.global_step(), 4);
}

TEST(Checkpoint, KeepsTheNewestKTheBestAndTheResumedOne) {
  const std::string run = train_test::scratch("prune");
  fs::remove_all(run);
  LocalCommunicator comm;
  CheckpointPayload p;
  p.tasks.emplace_back("a", NamedTensors{{"theta", torch::ones({3})}});
  p.shared = {{"theta", torch::zeros({3})}};
  p.rng = {{"cpu", torch::zeros({4}, torch::kUInt8)}};
  p.meta = OrderedJson{{"format", "bora-checkpoint"}, {"version", kCheckpointFormatVersion}};
  CheckpointConfig cc;
  cc.keep = 2;
  auto steps = [&] {
    std::set<int64_t> got;
    for (const auto& [step, dir] : Checkpointer::list_complete(run + "/checkpoints")) got.insert(step);
    return got;
  };
  {
    Checkpointer ck(cc, run, comm);
    ck.protect_step(2);  // the best validation step
    for (int64_t s = 1; s <= 5; ++s) ck.save(s, p);
    EXPECT_EQ(steps(), (std::set<int64_t>{2, 4, 5}));
  }
  // A run resumed from step 4 keeps it while it writes 6, 7, 8.
  cc.resume = run + "/checkpoints/step_00000004";
  Checkpointer ck(cc, run, comm);
  auto opened = ck.open_for_resume([](const Json&) {}, [](const OpenedCheckpoint& o) {
    std::map<std::string, torch::Tensor> t;
    const std::string problem = Checkpointer::read_verified(o, "tasks/a.safetensors", t);
    EXPECT_TRUE(torch::equal(t.at("theta"), torch::ones({3})));
    return problem;
  });
  ASSERT_TRUE(opened.has_value());
  for (int64_t s = 6; s <= 8; ++s) ck.save(s, p);
  EXPECT_EQ(steps(), (std::set<int64_t>{4, 7, 8}));
}

TEST(Checkpoint, TrainingPrunesToTheNewestKAndTheBest) {
  TrainConfig c = config("keep");
  c.max_steps = 8;
  c.eval_every = 1;
  c.checkpoint.every_steps = 1;
  c.checkpoint.keep = 2;
  Solo s(c);
  ASSERT_TRUE(s.trainer.run());
  const int64_t best = s.trainer.early_stop().best_step;
  std::set<int64_t> expected = {7, 8, best};
  std::set<int64_t> got;
  for (const auto& [step, dir] : Checkpointer::list_complete(c.run_dir + "/checkpoints")) got.insert(step);
  EXPECT_EQ(got, expected) << "best step " << best;
}

TEST(Checkpoint, StopSignalEndsTheRunAfterACompleteCheckpoint) {
  TrainConfig c = config("signal");
  c.max_steps = 1000;
  install_stop_signal_handlers();
  std::raise(SIGUSR1);
  ASSERT_TRUE(stop_requested());
  Solo s(c);
  EXPECT_FALSE(s.trainer.run());  // false: the tool exits with kExitPreempted
  reset_stop_request();
  EXPECT_EQ(s.trainer.global_step(), 1);
  EXPECT_TRUE(fs::exists(c.run_dir + "/checkpoints/step_00000001/COMPLETE"));
  EXPECT_FALSE(fs::exists(c.run_dir + "/results.json"));
  TrainConfig again = c;
  again.checkpoint.resume = "auto";
  Solo t(again);
  EXPECT_EQ(t.trainer.global_step(), 1);
}

}  // namespace
}  // namespace bora
