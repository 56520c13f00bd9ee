// The MPI communicator and World under mpirun (run with -np 3: sizes that do not
// divide by the world, a rank with an empty payload): every collective against a
// result each rank computes on its own from every rank's (reproducible) inputs,
// and all_reduce_sum bit-identical on every rank.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "core/hash.h"
#include "dist/mpi_communicator.h"
#include "mpi_test.h"

namespace bora {
namespace {

using dist_test::world;

// Rank r's input of a test: values spanning 12 orders of magnitude with both
// signs, so that summation order changes the low bits (bit-identity is then a
// property of the algorithm, not of easy inputs).
torch::Tensor input_of(int rank, int64_t n, torch::ScalarType dtype) {
  auto gen = at::detail::createCPUGenerator(static_cast<uint64_t>(1000 * rank + n));
  torch::Tensor mant = torch::randn({n}, gen, torch::kFloat64);
  torch::Tensor expo = torch::randint(-6, 7, {n}, gen, torch::kFloat64);
  return (mant * torch::pow(10.0, expo)).to(dtype);
}

// Every rank's 8-byte hash of `t`, gathered.
std::vector<std::string> hashes(Communicator& comm, const torch::Tensor& t) {
  torch::Tensor c = t.contiguous();
  const uint64_t h = hash64(c.data_ptr(), c.nbytes());
  return comm.all_gather_bytes(std::string(reinterpret_cast<const char*>(&h), 8));
}

TEST(CommMpi, AllReduceSumIsTheSumAndBitIdenticalOnEveryRank) {
  ASSERT_TRUE(world().uses_mpi());
  std::unique_ptr<Communicator> comm = make_communicator(world(), torch::kCPU);
  ASSERT_EQ(comm->backend(), "mpi");
  const int P = comm->size();
  int64_t calls = 0, elements = 0;
  for (torch::ScalarType dtype : {torch::kFloat32, torch::kFloat64})
    for (int64_t n : {int64_t(1), int64_t(2), int64_t(5), int64_t(7), int64_t(1000), int64_t(1001), int64_t(4099)}) {
      torch::Tensor mine = input_of(comm->rank(), n, dtype);
      torch::Tensor out = mine.clone();
      comm->all_reduce_sum(out);
      calls += 1;
      elements += n;
      const std::vector<std::string> h = hashes(*comm, out);
      // The expectation, from every rank's input, in float64.
      torch::Tensor expect = torch::zeros({n}, torch::kFloat64), scale = torch::zeros({n}, torch::kFloat64);
      for (int r = 0; r < P; ++r) {
        expect += input_of(r, n, dtype).to(torch::kFloat64);
        scale += input_of(r, n, dtype).to(torch::kFloat64).abs();
      }
      const double tol = dtype == torch::kFloat32 ? 1e-6 : 1e-14;
      const double err = ((out.to(torch::kFloat64) - expect).abs() / scale.clamp_min(1e-300)).max().item<double>();
      EXPECT_LE(err, tol) << c10::toString(dtype) << " n " << n;
      for (int r = 1; r < P; ++r) EXPECT_EQ(h[size_t(r)], h[0]) << c10::toString(dtype) << " n " << n << " rank " << r;
      EXPECT_EQ(out.scalar_type(), dtype);
    }
  EXPECT_EQ(comm->stats().all_reduces, calls);
  EXPECT_EQ(comm->stats().all_reduce_elements, elements);
  EXPECT_GE(comm->stats().all_reduce_seconds, 0.0);
}

TEST(CommMpi, AllReduceSumOfIntegersIsExact) {
  std::unique_ptr<Communicator> comm = make_communicator(world(), torch::kCPU);
  const int P = comm->size();
  torch::Tensor t = torch::arange(11, torch::kInt64) * (comm->rank() + 1);
  comm->all_reduce_sum(t);
  EXPECT_TRUE(t.equal(torch::arange(11, torch::kInt64) * (P * (P + 1) / 2)));
}

TEST(CommMpi, BroadcastFromEveryRoot) {
  std::unique_ptr<Communicator> comm = make_communicator(world(), torch::kCPU);
  for (int root = 0; root < comm->size(); ++root) {
    torch::Tensor f = comm->rank() == root ? input_of(root, 13, torch::kFloat64) : torch::zeros({13}, torch::kFloat64);
    torch::Tensor i = comm->rank() == root ? torch::arange(5, torch::kInt64) + root : torch::zeros({5}, torch::kInt64);
    comm->broadcast(f, root);
    comm->broadcast(i, root);
    EXPECT_TRUE(f.equal(input_of(root, 13, torch::kFloat64))) << "root " << root;
    EXPECT_TRUE(i.equal(torch::arange(5, torch::kInt64) + root)) << "root " << root;
  }
  // Broadcasts are not all-reduces.
  EXPECT_EQ(comm->stats().all_reduces, 0);
}

// Rank r's payload: r * 3 bytes (rank 0: empty), with zero bytes inside.
std::string payload_of(int r) {
  std::string s(static_cast<size_t>(3 * r), '\0');
  for (size_t i = 0; i < s.size(); ++i) s[i] = i % 2 ? char('a' + r) : '\0';
  return s;
}

TEST(CommMpi, GatherBytesWithEmptyAndUnevenPayloads) {
  std::unique_ptr<Communicator> comm = make_communicator(world(), torch::kCPU);
  const int P = comm->size(), me = comm->rank();
  const std::vector<std::string> all = comm->all_gather_bytes(payload_of(me));
  const std::vector<std::string> none = comm->all_gather_bytes("");
  const int root = P - 1;
  const std::vector<std::string> at_root = comm->gather_bytes(payload_of(me), root);
  const std::vector<std::string> empty_at_root = comm->gather_bytes("", root);

  ASSERT_EQ(all.size(), size_t(P));
  for (int r = 0; r < P; ++r) EXPECT_EQ(all[size_t(r)], payload_of(r)) << "rank " << r;
  EXPECT_EQ(none, std::vector<std::string>(size_t(P)));
  if (me == root) {
    ASSERT_EQ(at_root.size(), size_t(P));
    for (int r = 0; r < P; ++r) EXPECT_EQ(at_root[size_t(r)], payload_of(r)) << "rank " << r;
    EXPECT_EQ(empty_at_root, std::vector<std::string>(size_t(P)));
  } else {
    EXPECT_TRUE(at_root.empty());
    EXPECT_TRUE(empty_at_root.empty());
  }
}

TEST(CommMpi, ScalarReductions) {
  std::unique_ptr<Communicator> comm = make_communicator(world(), torch::kCPU);
  const int P = comm->size();
  const double v = comm->rank() + 1;
  const double sum = comm->all_reduce_scalar(v, ReduceOp::Sum), mn = comm->all_reduce_scalar(v, ReduceOp::Min),
               mx = comm->all_reduce_scalar(v, ReduceOp::Max);
  EXPECT_EQ(sum, P * (P + 1) / 2.0);
  EXPECT_EQ(mn, 1.0);
  EXPECT_EQ(mx, double(P));
  comm->barrier();
}

TEST(WorldMpi, RanksMatchTheLauncher) {
  // Open MPI's own view, independent of MPI_Comm_split_type.
  const char* size = std::getenv("OMPI_COMM_WORLD_SIZE");
  const char* rank = std::getenv("OMPI_COMM_WORLD_RANK");
  const char* local_rank = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK");
  const char* local_size = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  ASSERT_TRUE(size && rank && local_rank && local_size) << "run under Open MPI's mpirun";
  EXPECT_EQ(world().size(), std::atoi(size));
  EXPECT_EQ(world().rank(), std::atoi(rank));
  EXPECT_EQ(world().local_rank(), std::atoi(local_rank));
  EXPECT_EQ(world().local_size(), std::atoi(local_size));
  EXPECT_EQ(world().comm().backend(), "mpi");
  EXPECT_EQ(world().select_device(DeviceKind::Cpu), torch::Device(torch::kCPU));
}

TEST(WorldMpi, SplitGroupsRanksByColor) {
  const int P = world().size(), me = world().rank();
  const int color = me % 2;
  std::unique_ptr<Communicator> group = world().split(color);
  torch::Tensor t = torch::full({3}, double(me), torch::kFloat64);
  group->all_reduce_sum(t);
  const std::vector<std::string> members = group->all_gather_bytes(std::to_string(me));

  std::vector<std::string> expect_members;
  double expect_sum = 0;
  for (int r = color; r < P; r += 2) {
    expect_members.push_back(std::to_string(r));
    expect_sum += r;
  }
  EXPECT_EQ(group->size(), int(expect_members.size()));
  EXPECT_EQ(group->rank(), me / 2);  // ordered by world rank
  EXPECT_EQ(members, expect_members);
  EXPECT_TRUE(t.equal(torch::full({3}, expect_sum, torch::kFloat64)));
}

}  // namespace
}  // namespace bora
