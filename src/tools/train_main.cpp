// bora-train: BoRA training of per-task adapters over a frozen base model.
//   bora-train --config configs/x.ini [--key value ...]         (one process)
//   mpirun -np 4 bora-train --config configs/x.ini               (task-parallel)
//   srun -n 8 bora-train --config x.ini --group_taus 0,1,10,inf   (a tau sweep in one job:
//        the world split into 4 groups of 2 ranks, run folders <run_dir>/tau_<tau>;
//        --groups 2: 2 groups of 4 that take the taus from a queue, train/group_sweep.h)
// See --help for every option; docs/bora.md for the objective, docs/slurm.md for
// the group sweep.
#include <torch/torch.h>

#include "core/error.h"
#include "core/log.h"
#include "core/main.h"
#include "core/options.h"
#include "dist/device_memory.h"
#include "dist/world.h"
#include "train/group_sweep.h"
#include "train/trainer.h"

int main(int argc, char** argv) {
  return bora::guarded_main("bora-train", [&] {
    bora::World world(&argc, &argv);
    bora::TrainConfig config;
    std::vector<std::string> group_taus;
    int groups = 0;
    bora::OptionTable table("bora-train",
                            "Trains per-task adapters under BoRA's hierarchical prior; each rank owns a subset of "
                            "the tasks and Theta is all-reduced every step.");
    config.declare(table);
    table.group("group sweep");
    table.add("group_taus", &group_taus,
              "taus to train in one job (\"0,1,10,inf\"): the ranks split into equal groups that each train one "
              "tau at a time into <run_dir>/tau_<tau>; empty = one run (docs/slurm.md)");
    table.add("groups", &groups,
              "groups of the group sweep (0 = one per tau); fewer groups than taus: a group whose run ends or is "
              "pruned takes the next tau");
    table.set_version(bora::build_info);
    if (!table.parse(argc, argv)) return 0;
    if (world.rank() == 0) BORA_INFO(bora::build_info());
    if (group_taus.empty()) {
      config.validate();
      torch::set_num_threads(bora::threads_per_rank(config.threads, world.local_size()));
      const torch::Device device = world.select_device(config.device);
      // One GPU per local rank when CUDA is present; the communicator follows the
      // tensors: NCCL for CUDA (MPI staging without NCCL), MPI for CPU.
      std::unique_ptr<bora::Communicator> comm = bora::make_communicator(world, device);
      bora::Trainer trainer(config, table.to_ini(), *comm, device);
      const bool finished = trainer.run();
      // Every rank's own GPU (the caching allocator's peak, as torch.cuda.max_memory_allocated).
      if (device.is_cuda()) BORA_INFO(bora::describe_device_memory(device));
      return finished ? bora::kExitOk : bora::kExitPreempted;
    }
    if (table.is_set("tau") && world.rank() == 0)
      BORA_WARN("group_taus is set: each group's tau comes from it, tau = ", bora::format_double(config.bora.tau),
                " is ignored");
    const bora::GroupLayout g = bora::group_layout(group_taus, groups, world.rank(), world.size());
    const std::string sweep_dir = config.run_dir;
    bora::TauQueue queue(world.comm(), sweep_dir, group_taus, g.group, config.prune.on());
    // Collective over the world: every rank calls it once, with its group's color.
    std::unique_ptr<bora::Communicator> comm = world.split(g.group);
    // Consumed: each run's config.ini then reads like a plain run of its tau.
    group_taus.clear();
    groups = 0;
    config.bora.tau = 0;  // each run's comes from the queue; validated before use
    config.validate();
    torch::set_num_threads(bora::threads_per_rank(config.threads, world.local_size()));
    const torch::Device device = world.select_device(config.device);
    if (device.is_cuda() && comm->rank() == 0)
      BORA_WARN("group sweep on CUDA: each group's all-reduce goes over MPI through host memory (NCCL runs on "
                "the whole world only)");
    for (;;) {
      const int i = static_cast<int>(comm->all_reduce_scalar(comm->rank() == 0 ? queue.claim() : -1,
                                                             bora::ReduceOp::Max));
      if (i < 0) break;
      config.bora.tau = bora::parse_double("group_taus", queue.tau(i));
      config.run_dir = sweep_dir + "/tau_" + queue.tau(i);
      if (comm->rank() == 0)
        BORA_INFO("group ", g.group, ": ranks ", world.rank(), "..", world.rank() + comm->size() - 1, " train tau = ",
                  queue.tau(i), " into ", config.run_dir);
      bora::Trainer trainer(config, table.to_ini(), *comm, device);
      if (!trainer.run()) return bora::kExitPreempted;
    }
    if (comm->rank() == 0) BORA_INFO("group ", g.group, ": no tau left to train");
    if (device.is_cuda()) BORA_INFO(bora::describe_device_memory(device));
    return bora::kExitOk;
  }, bora::World::abort_job);
}
