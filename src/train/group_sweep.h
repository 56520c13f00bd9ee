// The group sweep (bora-train --group_taus, slurm/sweep-groups.sbatch): one job of
// N ranks trains a list of taus in G groups of N / G consecutive ranks
// (MPI_Comm_split), each group one run at a time.
//
// The taus form a queue: group g starts with the g-th tau, and whenever its run
// ends (finished, early-stopped or pruned) it takes the next tau no group of this
// launch has taken. With G = number of taus (the default) every group trains one
// tau, as before the queue; with fewer groups than taus a group whose run was
// pruned goes on with the next tau instead of idling. A group that finds the queue
// empty leaves bora-train; its ranks then wait in MPI_Finalize for the others
// (Open MPI), computing nothing.
//
// Claims: <run_dir>/.claims/<launch>/tau_<tau>, created with O_CREAT | O_EXCL, which
// is atomic on local and network file systems; <launch> is one id for all ranks of
// this launch (made by world rank 0), so a requeued job claims everything afresh
// and each tau's --resume auto continues or finishes it. A tau whose run was pruned
// is not taken again while pruning is on.
#pragma once

#include <string>
#include <vector>

#include "dist/communicator.h"

namespace bora {

struct GroupLayout {
  int groups = 0, group = 0, ranks_per_group = 0;
};
// ConfigError unless groups (0 = one per tau) divides the world and is at most the
// number of taus, and every tau is a number >= 0 or inf.
GroupLayout group_layout(const std::vector<std::string>& taus, int groups, int world_rank, int world_size);

class TauQueue {
 public:
  // Collective over `world`: agrees on the launch id.
  TauQueue(Communicator& world, std::string sweep_dir, std::vector<std::string> taus, int first, bool skip_pruned);
  // Group rank 0: the index of the next tau this group trains (its first tau
  // first), or -1 when every tau is taken.
  int claim();
  const std::string& tau(int i) const { return taus_[size_t(i)]; }

 private:
  std::string sweep_dir_, claims_;
  std::vector<std::string> taus_;
  int first_;
  bool skip_pruned_;
};

}  // namespace bora
