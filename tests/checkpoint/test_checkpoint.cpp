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
#include "core/stop_request.h"
#include "train/prune.h"
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
  explicit Solo(const TrainConfig& c) : trainer(c, resolved_ini(c), comm, torch::kCPU) {}
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
  c.bora.theta_update = parse_name(kThetaUpdateNames, "theta_update", update);
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
  auto a = parse_resolved_ini("# run\nmodel = m\ntau = 10\neval_every = 5\n\n# optimizer\nlr=0.001\n");
  EXPECT_EQ(a.size(), 4u);
  EXPECT_EQ(a["lr"], "0.001");
  auto b = a;
  b["eval_every"] = "7";  // safe
  b["run_dir"] = "elsewhere";
  TrainConfig defaults;
  OptionTable table("bora-train", "");
  defaults.declare(table);
  auto differences = [&](const std::map<std::string, std::string>& x, const std::map<std::string, std::string>& y) {
    return run_defining_differences(x, y, table);
  };
  EXPECT_TRUE(differences(a, b).empty());
  b["tau"] = "100";
  b.erase("model");
  const auto d = differences(a, b);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0], "model: 'm' -> '(absent)'");
  EXPECT_EQ(d[1], "tau: '10' -> '100'");
  // An option newer than the checkpoint (absent from it): equal while it keeps its default.
  auto c = a;
  c["init_adapter"] = "";
  EXPECT_TRUE(differences(a, c).empty());
  c["init_adapter"] = "some/folder";
  ASSERT_EQ(differences(a, c).size(), 1u);
  EXPECT_EQ(differences(a, c)[0], "init_adapter: '' -> 'some/folder'");
  // A key unknown to the table (another version's) differs unless both sides agree.
  c = a;
  c["some_future_key"] = "1";
  ASSERT_EQ(differences(a, c).size(), 1u);
  EXPECT_EQ(differences(a, c)[0], "some_future_key: '(absent)' -> '1'");
  // Every resume-safe key is one the table declares, and tau is not one.
  const std::set<std::string> safe = table.resume_safe_keys();
  EXPECT_TRUE(safe.count("epochs") && safe.count("patience") && safe.count("resume") && safe.count("lock_stale_s"));
  EXPECT_FALSE(safe.count("tau") || safe.count("lr") || safe.count("batch_size") || safe.count("adapter_r"));
}

