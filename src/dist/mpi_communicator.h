// Communicator over an MPI communicator, for CPU tensors (float32/float64; int32
// and int64 too). CUDA tensors are staged through host memory (copy out, reduce,
// copy back): the path of a CUDA build without NCCL, correct but slow.
//
// all_reduce_sum is MPI_Reduce_scatter_block + MPI_Allgather over a buffer padded
// to a multiple of the world size: each element is summed exactly once, by one rank,
// and every rank receives those same bits — Theta's replicas stay identical, which
// a plain MPI_Allreduce does not promise.
#pragma once

#include <mpi.h>

#include "dist/communicator.h"

namespace bora {

class MpiCommunicator : public Communicator {
 public:
  // Does not take ownership of `comm` unless `owned` (then MPI_Comm_free on destruction).
  MpiCommunicator(MPI_Comm comm, bool owned);
  ~MpiCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }
  void broadcast(torch::Tensor& t, int root) override;
  std::vector<std::string> all_gather_bytes(const std::string& mine) override;
  std::vector<std::string> gather_bytes(const std::string& mine, int root) override;
  void barrier() override;
  double all_reduce_scalar(double v, ReduceOp op) override;
  MPI_Comm raw() const { return comm_; }

 protected:
  void all_reduce_sum_impl(torch::Tensor& t) override;

 private:
  MPI_Comm comm_;
  bool owned_;
  int rank_ = 0, size_ = 1;
};

}  // namespace bora
