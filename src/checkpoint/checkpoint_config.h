// Checkpoint options (the behaviour is in checkpoint/checkpoint.h).
// Declared and validated in checkpoint_config.cpp.
#pragma once

#include <cstdint>
#include <string>

namespace bora {

class OptionTable;

struct CheckpointConfig {
  int64_t every_steps = 0;      // 0 = off
  double every_minutes = 0;     // 0 = off
  int64_t keep = 3;             // newest complete checkpoints kept (plus the best)
  std::string resume = "";      // "" = fresh start, "auto", or a checkpoint folder

  void declare(OptionTable& t);
  void validate() const;
};

}  // namespace bora
