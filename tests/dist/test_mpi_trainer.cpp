// The trainer's collectives, in-process under mpirun -np 2 (needs --fixture):
//   * exactly ONE all-reduce per optimizer step, of |Theta| + 10 elements (Theta's
//     gradient, the shared adapter's gradient at tau = inf, sum_d theta_d for
//     theta_update = mean, or the rows' summed likelihood gradient for noncentered; plus the step's 10 scalars, fused into the same buffer:
//     see Trainer::step), counted by the communicator;
//   * Theta stays bit-identical on every rank, and a replica that differs is a
//     DistError on every rank (no hang);
//   * sampler = balanced: each rank draws its fixed share of every batch from its
//     own tasks.
#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "core/error.h"
#include "core/hash.h"
#include "data/manifest.h"
#include "mpi_test.h"
#include "train/trainer.h"

namespace bora {
namespace {

using dist_test::fixture;
using dist_test::world;

// The scalars fused into the step's all-reduce buffer (likelihood, NLL sum, prior,
// tokens, squared row-gradient norm, sequences; the non-finite-loss and non-finite-
// prior flags; the stop and checkpoint-time flags): part of the one collective, so
// that neither the step's logging nor its NaN check costs a collective of its own.
constexpr int64_t kStepScalars = 10;

TrainConfig config(const std::string& run) {
  TrainConfig c;
  c.model = fixture() + "/model";
  c.data = fixture() + "/data";
  c.run_dir = fixture() + "/runs/mpi_trainer_" + run;
  c.batch_size = 16;
  c.micro_batch = 8;
  c.max_steps = 100;
  c.optim.lr = 1e-3;
  c.eval_base = false;
  c.adapter.r = 4;
  c.adapter.alpha = 8;
  c.bora.tau = 10;
  c.replica_check_every = 1;  // the checksum is an all-gather, never an all-reduce
  c.log_every = 1;
  return c;
}

// |Theta| of LoRA rank r on q_proj and v_proj of the fixture's model (2 layers of
// width 64): per layer and site A [r, 64] + B [64, r].
int64_t lora_qv_params(int64_t r) { return 2 * 2 * (r * 64 + 64 * r); }

std::vector<std::string> theta_hashes(Communicator& comm, const torch::Tensor& theta) {
  torch::Tensor c = theta.to(torch::kCPU).contiguous();
  const uint64_t h = hash64(c.data_ptr(), c.nbytes());
  return comm.all_gather_bytes(std::string(reinterpret_cast<const char*>(&h), 8));
}

void expect_one_all_reduce_per_step(TrainConfig c) {
  ASSERT_FALSE(fixture().empty()) << "pass --fixture DIR";
  std::unique_ptr<Communicator> comm = make_communicator(world(), torch::kCPU);
  Trainer trainer(c, "", *comm, torch::kCPU);
  const int64_t P = lora_qv_params(c.adapter.r);
  const CommStats before = comm->stats();
  const int N = 5;
  for (int i = 0; i < N; ++i) trainer.step();
  const CommStats after = comm->stats();
  const std::vector<std::string> h =
      trainer.theta().defined() ? theta_hashes(*comm, trainer.theta()) : theta_hashes(*comm, trainer.bank().rows()[0]);

  EXPECT_EQ(trainer.bank().row_size(), P);
  if (trainer.theta().defined()) {
    EXPECT_EQ(trainer.theta().numel(), P);
  }
  EXPECT_EQ(after.all_reduces - before.all_reduces, N) << "one all-reduce per step, not " << N << " x k";
  EXPECT_EQ(after.all_reduce_elements - before.all_reduce_elements, N * (P + kStepScalars));
  EXPECT_EQ(trainer.global_step(), N);
  for (size_t r = 1; r < h.size(); ++r) EXPECT_EQ(h[r], h[0]) << "replica of rank " << r;
}

TEST(TrainerMpi, OneAllReducePerStepOfThetaGradient) {
  expect_one_all_reduce_per_step(config("adam"));
}

TEST(TrainerMpi, OneAllReducePerStepWithThetaMean) {
  TrainConfig c = config("mean");
  c.bora.theta_update = ThetaUpdate::Mean;
  expect_one_all_reduce_per_step(c);
}

TEST(TrainerMpi, OneAllReducePerStepNoncentered) {
  TrainConfig c = config("noncentered");
  c.bora.theta_update = ThetaUpdate::Noncentered;
  expect_one_all_reduce_per_step(c);
}

TEST(TrainerMpi, OneAllReducePerStepAtTauInf) {
  TrainConfig c = config("inf");
  c.bora.tau = INFINITY;
  expect_one_all_reduce_per_step(c);
}

TEST(TrainerMpi, ThePartitionGivesEveryTaskToOneRank) {
  std::unique_ptr<Communicator> comm = make_communicator(world(), torch::kCPU);
  Trainer trainer(config("partition"), "", *comm, torch::kCPU);
  std::string mine;
  for (int64_t t : trainer.local_tasks()) mine += trainer.task_names()[size_t(t)] + ",";
  const std::vector<std::string> all = comm->all_gather_bytes(mine);
  std::multiset<std::string> seen;
  for (const auto& part : all)
    for (size_t a = 0, b; (b = part.find(',', a)) != std::string::npos; a = b + 1) seen.insert(part.substr(a, b - a));
  EXPECT_EQ(seen, std::multiset<std::string>(trainer.task_names().begin(), trainer.task_names().end()));
  for (size_t r = 0; r < all.size(); ++r) EXPECT_FALSE(all[r].empty()) << "rank " << r << " has no task";
  // Bank rows: this rank's tasks only.
  EXPECT_EQ(trainer.bank().rows().size(0), int64_t(trainer.local_tasks().size()));
}

TEST(TrainerMpi, ReplicaMismatchIsAnErrorOnEveryRank) {
  std::unique_ptr<Communicator> comm = make_communicator(world(), torch::kCPU);
  Trainer trainer(config("mismatch"), "", *comm, torch::kCPU);
  trainer.step();  // replicas agree (checked at every step)
  if (comm->rank() == comm->size() - 1) {
    torch::NoGradGuard g;
    trainer.theta().view({-1})[0].add_(1e-3);  // one element of one replica
  }
  try {
    trainer.step();
    ADD_FAILURE() << "no error for differing replicas";
  } catch (const DistError& e) {
    EXPECT_NE(e.message().find("replicas of Theta differ at step 2"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("rank " + std::to_string(comm->size() - 1)), std::string::npos) << e.message();
  }
}

TEST(TrainerMpi, BalancedSamplerGivesEachRankItsShare) {
  TrainConfig c = config("balanced");
  c.sampler = SamplerKind::Balanced;
  std::unique_ptr<Communicator> comm = make_communicator(world(), torch::kCPU);
  Trainer trainer(c, "", *comm, torch::kCPU);
  // This rank's training sequences, from the manifest.
  const Manifest m = Manifest::read(c.data);
  int64_t own = 0;
  for (int64_t t : trainer.local_tasks())
    own += m.tasks[size_t(m.find_task(trainer.task_names()[size_t(t)]))].split(Split::Train).sequences;
  const int64_t share = c.batch_size / comm->size() + (comm->rank() < c.batch_size % comm->size());
  // One pass over this rank's own sequences: full shares, then the remainder. Every
  // rank runs as many steps as the longest pass (a step is collective).
  const int64_t pass = (own + share - 1) / share;
  const auto steps = static_cast<int64_t>(comm->all_reduce_scalar(double(pass), ReduceOp::Max));
  std::vector<int64_t> local, global;
  for (int64_t s = 0; s < steps; ++s) {
    StepStats st = trainer.step();
    local.push_back(st.local_sequences);
    global.push_back(st.sequences);
  }
  const std::vector<std::string> counts = comm->all_gather_bytes(
      std::string(reinterpret_cast<const char*>(local.data()), local.size() * sizeof(int64_t)));

  int64_t seen = 0;
  for (int64_t s = 0; s < pass; ++s) {
    seen += local[size_t(s)];
    if (s + 1 < pass) {
      EXPECT_EQ(local[size_t(s)], share) << "step " << s + 1;
    }
  }
  EXPECT_EQ(local[size_t(pass - 1)], own - share * (pass - 1));
  EXPECT_EQ(seen, own);
  // The step's global count is the sum of the ranks' shares.
  for (int64_t s = 0; s < steps; ++s) {
    int64_t sum = 0;
    for (const auto& part : counts) {
      int64_t v;
      std::memcpy(&v, part.data() + size_t(s) * sizeof(int64_t), sizeof v);
      sum += v;
    }
    EXPECT_EQ(global[size_t(s)], sum) << "step " << s + 1;
  }
}

}  // namespace
}  // namespace bora
