// main of test_dist_mpi (see mpi_test.h): joins the MPI world, runs the selected
// tests on every rank, and returns the same exit code on every rank (non-zero when
// any rank saw a failure).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <memory>

#include "mpi_test.h"

namespace bora::dist_test {
namespace {
// The world and the fixture path of this test process, set once in main before
// any test runs (GoogleTest tests take no arguments).
World* g_world = nullptr;
std::string g_fixture;
}  // namespace

World& world() { return *g_world; }
const std::string& fixture() { return g_fixture; }

}  // namespace bora::dist_test

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);  // removes the --gtest_* flags
  bora::World world(&argc, &argv);
  bora::dist_test::g_world = &world;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--fixture") == 0) bora::dist_test::g_fixture = argv[i + 1];
  torch::set_num_threads(1);
  const int mine = RUN_ALL_TESTS();
  // One verdict for the whole job, agreed on by every rank.
  const int worst = static_cast<int>(world.comm().all_reduce_scalar(double(mine), bora::ReduceOp::Max));
  if (world.rank() == 0) std::printf("test_dist_mpi: %d ranks, %s\n", world.size(), worst ? "FAILED" : "passed");
  return worst;
}
