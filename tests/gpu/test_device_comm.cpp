// test_device_comm: the communicator that bora-train gets on this rank's device, at
// world size 1 under mpirun (ctest gpu_nccl_np1, label gpu). On a GPU that is the
// NcclCommunicator (ncclCommInitRank, ncclAllReduce, ncclBroadcast); with
// BORA_TEST_DEVICE=cpu (bench/gpu/run.sh --cpu) the same tests run on the CPU
// communicator, so the dry run exercises this file. Without a CUDA device and
// without BORA_TEST_DEVICE=cpu the binary prints SKIP and exits 77.
//
// Every dtype a training run sends: the step's float64 buffer (Theta's gradient or
// sum of theta_d, plus the logging scalars), float32 rows, int64/int32 counts, and
// broadcasts of float32, bfloat16, float16, int64 and uint8 (the NCCL id's bytes,
// checkpoint rows in the model's dtype). At world size 1 a sum is the input itself
// and a broadcast leaves the tensor as it is: the checks are exact.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "dist/device_memory.h"
#include "dist/world.h"

namespace {

bora::World* g_world = nullptr;
torch::Device g_device = torch::kCPU;

torch::Tensor values(int64_t n, torch::ScalarType dtype, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  torch::Tensor x = torch::randn({n}, gen, torch::kFloat64) * 1e3;
  if (c10::isIntegralType(dtype, /*includeBool=*/false)) x = x.round();
  return x.to(dtype).to(g_device);
}

TEST(DeviceComm, BackendFollowsTheDevice) {
  auto comm = bora::make_communicator(*g_world, g_device);
  EXPECT_EQ(comm->size(), 1);
  EXPECT_EQ(comm->rank(), 0);
#if BORA_HAVE_NCCL
  EXPECT_EQ(comm->backend(), g_device.is_cuda() ? "nccl" : "mpi");
#else
  EXPECT_EQ(comm->backend(), "mpi");
#endif
}

TEST(DeviceComm, AllReduceSumOfEveryDtypeTheTrainerSends) {
  auto comm = bora::make_communicator(*g_world, g_device);
  int64_t calls = 0, elements = 0;
  for (torch::ScalarType dtype : {torch::kFloat64, torch::kFloat32, torch::kInt64, torch::kInt32})
    // 1 element, an odd size, and an opt-1.3b LoRA r=16 q,v row (3.1M) + 4 scalars.
    for (int64_t n : {int64_t(1), int64_t(1001), int64_t(3145732)}) {
      torch::Tensor x = values(n, dtype, uint64_t(n) * 7 + uint64_t(dtype));
      torch::Tensor y = x.clone();
      comm->all_reduce_sum(y);
      ++calls;
      elements += n;
      EXPECT_EQ(y.device(), g_device);
      EXPECT_EQ(y.scalar_type(), dtype);
      EXPECT_TRUE(torch::equal(x, y)) << c10::toString(dtype) << " n " << n;
    }
  EXPECT_EQ(comm->stats().all_reduces, calls);
  EXPECT_EQ(comm->stats().all_reduce_elements, elements);
}

TEST(DeviceComm, BroadcastOfEveryDtypeKeepsTheBits) {
  auto comm = bora::make_communicator(*g_world, g_device);
  for (torch::ScalarType dtype :
       {torch::kFloat32, torch::kFloat64, torch::kBFloat16, torch::kFloat16, torch::kInt64, torch::kUInt8}) {
    torch::Tensor x = dtype == torch::kUInt8 ? torch::arange(128, torch::kInt64).to(torch::kUInt8).to(g_device)
                                             : values(4099, dtype, 11 + uint64_t(dtype));
    torch::Tensor y = x.clone();
    comm->broadcast(y, 0);
    EXPECT_EQ(y.device(), g_device);
    EXPECT_TRUE(torch::equal(x, y)) << c10::toString(dtype);
  }
}

TEST(DeviceComm, ScalarsAndBytesGoOverMpi) {
  auto comm = bora::make_communicator(*g_world, g_device);
  EXPECT_EQ(comm->all_reduce_scalar(2.5, bora::ReduceOp::Sum), 2.5);
  EXPECT_EQ(comm->all_reduce_scalar(-1.0, bora::ReduceOp::Max), -1.0);
  const auto all = comm->all_gather_bytes("abc");
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0], "abc");
  comm->barrier();
}

TEST(DeviceComm, CpuTensorsGoOverMpiAndHalfSumsAreRefused) {
  if (!g_device.is_cuda()) GTEST_SKIP() << "CUDA only: the NCCL communicator checks the tensor's device";
  auto comm = bora::make_communicator(*g_world, g_device);
  torch::Tensor cpu = torch::ones({4}, torch::kFloat32);
  comm->all_reduce_sum(cpu);  // CPU tensors go over MPI: allowed
  EXPECT_EQ(cpu.sum().item<float>(), 4.0f);
  EXPECT_THROW(
      {
        torch::Tensor h = torch::ones({4}, torch::kFloat16).to(g_device);
        comm->all_reduce_sum(h);  // NCCL sums float64/32 and ints only (the trainer's buffer is float64)
      },
      bora::DistError);
}

TEST(DeviceComm, PeakMemoryIsReported) {
  torch::Tensor big = torch::empty({int64_t(64) << 20}, torch::TensorOptions().dtype(torch::kUInt8).device(g_device));
  big.fill_(1);
  const bora::DeviceMemory m = bora::device_memory(g_device);
  EXPECT_EQ(m.kind, g_device.is_cuda() ? "cuda_allocator" : "cpu_rss");
  EXPECT_GE(m.peak_allocated, int64_t(64) << 20);
  std::printf("  %s\n", bora::describe_device_memory(g_device).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const char* env = std::getenv("BORA_TEST_DEVICE");
  const std::string want = env && *env ? env : "cuda";
  if (want != "cpu" && !torch::cuda::is_available()) {
    std::printf("SKIP: no CUDA device (BORA_TEST_DEVICE=cpu runs these tests on the CPU communicator)\n");
    return 77;
  }
  bora::World world(&argc, &argv);
  g_world = &world;
  if (!world.uses_mpi()) {
    std::printf("test_device_comm: run it under mpirun -np 1 (the communicator needs the MPI world)\n");
    return 2;
  }
  g_device = world.select_device(bora::parse_name(bora::kDeviceNames, "BORA_TEST_DEVICE", want));
  torch::set_num_threads(1);
  std::printf("test_device_comm: %s, %s\n", g_device.str().c_str(), bora::build_info().c_str());
  return RUN_ALL_TESTS();
}
