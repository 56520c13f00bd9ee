// The process's place in a job started by mpirun or srun, and its communicator.
//
// A process started by a launcher (Open MPI's mpirun or Slurm's srun --mpi=pmix set
// OMPI_COMM_WORLD_SIZE / PMIX_RANK) joins the MPI world; a process started alone is
// a world of one without MPI, so single-process runs need no launcher. The local
// rank (for the GPU and thread count of a node) comes from MPI_Comm_split_type
// (MPI_COMM_TYPE_SHARED). Errors end the whole job through abort_job(): one failing
// rank never leaves its peers waiting in a collective.
#pragma once

#include <memory>

#include "dist/communicator.h"

namespace bora {

class World {
 public:
  World(int* argc, char*** argv);
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  // True when this process was started by mpirun/srun.
  static bool launched();
  int rank() const { return rank_; }
  int size() const { return size_; }
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }
  bool uses_mpi() const { return mpi_; }

  // The world's communicator (MPI for CPU tensors; local when alone).
  Communicator& comm() { return *comm_; }
  // A communicator over the ranks that pass the same `color` (MPI_Comm_split),
  // ordered by world rank: one tau per group in a sweep inside one allocation.
  std::unique_ptr<Communicator> split(int color);

  // Ends the whole job with `code`: MPI_Abort when MPI is running (peers are killed
  // by the launcher), nothing otherwise (the caller returns the code).
  static void abort_job(int code);

 private:
  bool mpi_ = false;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
  std::unique_ptr<Communicator> comm_;
};

// Intra-op threads for one rank: `requested` when > 0, else OMP_NUM_THREADS when set,
// else the node's cores shared by its ranks (at least 1). Oversubscribed OpenMP
// threads spin against each other: on a loaded 2-core machine two threads per rank
// ran 40x slower than one.
int threads_per_rank(int requested, int local_ranks);

}  // namespace bora
