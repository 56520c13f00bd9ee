# Helpers that give every library, tool, test and benchmark the same settings.
#
#   bora_add_library(NAME SOURCES ... DEPS ... [TORCH])
#   bora_add_executable(NAME SOURCES ... DEPS ... [TORCH])
#   bora_add_gtest(NAME SOURCES ... DEPS ... [TORCH] [LABELS ...])
#
# TORCH targets compile against one shared precompiled header (src/pch.h): parsing
# LibTorch's headers is most of a translation unit's compile time (bench/README.md).

include(GoogleTest OPTIONAL)

# One object library owns the precompiled header; others reuse it (REUSE_FROM needs
# identical flags, which is why compile definitions are global in BoraDeps.cmake).
add_library(bora_pch OBJECT ${CMAKE_SOURCE_DIR}/src/pch.cpp)
target_link_libraries(bora_pch PUBLIC bora_torch nlohmann_json::nlohmann_json)
target_precompile_headers(bora_pch PRIVATE ${CMAKE_SOURCE_DIR}/src/pch.h)
# The same flags as every user of the header, or gcc silently ignores the PCH.
target_compile_options(bora_pch PRIVATE ${BORA_WARNINGS})
set_target_properties(bora_pch PROPERTIES POSITION_INDEPENDENT_CODE OFF)

function(_bora_setup target torch)
  target_compile_options(${target} PRIVATE ${BORA_WARNINGS})
  target_include_directories(${target} PUBLIC ${CMAKE_SOURCE_DIR}/src)
  if(torch)
    target_link_libraries(${target} PUBLIC bora_torch nlohmann_json::nlohmann_json)
    target_precompile_headers(${target} REUSE_FROM bora_pch)
  endif()
endfunction()

function(bora_add_library name)
  cmake_parse_arguments(A "TORCH" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${A_SOURCES})
  _bora_setup(${name} "${A_TORCH}")
  target_link_libraries(${name} PUBLIC ${A_DEPS})
endfunction()

function(bora_add_executable name)
  cmake_parse_arguments(A "TORCH" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${A_SOURCES})
  _bora_setup(${name} "${A_TORCH}")
  target_link_libraries(${name} PRIVATE ${A_DEPS})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
endfunction()

# One GoogleTest binary per source folder; every TEST becomes its own ctest entry.
function(bora_add_gtest name)
  cmake_parse_arguments(A "TORCH" "" "SOURCES;DEPS;LABELS" ${ARGN})
  find_package(GTest REQUIRED)
  add_executable(${name} ${A_SOURCES})
  _bora_setup(${name} "${A_TORCH}")
  target_link_libraries(${name} PRIVATE ${A_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests)
  target_compile_definitions(${name} PRIVATE
    BORA_SOURCE_DIR="${CMAKE_SOURCE_DIR}" BORA_BINARY_DIR="${CMAKE_BINARY_DIR}")
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 60
                       PROPERTIES LABELS "${A_LABELS}" ENVIRONMENT "OMP_NUM_THREADS=1")
endfunction()

# An MPI test: `mpirun -np N <binary> args...` as one ctest entry.
function(bora_add_mpi_test name np)
  cmake_parse_arguments(A "" "TIMEOUT" "COMMAND;LABELS" ${ARGN})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 300)
  endif()
  add_test(NAME ${name}
           COMMAND ${MPIEXEC_EXECUTABLE} --allow-run-as-root --oversubscribe
                   --mca btl self,vader --bind-to none -np ${np} ${A_COMMAND})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${A_TIMEOUT} LABELS "mpi;${A_LABELS}"
                       ENVIRONMENT "OMP_NUM_THREADS=1;OMPI_MCA_rmaps_base_oversubscribe=1")
endfunction()

# A test in Python against the libraries users run (transformers, PEFT, tiktoken,
# tokenizers, h5py): `BORA_PYTHON script args...` as one ctest entry, label hf.
#   bora_add_py_test(NAME SCRIPT [ARGS ...] [LABELS ...] [TIMEOUT s])
# Without the venv it is skipped with a message that says how to get it (exit 77,
# SKIP_RETURN_CODE); CI configures with BORA_HF_TESTS=ON, which makes a missing
# venv a configure error instead. The scripts find bora's tools through BORA_BIN,
# test-only tools (built into build/tests) through BORA_TEST_BIN, and the shared
# helpers (tests/common/bora_testing.py) through PYTHONPATH.
function(bora_add_py_test name script)
  cmake_parse_arguments(A "" "TIMEOUT" "ARGS;LABELS" ${ARGN})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 300)
  endif()
  add_test(NAME ${name} COMMAND ${CMAKE_SOURCE_DIR}/tests/common/run_py.sh ${script} ${A_ARGS})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${A_TIMEOUT} LABELS "hf;${A_LABELS}" SKIP_RETURN_CODE 77
    ENVIRONMENT "BORA_PYTHON=${BORA_PYTHON};BORA_BIN=${CMAKE_BINARY_DIR}/bin;BORA_TEST_BIN=${CMAKE_BINARY_DIR}/tests;BORA_SOURCE_DIR=${CMAKE_SOURCE_DIR};BORA_TEST_TMP=${CMAKE_CURRENT_BINARY_DIR}/${name}.tmp;PYTHONPATH=${CMAKE_SOURCE_DIR}/tests/common;OMP_NUM_THREADS=1;HF_HUB_OFFLINE=1;TRANSFORMERS_OFFLINE=1;HF_HUB_DISABLE_TELEMETRY=1;TIKTOKEN_CACHE_DIR=${CMAKE_SOURCE_DIR}/.deps/gpt2/tiktoken;PYTHONDONTWRITEBYTECODE=1")
endfunction()
