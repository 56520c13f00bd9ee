// Communicator for CUDA tensors over NCCL; compiled only when BORA_HAVE_NCCL
// (cmake/BoraDeps.cmake), and NOT exercised by any test on a machine without GPUs.
//
// Start-up (collective over the MPI communicator it is given): rank 0 creates an
// ncclUniqueId, MPI broadcasts its 128 bytes, every rank calls ncclCommInitRank on
// its own GPU (World::select_device made cuda:local_rank the current device).
//
//   all_reduce_sum   CUDA tensors: ncclAllReduce (sum) queued on the current CUDA
//                    stream, without waiting (stream order suffices: see the .cpp);
//                    fp32, fp64, bf16, fp16, int32, int64. CPU tensors: MPI.
//   broadcast        CUDA tensors: ncclBroadcast; CPU tensors: MPI.
//   bytes, barrier, scalars: MPI (small host-side metadata, never on the step path).
//
// Replicas: NCCL's ring and tree all-reduce both finish by distributing one rank's
// reduced values, so every rank holds the same bits; the trainer's replica checksum
// (replica_check_every) verifies that on every run.
#pragma once

#if BORA_HAVE_NCCL

#include <mpi.h>
#include <nccl.h>

#include "dist/communicator.h"
#include "dist/mpi_communicator.h"

namespace bora {

class NcclCommunicator : public Communicator {
 public:
  // Collective over `comm` (not owned); `device` is this rank's CUDA device.
  NcclCommunicator(MPI_Comm comm, torch::Device device);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return mpi_.rank(); }
  int size() const override { return mpi_.size(); }
  std::string backend() const override { return "nccl"; }
  void broadcast(torch::Tensor& t, int root) override;
  std::vector<std::string> all_gather_bytes(const std::string& mine) override { return mpi_.all_gather_bytes(mine); }
  std::vector<std::string> gather_bytes(const std::string& mine, int root) override {
    return mpi_.gather_bytes(mine, root);
  }
  void barrier() override { mpi_.barrier(); }
  double all_reduce_scalar(double v, ReduceOp op) override { return mpi_.all_reduce_scalar(v, op); }

 protected:
  void all_reduce_sum_impl(torch::Tensor& t) override;

 private:
  MpiCommunicator mpi_;
  torch::Device device_;
  ncclComm_t nccl_ = nullptr;
};

// The version of the libnccl loaded at run time, e.g. "2.28.9".
std::string nccl_version();

}  // namespace bora

#endif  // BORA_HAVE_NCCL
