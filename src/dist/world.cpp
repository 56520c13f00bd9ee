#include "dist/world.h"

#include <mpi.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

#include "core/error.h"
#include "core/log.h"
#include "dist/mpi_communicator.h"

namespace bora {

int threads_per_rank(int requested, int local_ranks) {
  if (requested > 0) return requested;
  if (const char* env = std::getenv("OMP_NUM_THREADS"); env && std::atoi(env) > 0) return std::atoi(env);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores / std::max(1, local_ranks));
}

bool World::launched() {
  // Open MPI's mpirun, PMIx (srun --mpi=pmix), or PMI-2 launchers.
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"})
    if (std::getenv(v)) return true;
  return false;
}

World::World(int* argc, char*** argv) {
  if (!launched()) {
    comm_ = std::make_unique<LocalCommunicator>();
    return;
  }
  int provided = 0;
  BORA_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) == MPI_SUCCESS, DistError,
             "MPI_Init_thread failed");
  mpi_ = true;
  // Errors come back as return codes (checked), not as MPI's own abort.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &local_rank_);
  MPI_Comm_size(node, &local_size_);
  MPI_Comm_free(&node);
  set_log_rank(rank_, size_);
  comm_ = std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, /*owned=*/false);
}

World::~World() {
  comm_.reset();
  if (mpi_) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
}

std::unique_ptr<Communicator> World::split(int color) {
  if (!mpi_) return std::make_unique<LocalCommunicator>();
  MPI_Comm sub;
  BORA_CHECK(MPI_Comm_split(MPI_COMM_WORLD, color, rank_, &sub) == MPI_SUCCESS, DistError, "MPI_Comm_split failed");
  MPI_Comm_set_errhandler(sub, MPI_ERRORS_RETURN);
  return std::make_unique<MpiCommunicator>(sub, /*owned=*/true);
}

void World::abort_job(int code) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  int size = 1;
  if (initialized && !finalized) MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (initialized && !finalized && size > 1) MPI_Abort(MPI_COMM_WORLD, code == 0 ? 1 : code);
}

}  // namespace bora
