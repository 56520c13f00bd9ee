// The stop request: SIGTERM and SIGUSR1 (what Slurm sends before preemption or the
// time limit, see slurm/) set a flag instead of killing the process; the trainer
// reads it once per step, shares it in the step's all-reduce, writes a checkpoint
// and exits with kExitPreempted. The flag is process-wide by nature (a signal
// handler), the one global of the trainer; tests clear it with reset_stop_request().
#pragma once

namespace bora {

void install_stop_signal_handlers();
bool stop_requested();
void reset_stop_request();

}  // namespace bora
