#include "checkpoint/checkpoint_config.h"

#include "core/error.h"
#include "core/options.h"

namespace bora {

// Every checkpoint option may change on resume: they say when to write, what to
// keep and where to start, not what the run computes.
void CheckpointConfig::declare(OptionTable& t) {
  t.group("checkpoints");
  t.add("checkpoint_every", &every_steps, "write a checkpoint every N optimizer steps (0 = off)").resume_safe();
  t.add("checkpoint_minutes", &every_minutes, "write a checkpoint every T minutes of training (0 = off)")
      .resume_safe();
  t.add("keep_checkpoints", &keep, "complete checkpoints kept (the newest; the best is kept as well)").resume_safe();
  t.add("resume", &resume,
        "'' = fresh start (refused when run_dir has checkpoints), auto = the newest loadable checkpoint of "
        "run_dir or a fresh start when there is none, or the path of a checkpoint folder")
      .resume_safe();
}

void CheckpointConfig::validate() const {
  BORA_CHECK(every_steps >= 0, ConfigError, "checkpoint_every must be >= 0, got ", every_steps);
  BORA_CHECK(every_minutes >= 0, ConfigError, "checkpoint_minutes must be >= 0, got ", every_minutes);
  BORA_CHECK(keep >= 1, ConfigError, "keep_checkpoints must be >= 1, got ", keep);
}

}  // namespace bora
