// bora-pretrain: trains every weight of a (small) base model on the pooled training
// split of a dataset and writes an HF checkpoint folder. See train/pretrain.h.
#include <torch/torch.h>

#include "core/main.h"
#include "core/options.h"
#include "dist/world.h"
#include "train/pretrain.h"

int main(int argc, char** argv) {
  return bora::guarded_main("bora-pretrain", [&] {
    bora::PretrainConfig config;
    bora::OptionTable table("bora-pretrain",
                            "Pretrains all weights of a base model on a dataset's pooled training split (never its "
                            "validation or test documents) and writes an HF checkpoint folder.");
    config.declare(table);
    table.set_version(bora::build_info);
    if (!table.parse(argc, argv)) return 0;
    torch::set_num_threads(bora::threads_per_rank(config.threads, 1));
    bora::pretrain(config);
    return 0;
  });
}