TEST(Checkpoint, ResumedRunIsBitIdenticalToUninterrupted) {
  struct Case { double tau; std::string update; };
  for (const Case& k : {Case{10, "adam"}, Case{INFINITY, "adam"}, Case{10, "mean"}, Case{10, "noncentered"}}) {
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

// A run that ASHA pruned (train/prune.h) ends with a checkpoint where it stopped;
// launched again with pruning on, it stays pruned; resumed with prune = none it
// ends bit for bit as the run that was never pruned.
TEST(Checkpoint, PrunedRunResumedWithoutPruningEndsAsAnUnprunedRun) {
  Solo whole(config("asha_reference/tau_10"));
  ASSERT_TRUE(whole.trainer.run());
  const Outcome expected = outcome(whole);

  TrainConfig c = config("asha_sweep/tau_10");
  const std::string sweep = fs::path(c.run_dir).parent_path().string();
  fs::remove(sweep + "/" + Leaderboard::kFile);
  c.prune.kind = PruneKind::Asha;
  c.prune.eta = 2;
  c.prune.min_rungs = 1;
  // A better run is already on the board: of 2 runs at rung 1 only 1 goes on.
  const BoardIdentity id{hex64(hash64(read_file(c.data + "/manifest.json"))), c.eval_every};
  for (int64_t k = 1; k <= 3; ++k) Leaderboard(sweep, id).report("tau_1", 1, 1, k, 4 * k, 1.0, c.prune);
  {
    Solo pruned(c);
    ASSERT_TRUE(pruned.trainer.run());
    EXPECT_EQ(pruned.trainer.global_step(), 4);
    EXPECT_EQ(pruned.trainer.pruned_at_rung(), 1);
  }
  const Json r = read_json_file(c.run_dir + "/results.json");
  EXPECT_EQ(r["pruned"]["rung"], 1);
  EXPECT_EQ(r["pruned"]["step"], 4);
  EXPECT_FALSE(r["converged"].get<bool>());
  EXPECT_GT(r["rank_seconds"].get<double>(), 0);
  EXPECT_TRUE(fs::exists(c.run_dir + "/checkpoints/step_00000004/COMPLETE"));
  EXPECT_EQ(Leaderboard(sweep, id).pruned_at("tau_10"), 1);
  c.checkpoint.resume = "auto";
  {
    Solo again(c);  // pruning still on: it stays where it was pruned
    ASSERT_TRUE(again.trainer.run());
    EXPECT_EQ(again.trainer.global_step(), 4);
  }
  c.prune.kind = PruneKind::None;
  Solo resumed(c);
  ASSERT_EQ(resumed.trainer.global_step(), 4);
  ASSERT_TRUE(resumed.trainer.run());
  EXPECT_EQ(resumed.trainer.global_step(), 12);
  expect_identical(expected, outcome(resumed));
  EXPECT_TRUE(read_json_file(c.run_dir + "/results.json")["pruned"].is_null());

  // A sweep folder whose board is of another dataset is refused before any work.
  TrainConfig other = config("asha_sweep/tau_100", 100);
  other.prune = c.prune;
  other.prune.kind = PruneKind::Asha;
  write_file_atomic(sweep + "/" + Leaderboard::kFile,
                    "{\"format\": \"bora-leaderboard\", \"version\": 1, \"dataset\": \"0000000000000000\", "
                    "\"steps_per_rung\": 4, \"runs\": {}}");
  try {
    Solo refused(other);
    ADD_FAILURE() << "a board of another dataset was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("another dataset"), std::string::npos) << e.what();
  }
}

// Raising patience on resume continues a run that early stopping had ended, to the
// same bits as a run with that patience from the start.
TEST(Checkpoint, RaisingPatienceContinuesAnEarlyStoppedRun) {
  auto make = [](const std::string& run, int patience) {
    TrainConfig c = config(run);
    c.max_steps = 60;
    c.eval_every = 1;
    c.patience = patience;
    c.optim.lr = 0.2;  // steps large enough that some evaluation is not better
    c.checkpoint.every_steps = 1000;  // the end of training still writes one
    return c;
  };
  Solo whole(make("patience_whole", 0));
  ASSERT_TRUE(whole.trainer.run());
  const Outcome expected = outcome(whole);
  TrainConfig c = make("patience_resumed", 1);
  int64_t stop = 0;
  {
    Solo stopped(c);
    ASSERT_TRUE(stopped.trainer.run());
    ASSERT_TRUE(read_json_file(c.run_dir + "/results.json")["stopped_early"].get<bool>())
        << "the fixture must stop early at patience 1";
    stop = stopped.trainer.global_step();
    ASSERT_LT(stop, 60);
  }
  c.patience = 0;
  c.checkpoint.resume = "auto";
  Solo resumed(c);
  ASSERT_EQ(resumed.trainer.global_step(), stop);  // from the checkpoint written where it stopped
  ASSERT_TRUE(resumed.trainer.run());
  EXPECT_EQ(resumed.trainer.global_step(), 60);
  expect_identical(expected, outcome(resumed));

  // The other way: evaluations without a better NLL are counted with early stopping
  // off, so a run that reached its budget there and is resumed with patience 1 stops
  // at once, where the patience-1 run stopped.
  TrainConfig off = make("patience_turned_on", 0);
  off.max_steps = stop;
  {
    Solo first(off);
    ASSERT_TRUE(first.trainer.run());
  }
  off.patience = 1;
  off.max_steps = 60;
  off.checkpoint.resume = "auto";
  Solo on(off);
  ASSERT_TRUE(on.trainer.run());
  EXPECT_EQ(on.trainer.global_step(), stop);
  EXPECT_TRUE(read_json_file(off.run_dir + "/results.json")["stopped_early"].get<bool>());
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
  // One file for the rank; the table has its true size, the digest of its header
  // and of every tensor's bytes (recomputed here from the file itself).
  EXPECT_EQ(meta["files"].size(), 1u);
  const std::string rel = "rank_0.safetensors";  // the documented layout, spelled out
  ASSERT_TRUE(meta["files"].contains(rel));
  const Json& entry = meta["files"][rel];
  const std::string bytes = read_file(dir + "/" + rel);
  EXPECT_EQ(entry["bytes"], bytes.size());
  SafetensorsFile f = SafetensorsFile::open(dir + "/" + rel);
  EXPECT_EQ(entry["header_xxh3"], hex64(hash64(bytes.data(), f.header().data_start)));
  EXPECT_EQ(entry["tensors"].size(), f.tensors().size());
  for (const StTensorInfo& t : f.tensors())
    EXPECT_EQ(entry["tensors"][t.name], hex64(hash64(f.bytes(t), t.end - t.begin))) << t.name;
  for (const auto& name : meta["tasks"])
    for (const char* key : {"theta", "exp_avg", "exp_avg_sq", "best"})
      EXPECT_TRUE(f.contains(checkpoint_task_tensor(name.get<std::string>(), key))) << name << " " << key;
  EXPECT_EQ(f.tensor(checkpoint_shared_tensor("theta")).numel(), s.trainer.bank().row_size());
  // Stored by task name: each task's best copy is the row the run ended with.
  for (size_t i = 0; i < s.trainer.local_tasks().size(); ++i) {
    const std::string& task = s.trainer.task_names()[static_cast<size_t>(s.trainer.local_tasks()[i])];
    EXPECT_TRUE(torch::equal(f.tensor(checkpoint_task_tensor(task, "best")), s.trainer.bank().rows()[int64_t(i)]))
        << task;
  }
  EXPECT_TRUE(f.contains(checkpoint_rng_prefix(0) + "cpu"));
  EXPECT_FALSE(fs::exists(c.run_dir + "/checkpoints/.step_00000004.tmp"));
}

// Flips one byte in the middle of tensor `name` of the safetensors file at `path`.
void corrupt_tensor(const std::string& path, const std::string& name) {
  uint64_t at = 0;
  {
    SafetensorsFile f = SafetensorsFile::open(path);
    const StTensorInfo* t = f.header().find(name);
    ASSERT_NE(t, nullptr) << name;
    at = f.header().data_start + (t->begin + t->end) / 2;
  }
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(at));
  const char c = static_cast<char>(f.get());
  f.seekp(static_cast<std::streamoff>(at));
  f.put(static_cast<char>(c ^ 0x5a));
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
  // Alter one byte in the middle of a task's theta in step 9 ...
  corrupt_tensor(root + "step_00000009/rank_0.safetensors", checkpoint_task_tensor("magic", "theta"));
  // ... and truncate step 6's file.
  const std::string six = root + "step_00000006/rank_0.safetensors";
  fs::resize_file(six, fs::file_size(six) - 4);

  TrainConfig r = c;
  r.checkpoint.resume = root + "step_00000009";  // an explicit path is never skipped
  EXPECT_THROW(Solo bad(r), CheckpointError);

  r.checkpoint.resume = "auto";
  testing::internal::CaptureStderr();
  Solo s(r);
  const std::string log = testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("step_00000009 is unusable"), std::string::npos) << log;
  EXPECT_NE(log.find("tensor 'tasks/magic/theta' has checksum"), std::string::npos) << log;
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

// A checkpoint of another format version (1: a file per task) is not loaded, and
// the problem names both versions.
TEST(Checkpoint, AnotherFormatVersionIsNotLoaded) {
  TrainConfig c = config("version");
  c.max_steps = 2;
  { Solo s(c); ASSERT_TRUE(s.trainer.run()); }
  const std::string dir = c.run_dir + "/checkpoints/step_00000002";
  Json meta = read_json_file(dir + "/meta.json");
  meta["version"] = 1;
  write_file_atomic(dir + "/meta.json", meta.dump());
  TrainConfig r = c;
  r.checkpoint.resume = dir;
  testing::internal::CaptureStderr();
  EXPECT_THROW(Solo bad(r), CheckpointError);
  const std::string log = testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("has format version 1, this build reads 2"), std::string::npos) << log;
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
    std::map<std::string, torch::Tensor> t = {{checkpoint_task_tensor("a", "theta"), torch::Tensor()}};
    Checkpointer::read_tensors(o, t);
    EXPECT_TRUE(torch::equal(t.begin()->second, torch::ones({3})));
  });
  ASSERT_TRUE(opened.has_value());
  for (int64_t s = 6; s <= 8; ++s) ck.save(s, p);
  EXPECT_EQ(steps(), (std::set<int64_t>{4, 7, 8}));
}

