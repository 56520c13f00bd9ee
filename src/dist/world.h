// The process's place in a job started by mpirun or srun, and its communicator.
//
// A process started by a launcher (Open MPI's mpirun or Slurm's srun --mpi=pmix set
// OMPI_COMM_WORLD_SIZE / PMIX_RANK) joins the MPI world; a process started alone is
// a world of one without MPI, so single-process runs need no launcher. The local
// rank (for the GPU and thread count of a node) comes from MPI_Comm_split_type
// (MPI_COMM_TYPE_SHARED). Errors end the whole job through abort_job(): one failing
// rank never leaves its peers waiting in a collective. The destructor finalizes MPI
// on a normal exit only: while an exception unwinds a failing rank, MPI_Finalize
// would wait for peers stuck in a collective, so it is left to abort_job.
//
// The launcher watchdog: a rank whose launcher is killed (kill -9 of mpirun or of
// srun's step daemon) is reparented, and Open MPI 4.1.4 ranks on one node train on
// over shared memory until Open MPI notices, several steps and checkpoints later
// (measured in docs/checkpoints.md, "The launcher killed"). Under
// a launcher (OMPI_COMM_WORLD_SIZE, PMIX_RANK, PMI_RANK or SLURM_STEP_ID set) World
// runs a thread that compares getppid() with its value at start every 250 ms; when
// the parent is gone it prints one line ("bora-train: rank 1 on host n07: error:
// the launcher (pid 4242) is gone; exiting without writing") and ends the process
// at once with _exit(kExitLauncherGone), without unwinding: a checkpoint being
// written stays a .step_<N>.tmp folder, never renamed nor marked COMPLETE.
//
// Devices: one GPU per local rank. select_device("auto" | "cuda") gives
// cuda:(local_rank mod GPUs of the node) and makes it the current CUDA device, so
// that torch::kCUDA without an index (the trainer's) and NCCL mean the same GPU.
// make_communicator() then chooses the backend by where the tensors live.
#pragma once

#include <torch/types.h>

#include <sys/types.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/options.h"
#include "dist/communicator.h"

namespace bora {

// Where a rank's model runs (option device): auto = cuda when available, else cpu.
enum class DeviceKind { Auto, Cpu, Cuda };
inline const Names<DeviceKind> kDeviceNames = {{"auto", DeviceKind::Auto}, {"cpu", DeviceKind::Cpu}, {"cuda", DeviceKind::Cuda}};

// The exit code of a rank whose launcher is gone (DistError's).
constexpr int kExitLauncherGone = 7;

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
  // This rank's host (gethostname), for messages that must say where.
  const std::string& host() const { return host_; }
  // The launcher's pid the watchdog watches (the parent at start; 0: no watchdog).
  pid_t launcher_pid() const { return launcher_pid_; }

  // The world's communicator (MPI for CPU tensors; local when alone).
  Communicator& comm() { return *comm_; }
  // A communicator over the ranks that pass the same `color` (MPI_Comm_split),
  // ordered by world rank: one tau per group in a sweep inside one allocation.
  std::unique_ptr<Communicator> split(int color);

  // This rank's device for the trainer's `device` option: cpu; cuda (a
  // ConfigError without CUDA); auto = cuda when available, else cpu. A CUDA
  // choice is cuda:(local_rank mod device count), made the current device.
  torch::Device select_device(DeviceKind choice) const;

  // Ends the whole job with `code`: MPI_Abort when MPI is running (peers are killed
  // by the launcher), nothing otherwise (the caller returns the code).
  static void abort_job(int code);

 private:
  void start_watchdog(const std::string& program);
  void stop_watchdog();

  bool mpi_ = false;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
  std::string host_;
  std::unique_ptr<Communicator> comm_;
  pid_t launcher_pid_ = 0;
  std::mutex watchdog_mutex_;
  std::condition_variable watchdog_wake_;
  bool watchdog_stop_ = false;
  std::thread watchdog_;
};

// The communicator for tensors on `device` (collective over the world):
//   a world of one          LocalCommunicator (every collective is the identity)
//   CPU                     MpiCommunicator over MPI_COMM_WORLD
//   CUDA, BORA_HAVE_NCCL    NcclCommunicator (NCCL for CUDA tensors, MPI for bytes)
//   CUDA without NCCL, or ranks sharing a GPU, or BORA_COMM=mpi
//                           MpiCommunicator staging through host memory (warns)
// Every rank must call it with the same kind of device.
std::unique_ptr<Communicator> make_communicator(World& world, torch::Device device);

// Intra-op threads for one rank: `requested` when > 0, else OMP_NUM_THREADS when set,
// else the node's cores shared by its ranks (at least 1). Oversubscribed OpenMP
// threads spin against each other and run many times slower than one thread each
// (measured in docs/distributed.md, the threads row).
int threads_per_rank(int requested, int local_ranks);

// What this binary was built with and runs on, one line, for --version and the
// start of a run: "bora 0.1.0: LibTorch 2.11.0, CUDA 13.0 (0 GPUs visible), NCCL
// 2.28.9, Open MPI v4.1.4". CUDA and NCCL are named only when compiled in, and
// their versions are asked of the loaded libraries, so the line proves the link.
std::string build_info();

}  // namespace bora
