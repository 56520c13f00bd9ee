#include "dist/world.h"

#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <mpi.h>
#include <torch/cuda.h>
#include <torch/version.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <exception>
#include <thread>

#include "core/error.h"
#include "core/log.h"
#include "core/main.h"
#include "dist/mpi_communicator.h"
#include "dist/nccl_communicator.h"

namespace bora {

int threads_per_rank(int requested, int local_ranks) {
  if (requested > 0) return requested;
  if (const char* env = std::getenv("OMP_NUM_THREADS"); env && std::atoi(env) > 0) return std::atoi(env);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores / std::max(1, local_ranks));
}

std::string build_info() {
  std::string s = std::string("bora ") + BORA_VERSION + ": LibTorch " + TORCH_VERSION;
#if BORA_HAVE_CUDA
  // The CUDA hooks are registered by libtorch_cuda.so, which every tool links.
  const auto& cuda = at::detail::getCUDAHooks();
  const long rt = cuda.versionCUDART();  // major * 1000 + minor * 10
  s += cat(", CUDA ", rt / 1000, ".", rt % 1000 / 10, " (", cuda.getNumGPUs(), " GPUs visible)");
#else
  s += ", CPU only (built without CUDA)";
#endif
#if BORA_HAVE_NCCL
  s += ", NCCL " + nccl_version();
#else
  s += ", no NCCL";
#endif
  // Allowed before MPI_Init; the first line names the implementation and version.
  char mpi[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(mpi, &len);
  std::string m(mpi, static_cast<size_t>(len));
  m = m.substr(0, m.find_first_of(",\n"));
  return s + ", " + m;
}

bool World::launched() {
  // Open MPI's mpirun, PMIx (srun --mpi=pmix), or PMI-2 launchers.
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"})
    if (std::getenv(v)) return true;
  return false;
}

World::World(int* argc, char*** argv) : host_(host_name()) {
  const std::string program = argc && *argc > 0 && argv && *argv && (*argv)[0] ? (*argv)[0] : "bora";
  if (!launched()) {
    // srun without an MPI plugin still starts us under its step daemon.
    if (std::getenv("SLURM_STEP_ID")) start_watchdog(program);
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
  start_watchdog(program);
}

void World::start_watchdog(const std::string& program) {
  launcher_pid_ = ::getppid();
  if (launcher_pid_ <= 1) {  // already orphaned, or started by init: nothing to watch
    launcher_pid_ = 0;
    return;
  }
  const std::string name = program.substr(program.find_last_of('/') + 1);
  // Composed now: the thread must not allocate or take locks once it decides to
  // end the process (another thread may hold the allocator's lock forever).
  const std::string line =
      format_error_line(name, rank_, size_, host_,
                        cat("the launcher (pid ", launcher_pid_, ") is gone; exiting without writing (a checkpoint "
                            "in progress is left unfinished, never marked complete)")) + "\n";
  watchdog_ = std::thread([this, line] {
    std::unique_lock<std::mutex> lk(watchdog_mutex_);
    // Four times a second: getppid() is a cheap system call, and a poll of 1 s
    // let small runs take steps and commit checkpoints after mpirun was gone
    // (docs/checkpoints.md, "The launcher killed").
    while (!watchdog_wake_.wait_for(lk, std::chrono::milliseconds(250), [this] { return watchdog_stop_; })) {
      if (::getppid() == launcher_pid_) continue;
      // stderr may be a pipe to the dead launcher: a write then fails (EPIPE, or
      // SIGPIPE ends us just the same); nothing else must run before _exit.
      std::signal(SIGPIPE, SIG_IGN);
      (void)!::write(STDERR_FILENO, line.data(), line.size());
      ::_exit(kExitLauncherGone);
    }
  });
}

void World::stop_watchdog() {
  {
    std::lock_guard<std::mutex> lk(watchdog_mutex_);
    watchdog_stop_ = true;
  }
  watchdog_wake_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
}

World::~World() {
  stop_watchdog();
  comm_.reset();
  // A failing rank unwinds through here before guarded_main catches the error:
  // MPI_Finalize would then wait for peers that sit in a collective, forever.
  // Skip it; guarded_main's on_error (abort_job) ends the whole job instead.
  if (mpi_ && std::uncaught_exceptions() == 0) {
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

torch::Device World::select_device(DeviceKind choice) const {
  if (choice == DeviceKind::Cpu) return torch::kCPU;
  const bool cuda = torch::cuda::is_available();
  BORA_CHECK(cuda || choice == DeviceKind::Auto, ConfigError, "device = cuda but no CUDA device is available");
  if (!cuda) return torch::kCPU;
  const int count = static_cast<int>(torch::cuda::device_count());
  const auto index = static_cast<c10::DeviceIndex>(local_rank_ % count);
  if (local_size_ > count && local_rank_ == 0)
    BORA_WARN(local_size_, " ranks share ", count, " GPUs on this node: ranks share GPUs (slower, more memory)");
  // Through the device-guard registry (present whenever LibTorch has CUDA), so
  // that this file needs no CUDA headers.
  c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->setDevice(torch::Device(torch::kCUDA, index));
  return torch::Device(torch::kCUDA, index);
}

std::unique_ptr<Communicator> make_communicator(World& world, torch::Device device) {
  if (!world.uses_mpi()) return std::make_unique<LocalCommunicator>();
  if (device.is_cuda()) {
#if BORA_HAVE_NCCL
    // NCCL refuses two ranks on one GPU ("Duplicate GPU detected"): when any node
    // has more ranks than GPUs, or BORA_COMM=mpi asks for it, every rank stages
    // through host memory over MPI instead. Decided over the whole world, so that
    // all ranks pick the same backend.
    const char* env = std::getenv("BORA_COMM");
    const std::string choice = env ? env : "";
    BORA_CHECK(choice.empty() || choice == "nccl" || choice == "mpi", ConfigError,
               "BORA_COMM must be nccl or mpi, got '", choice, "'");
    const bool shared = world.local_size() > static_cast<int>(torch::cuda::device_count());
    const bool staged = world.comm().all_reduce_scalar(shared || choice == "mpi" ? 1.0 : 0.0, ReduceOp::Max) > 0;
    if (!staged) return std::make_unique<NcclCommunicator>(MPI_COMM_WORLD, device);
    if (world.rank() == 0)
      BORA_WARN(choice == "mpi" ? "BORA_COMM=mpi" : "ranks share a GPU (NCCL needs one GPU per rank)",
                ": Theta's all-reduce is staged through host memory over MPI");
#else
    if (world.rank() == 0)
      BORA_WARN("CUDA tensors but bora was built without NCCL: Theta's all-reduce is staged through host memory "
                "over MPI (slow; rebuild with NCCL, see docs/distributed.md)");
#endif
  }
  return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, /*owned=*/false);
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