// Two ranks' files: a reader gets exactly the tensors it names, from whichever
// file holds them, and only those are verified: a corrupt tensor fails the readers
// that need it (naming it), not the others; a corrupt header fails every reader
// of that file.
TEST(Checkpoint, ReadsAndVerifiesOnlyTheTensorsItNeeds) {
  const std::string run = train_test::scratch("partial");
  fs::remove_all(run);
  // Two simulated ranks, one process: each writes its file (as save() does).
  const std::string dir = run + "/step";
  make_dirs(dir);
  OrderedJson files = OrderedJson::object();
  auto write_rank = [&](int rank, const NamedTensors& tensors) {
    const std::string rel = checkpoint_rank_file(rank);
    files[rel] = write_checkpoint_file(dir + "/" + rel, tensors);
  };
  write_rank(0, {{checkpoint_task_tensor("a", "theta"), torch::full({5}, 1.0f)},
                 {checkpoint_task_tensor("b", "theta"), torch::full({5}, 2.0f)},
                 {checkpoint_shared_tensor("theta"), torch::full({5}, 9.0f)}});
  write_rank(1, {{checkpoint_task_tensor("c", "theta"), torch::full({5}, 3.0f)},
                 {checkpoint_rng_prefix(1) + "cpu", torch::arange(4, torch::kUInt8)}});
  const OpenedCheckpoint o = OpenedCheckpoint::index(dir, Json::parse(OrderedJson{{"files", files}}.dump()));
  EXPECT_EQ(o.names_with_prefix("rng/rank_1/"), std::vector<std::string>{"rng/rank_1/cpu"});
  EXPECT_TRUE(o.names_with_prefix("rng/rank_0/").empty());

  // "" or the CheckpointError's message (a problem of this checkpoint).
  auto problem = [&o](std::map<std::string, torch::Tensor>& wanted, int threads = 1) -> std::string {
    try {
      Checkpointer::read_tensors(o, wanted, threads);
      return "";
    } catch (const CheckpointError& e) {
      return e.message();
    }
  };
  // A new owner of tasks b and c (another world size): in place, across both files.
  torch::Tensor rows = torch::zeros({2, 5});
  std::map<std::string, torch::Tensor> want = {{checkpoint_task_tensor("b", "theta"), rows[0]},
                                               {checkpoint_task_tensor("c", "theta"), rows[1]},
                                               {checkpoint_rng_prefix(1) + "cpu", torch::Tensor()}};
  ASSERT_EQ(problem(want), "");
  EXPECT_TRUE(torch::equal(rows, torch::stack({torch::full({5}, 2.0f), torch::full({5}, 3.0f)})));
  EXPECT_TRUE(torch::equal(want.at("rng/rank_1/cpu"), torch::arange(4, torch::kUInt8)));
  // The same with several reader threads.
  rows.zero_();
  ASSERT_EQ(problem(want, /*threads=*/3), "");
  EXPECT_EQ(rows.sum().item<float>(), 25.0f);

  // Wrong shape, a tensor no file holds.
  std::map<std::string, torch::Tensor> bad_shape = {{checkpoint_task_tensor("a", "theta"), torch::zeros({4})}};
  EXPECT_NE(problem(bad_shape).find("this run expects"), std::string::npos);
  std::map<std::string, torch::Tensor> missing = {{checkpoint_task_tensor("z", "theta"), torch::zeros({5})}};
  EXPECT_NE(problem(missing).find("no file of meta.json holds tensor 'tasks/z/theta'"),
            std::string::npos);

  // Corrupt task a's bytes: a reader of a fails naming it; a reader of b does not.
  corrupt_tensor(dir + "/" + checkpoint_rank_file(0), checkpoint_task_tensor("a", "theta"));
  std::map<std::string, torch::Tensor> a = {{checkpoint_task_tensor("a", "theta"), torch::zeros({5})}};
  EXPECT_NE(problem(a).find("tensor 'tasks/a/theta' has checksum"), std::string::npos);
  std::map<std::string, torch::Tensor> b = {{checkpoint_task_tensor("b", "theta"), torch::zeros({5})}};
  EXPECT_EQ(problem(b), "");

  // Corrupt a byte of rank 1's header (inside the JSON): every reader of it fails.
  {
    std::fstream f(dir + "/" + checkpoint_rank_file(1), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(12);
    f.put(' ');
  }
  std::map<std::string, torch::Tensor> c = {{checkpoint_task_tensor("c", "theta"), torch::zeros({5})}};
  EXPECT_NE(problem(c).find("its header has checksum"), std::string::npos);

  // A table that lists one tensor in two files is malformed.
  OrderedJson twice = files;
  twice["rank_1.safetensors"]["tensors"][checkpoint_task_tensor("a", "theta")] = "0";
  EXPECT_THROW(OpenedCheckpoint::index(dir, Json::parse(OrderedJson{{"files", twice}}.dump())), FormatError);
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
  {
    Solo s(c);
    EXPECT_FALSE(s.trainer.run());  // false: the tool exits with kExitPreempted
    reset_stop_request();
    EXPECT_EQ(s.trainer.global_step(), 1);
    EXPECT_TRUE(fs::exists(c.run_dir + "/checkpoints/step_00000001/COMPLETE"));
    EXPECT_FALSE(fs::exists(c.run_dir + "/results.json"));
  }  // the preempted run's process ends here (and lets go of the run folder)
  TrainConfig again = c;
  again.checkpoint.resume = "auto";
  Solo t(again);
  EXPECT_EQ(t.trainer.global_step(), 1);
}

}  // namespace
}  // namespace bora
