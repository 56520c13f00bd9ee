// bora-train: BoRA training of per-task adapters over a frozen base model.
//   bora-train --config configs/x.ini [--key value ...]         (one process)
//   mpirun -np 4 bora-train --config configs/x.ini               (task-parallel)
// See --help for every option; docs/bora.md for the objective.
#include <torch/torch.h>

#include "core/main.h"
#include "core/options.h"
#include "dist/world.h"
#include "train/trainer.h"

int main(int argc, char** argv) {
  return bora::guarded_main("bora-train", [&] {
    bora::World world(&argc, &argv);
    bora::TrainConfig config;
    bora::OptionTable table("bora-train",
                            "Trains per-task adapters under BoRA's hierarchical prior; each rank owns a subset of "
                            "the tasks and Theta is all-reduced every step.");
    config.declare(table);
    if (!table.parse(argc, argv)) return 0;
    config.validate();
    torch::set_num_threads(bora::threads_per_rank(config.threads, world.local_size()));
    bora::Trainer trainer(config, table.to_ini(), world.comm());
    return trainer.run() ? bora::kExitOk : bora::kExitPreempted;
  }, bora::World::abort_job);
}
