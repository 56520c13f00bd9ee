#include "dist/mpi_communicator.h"

#include <climits>
#include <exception>

#include "core/error.h"

namespace bora {
namespace {

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  BORA_THROW(DistError, what, " failed: ", std::string(text, static_cast<size_t>(len)));
}

MPI_Datatype mpi_type(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat32: return MPI_FLOAT;
    case torch::kFloat64: return MPI_DOUBLE;
    case torch::kInt64: return MPI_INT64_T;
    case torch::kInt32: return MPI_INT32_T;
    default: BORA_THROW(DistError, "MPI communicator: unsupported dtype ", c10::toString(t.scalar_type()));
  }
}

int as_count(size_t n) {
  BORA_CHECK(n <= static_cast<size_t>(INT_MAX), DistError, "MPI message of ", n,
             " bytes exceeds the 2 GiB limit of int counts");
  return static_cast<int>(n);
}

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm comm, bool owned) : comm_(comm), owned_(owned) {
  check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
  check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  // Not while an exception unwinds a failing rank: the job is about to be aborted.
  if (owned_ && !finalized && std::uncaught_exceptions() == 0) MPI_Comm_free(&comm_);
}

void MpiCommunicator::all_reduce_sum_impl(torch::Tensor& t) {
  if (size_ == 1) return;
  if (!t.device().is_cpu()) {
    // A CUDA tensor without NCCL: stage through host memory. Correct but slow
    // (two PCIe copies per step); make_communicator() picks NCCL when it exists.
    torch::Tensor host = t.to(torch::kCPU).contiguous();
    all_reduce_sum_impl(host);
    t.copy_(host);
    return;
  }
  const int64_t n = t.numel();
  const int64_t chunk = (n + size_ - 1) / size_;
  // Padded to a multiple of the world size, so that every rank owns `chunk`
  // elements of the reduce-scatter (the pad is zeros and is never read back).
  torch::Tensor padded = torch::zeros({chunk * size_}, t.options());
  padded.narrow(0, 0, n).copy_(t.view({-1}));
  torch::Tensor mine = torch::empty({chunk}, t.options());
  MPI_Datatype type = mpi_type(t);
  check(MPI_Reduce_scatter_block(padded.data_ptr(), mine.data_ptr(), as_count(size_t(chunk)), type, MPI_SUM, comm_),
        "MPI_Reduce_scatter_block");
  check(MPI_Allgather(mine.data_ptr(), as_count(size_t(chunk)), type, padded.data_ptr(), as_count(size_t(chunk)),
                      type, comm_),
        "MPI_Allgather");
  t.view({-1}).copy_(padded.narrow(0, 0, n));
}

void MpiCommunicator::broadcast(torch::Tensor& t, int root) {
  BORA_CHECK(t.is_contiguous(), DistError, "broadcast needs a contiguous tensor");
  if (!t.device().is_cpu()) {
    torch::Tensor host = t.to(torch::kCPU).contiguous();
    broadcast(host, root);
    t.copy_(host);
    return;
  }
  check(MPI_Bcast(t.data_ptr(), as_count(t.nbytes()), MPI_BYTE, root, comm_), "MPI_Bcast");
}

std::vector<std::string> MpiCommunicator::all_gather_bytes(const std::string& mine) {
  int len = as_count(mine.size());
  std::vector<int> lens(static_cast<size_t>(size_)), offs(static_cast<size_t>(size_));
  check(MPI_Allgather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, comm_), "MPI_Allgather");
  size_t total = 0;
  for (int r = 0; r < size_; ++r) {
    offs[size_t(r)] = as_count(total);
    total += size_t(lens[size_t(r)]);
  }
  std::string all(total, '\0');
  check(MPI_Allgatherv(mine.data(), len, MPI_BYTE, all.data(), lens.data(), offs.data(), MPI_BYTE, comm_),
        "MPI_Allgatherv");
  std::vector<std::string> out;
  for (int r = 0; r < size_; ++r) out.push_back(all.substr(size_t(offs[size_t(r)]), size_t(lens[size_t(r)])));
  return out;
}

std::vector<std::string> MpiCommunicator::gather_bytes(const std::string& mine, int root) {
  int len = as_count(mine.size());
  std::vector<int> lens(static_cast<size_t>(size_)), offs(static_cast<size_t>(size_));
  check(MPI_Gather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, root, comm_), "MPI_Gather");
  size_t total = 0;
  if (rank_ == root)
    for (int r = 0; r < size_; ++r) {
      offs[size_t(r)] = as_count(total);
      total += size_t(lens[size_t(r)]);
    }
  std::string all(total, '\0');
  check(MPI_Gatherv(mine.data(), len, MPI_BYTE, all.data(), lens.data(), offs.data(), MPI_BYTE, root, comm_),
        "MPI_Gatherv");
  std::vector<std::string> out;
  if (rank_ == root)
    for (int r = 0; r < size_; ++r) out.push_back(all.substr(size_t(offs[size_t(r)]), size_t(lens[size_t(r)])));
  return out;
}

void MpiCommunicator::barrier() { check(MPI_Barrier(comm_), "MPI_Barrier"); }

double MpiCommunicator::all_reduce_scalar(double v, ReduceOp op) {
  const MPI_Op o = op == ReduceOp::Sum ? MPI_SUM : op == ReduceOp::Min ? MPI_MIN : MPI_MAX;
  double out = 0;
  check(MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, o, comm_), "MPI_Allreduce");
  return out;
}

}  // namespace bora
