// NcclCommunicator: see nccl_communicator.h. Compiled only when BORA_HAVE_NCCL;
// exercised by the gpu-label tests (tests/gpu, docs/gpu.md), which need a GPU.
#include "dist/nccl_communicator.h"

#if BORA_HAVE_NCCL

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>

#include <cstring>
#include <exception>

#include "core/error.h"

namespace bora {
namespace {

void check_nccl(ncclResult_t rc, const char* what) {
  BORA_CHECK(rc == ncclSuccess, DistError, what, " failed: ", ncclGetErrorString(rc));
}

void check_cuda(cudaError_t rc, const char* what) {
  BORA_CHECK(rc == cudaSuccess, DistError, what, " failed: ", cudaGetErrorString(rc));
}

ncclDataType_t nccl_type(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat32: return ncclFloat;
    case torch::kFloat64: return ncclDouble;  // the trainer's step buffer
    case torch::kInt64: return ncclInt64;
    case torch::kInt32: return ncclInt32;
    // Half-precision buffers (a bf16 / fp16 run's tensors) reduce as themselves, not
    // as bytes: a sum of bytes would be garbage.
    case torch::kBFloat16: return ncclBfloat16;
    case torch::kFloat16: return ncclFloat16;
    default: BORA_THROW(DistError, "NCCL communicator: unsupported dtype ", c10::toString(t.scalar_type()));
  }
}

}  // namespace

std::string nccl_version() {
  int v = 0;
  check_nccl(ncclGetVersion(&v), "ncclGetVersion");
  // NCCL >= 2.9 encodes major * 10000 + minor * 100 + patch.
  return std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
}

NcclCommunicator::NcclCommunicator(MPI_Comm comm, torch::Device device)
    : mpi_(comm, /*owned=*/false), device_(device) {
  BORA_CHECK(device.is_cuda() && device.has_index(), InternalError,
             "NcclCommunicator needs an indexed CUDA device, got ", device.str());
  ncclUniqueId id;
  std::memset(&id, 0, sizeof id);
  if (mpi_.rank() == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  // The id travels over MPI: a CPU tensor viewing its bytes.
  torch::Tensor bytes = torch::from_blob(&id, {static_cast<int64_t>(sizeof id)}, torch::kUInt8);
  mpi_.broadcast(bytes, 0);
  c10::cuda::CUDAGuard guard(device_);
  check_nccl(ncclCommInitRank(&nccl_, mpi_.size(), id, mpi_.rank()), "ncclCommInitRank");
}

NcclCommunicator::~NcclCommunicator() {
  if (!nccl_) return;
  // While an exception unwinds a failing rank, ncclCommDestroy could wait for
  // operations that peers will never complete: abort the communicator instead
  // (guarded_main then ends the job with MPI_Abort).
  if (std::uncaught_exceptions() > 0) ncclCommAbort(nccl_);
  else ncclCommDestroy(nccl_);
}

void NcclCommunicator::all_reduce_sum_impl(torch::Tensor& t) {
  if (!t.is_cuda()) {
    mpi_.all_reduce_sum(t);
    return;
  }
  BORA_CHECK(t.device() == device_, DistError, "NCCL all-reduce of a tensor on ", t.device().str(),
             "; this rank's communicator is on ", device_.str());
  c10::cuda::CUDAGuard guard(device_);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device_.index()).stream();
  check_nccl(ncclAllReduce(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t), ncclSum, nccl_,
                           stream),
             "ncclAllReduce");
  // No cudaStreamSynchronize: the reduction is queued on the current stream, so every
  // later kernel on it (the optimizer step) and every copy to the host (the step's
  // scalars, read with a synchronous .cpu()) is ordered after it. Waiting here would
  // only stall the host that could be queuing the next kernels; the price is that
  // stats().all_reduce_seconds counts the launch, the wait shows where the host reads.
}

void NcclCommunicator::broadcast(torch::Tensor& t, int root) {
  BORA_CHECK(t.is_contiguous(), DistError, "broadcast needs a contiguous tensor");
  if (!t.is_cuda()) {
    mpi_.broadcast(t, root);
    return;
  }
  BORA_CHECK(t.device() == device_, DistError, "NCCL broadcast of a tensor on ", t.device().str(),
             "; this rank's communicator is on ", device_.str());
  c10::cuda::CUDAGuard guard(device_);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device_.index()).stream();
  // Bytes, so that every dtype (bf16 included) travels unchanged.
  check_nccl(ncclBroadcast(t.data_ptr(), t.data_ptr(), t.nbytes(), ncclUint8, root, nccl_, stream), "ncclBroadcast");
  check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize after ncclBroadcast");
}

}  // namespace bora

#endif  // BORA_HAVE_NCCL
