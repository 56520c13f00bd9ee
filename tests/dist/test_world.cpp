// A process started without a launcher: a world of one without MPI, the local
// communicator (identity collectives, counted), device selection and threads.
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <cstdlib>

#include "core/error.h"
#include "dist/world.h"

namespace bora {
namespace {

TEST(WorldOfOne, NoLauncherMeansNoMpi) {
  ASSERT_FALSE(World::launched()) << "run this test without mpirun";
  int argc = 1;
  char arg0[] = "test_dist";
  char* args[] = {arg0, nullptr};
  char** argv = args;
  World world(&argc, &argv);
  EXPECT_FALSE(world.uses_mpi());
  EXPECT_EQ(world.rank(), 0);
  EXPECT_EQ(world.size(), 1);
  EXPECT_EQ(world.local_rank(), 0);
  EXPECT_EQ(world.local_size(), 1);
  EXPECT_EQ(world.comm().backend(), "local");

  std::unique_ptr<Communicator> comm = make_communicator(world, torch::kCPU);
  EXPECT_EQ(comm->backend(), "local");
  torch::Tensor t = torch::arange(7, torch::kFloat64);
  comm->all_reduce_sum(t);
  comm->all_reduce_sum(t);
  EXPECT_TRUE(t.equal(torch::arange(7, torch::kFloat64)));
  EXPECT_EQ(comm->stats().all_reduces, 2);
  EXPECT_EQ(comm->stats().all_reduce_elements, 14);
  EXPECT_EQ(comm->all_gather_bytes("xy"), std::vector<std::string>{"xy"});
  EXPECT_EQ(comm->all_reduce_scalar(2.5, ReduceOp::Max), 2.5);
  comm->reset_stats();
  EXPECT_EQ(comm->stats().all_reduces, 0);
  // A world of one has no other ranks to split from.
  EXPECT_EQ(world.split(3)->size(), 1);
}

TEST(WorldOfOne, AllReduceNeedsAContiguousTensor) {
  LocalCommunicator comm;
  torch::Tensor t = torch::zeros({4, 4}).t();
  EXPECT_THROW(comm.all_reduce_sum(t), InternalError);
}

TEST(WorldOfOne, DeviceSelection) {
  int argc = 1;
  char arg0[] = "test_dist";
  char* args[] = {arg0, nullptr};
  char** argv = args;
  World world(&argc, &argv);
  EXPECT_EQ(world.select_device(DeviceKind::Cpu), torch::Device(torch::kCPU));
  EXPECT_THROW(parse_name(kDeviceNames, "device", "gpu"), ConfigError);
  if (torch::cuda::is_available()) {
    // Local rank 0 of a world of one: the first GPU.
    EXPECT_EQ(world.select_device(DeviceKind::Auto), torch::Device(torch::kCUDA, 0));
    EXPECT_EQ(world.select_device(DeviceKind::Cuda), torch::Device(torch::kCUDA, 0));
  } else {
    EXPECT_EQ(world.select_device(DeviceKind::Auto), torch::Device(torch::kCPU));
    EXPECT_THROW(world.select_device(DeviceKind::Cuda), ConfigError);
  }
}

TEST(WorldOfOne, ThreadsPerRank) {
  EXPECT_EQ(threads_per_rank(3, 2), 3);  // asked for explicitly
  ::setenv("OMP_NUM_THREADS", "2", 1);
  EXPECT_EQ(threads_per_rank(0, 4), 2);
  ::unsetenv("OMP_NUM_THREADS");
  EXPECT_GE(threads_per_rank(0, 1024), 1);  // never 0, however many ranks share the node
}

}  // namespace
}  // namespace bora
