// The one abstraction over inter-rank communication. Only dist/ calls MPI or NCCL.
//
// BoRA needs very little: per optimizer step ONE all-reduce (sum) of a flat buffer
// of |Theta| floats (Theta's gradient, or sum_d theta_d), plus small collectives at
// start-up, evaluation and checkpointing. Backends:
//   LocalCommunicator  world of one process (no MPI needed);
//   MpiCommunicator    CPU tensors over an MPI communicator (CUDA tensors are
//                      staged through host memory: the fallback without NCCL);
//   NcclCommunicator   CUDA tensors over NCCL, everything else over MPI
//                      (compiled only when BORA_HAVE_NCCL);
// make_communicator() (dist/world.h) picks one by where the tensors live.
//
// Every replica must end a collective with bit-identical results (Theta is
// replicated and checked by checksum), so all_reduce_sum is a reduce-scatter then
// an all-gather: each element is summed once, by one rank, in a fixed order.
//
// CommStats counts the all_reduce_sum calls and their elements; the tests check
// from it that a training step does exactly one all-reduce of |Theta| (+ scalars).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bora {

enum class ReduceOp { Sum, Min, Max };

struct CommStats {
  int64_t all_reduces = 0;          // all_reduce_sum calls
  int64_t all_reduce_elements = 0;  // elements summed by those calls
  double all_reduce_seconds = 0;    // wall time spent in them
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  // "local", "mpi", "nccl"

  // Elementwise sum over ranks, in place. `t` must be contiguous. CPU tensors: returns
  // when the result is in `t`. CUDA tensors (NCCL): the reduction is queued on the
  // current stream and may still run: later kernels on that stream and synchronous
  // copies to the host see the result, and stats() counts the launch only.
  void all_reduce_sum(torch::Tensor& t);
  // Copies root's `t` to every rank, in place.
  virtual void broadcast(torch::Tensor& t, int root) = 0;
  // Every rank's bytes, indexed by rank (small metadata: eval results, names).
  virtual std::vector<std::string> all_gather_bytes(const std::string& mine) = 0;
  // Every rank's bytes on `root` (indexed by rank); an empty vector elsewhere.
  virtual std::vector<std::string> gather_bytes(const std::string& mine, int root) = 0;
  virtual void barrier() = 0;
  // Sum/min/max of one double over ranks (e.g. "did any rank see a NaN").
  virtual double all_reduce_scalar(double v, ReduceOp op) = 0;

  const CommStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }

 protected:
  virtual void all_reduce_sum_impl(torch::Tensor& t) = 0;

 private:
  CommStats stats_;
};

// A world of one: every collective is the identity.
class LocalCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "local"; }
  void broadcast(torch::Tensor&, int) override {}
  std::vector<std::string> all_gather_bytes(const std::string& mine) override { return {mine}; }
  std::vector<std::string> gather_bytes(const std::string& mine, int) override { return {mine}; }
  void barrier() override {}
  double all_reduce_scalar(double v, ReduceOp) override { return v; }

 protected:
  void all_reduce_sum_impl(torch::Tensor&) override {}
};

}  // namespace bora
