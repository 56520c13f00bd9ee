// Shared by the tests of test_dist_mpi, a GoogleTest binary that runs inside an
// MPI job (mpirun -np N test_dist_mpi [--gtest_filter=...] [--fixture DIR]).
//
// The World (MPI_Init .. MPI_Finalize) lives in main (test_mpi_main.cpp) for the
// whole run; tests reach it through world(). Every test is collective: all ranks
// run the same tests in the same order, and each test does all of its collectives
// before it asserts, so that a failing check on one rank cannot leave the others
// waiting in a collective the failing rank skipped.
#pragma once

#include <string>

#include "dist/world.h"

namespace bora::dist_test {

World& world();
// The folder made by make_fixture.sh (model/, data/, runs/); "" when not given.
const std::string& fixture();

}  // namespace bora::dist_test
