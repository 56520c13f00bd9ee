// bora-train: BoRA training of per-task adapters over a frozen base model.
//   bora-train --config configs/x.ini [--key value ...]         (one process)
//   mpirun -np 4 bora-train --config configs/x.ini               (task-parallel)
//   srun -n 8 bora-train --config x.ini --group_taus 0,1,10,inf   (a tau sweep in one job:
//        the world split into 4 groups of 2 ranks, run folders <run_dir>/tau_<tau>)
// See --help for every option; docs/bora.md for the objective, docs/slurm.md for
// the group sweep.
#include <torch/torch.h>

#include "core/error.h"
#include "core/log.h"
#include "core/main.h"
#include "core/options.h"
#include "dist/device_memory.h"
#include "dist/world.h"
#include "train/trainer.h"

namespace {

// The group sweep (--group_taus): G taus over a world of N ranks, N % G == 0.
// Ranks [g*N/G, (g+1)*N/G) form group g (MPI_Comm_split with color g) and train
// tau = taus[g] into <run_dir>/tau_<text of taus[g]>, the folder name launch/sweep.sh
// and slurm/sweep-array.sbatch use, so that bora-report reads all three alike.
// Returns the group's index; sets config.tau and config.run_dir.
int apply_group(bora::TrainConfig& config, const std::vector<std::string>& taus, int world_rank, int world_size) {
  const int groups = static_cast<int>(taus.size());
  BORA_CHECK(world_size % groups == 0, ConfigError, "group_taus has ", groups, " taus but the world has ", world_size,
             " ranks: the ranks must divide evenly into the groups (run ", groups, ", ", 2 * groups, ", ... ranks)");
  for (const auto& t : taus) {
    const double v = bora::parse_double("group_taus", t);
    BORA_CHECK(v >= 0, ConfigError, "group_taus: tau must be >= 0 (or inf), got ", t);
  }
  const int group = world_rank / (world_size / groups);
  config.bora.tau = bora::parse_double("group_taus", taus[group]);
  config.run_dir = config.run_dir + "/tau_" + taus[group];
  return group;
}

}  // namespace

int main(int argc, char** argv) {
  return bora::guarded_main("bora-train", [&] {
    bora::World world(&argc, &argv);
    bora::TrainConfig config;
    std::vector<std::string> group_taus;
    bora::OptionTable table("bora-train",
                            "Trains per-task adapters under BoRA's hierarchical prior; each rank owns a subset of "
                            "the tasks and Theta is all-reduced every step.");
    config.declare(table);
    table.group("group sweep");
    table.add("group_taus", &group_taus,
              "taus to train at once (\"0,1,10,inf\"): the ranks split into one equal group per tau, each writing "
              "<run_dir>/tau_<tau>; empty = one run (docs/slurm.md)");
    table.set_version(bora::build_info);
    if (!table.parse(argc, argv)) return 0;
    int group = -1;
    if (!group_taus.empty()) {
      if (table.is_set("tau") && world.rank() == 0)
        BORA_WARN("group_taus is set: each group's tau comes from it, tau = ", bora::format_double(config.bora.tau),
                  " is ignored");
      group = apply_group(config, group_taus, world.rank(), world.size());
      // Each group's config.ini then reads like a plain run of its tau.
      group_taus.clear();
    }
    config.validate();
    if (world.rank() == 0) BORA_INFO(bora::build_info());
    torch::set_num_threads(bora::threads_per_rank(config.threads, world.local_size()));
    const torch::Device device = world.select_device(config.device);
    std::unique_ptr<bora::Communicator> comm;
    if (group < 0) {
      // One GPU per local rank when CUDA is present; the communicator follows the
      // tensors: NCCL for CUDA (MPI staging without NCCL), MPI for CPU.
      comm = bora::make_communicator(world, device);
    } else {
      // Collective over the world: every rank calls it once, with its group's color.
      comm = world.split(group);
      if (device.is_cuda() && comm->rank() == 0)
        BORA_WARN("group sweep on CUDA: each group's all-reduce goes over MPI through host memory (NCCL runs on "
                  "the whole world only)");
      if (comm->rank() == 0)
        BORA_INFO("group ", group, ": ranks ", world.rank(), "..", world.rank() + comm->size() - 1, " train tau = ",
                  bora::format_double(config.bora.tau), " into ", config.run_dir);
    }
    bora::Trainer trainer(config, table.to_ini(), *comm, device);
    const bool finished = trainer.run();
    // Every rank's own GPU (the caching allocator's peak, as torch.cuda.max_memory_allocated).
    if (device.is_cuda()) BORA_INFO(bora::describe_device_memory(device));
    return finished ? bora::kExitOk : bora::kExitPreempted;
  }, bora::World::abort_job);
}
