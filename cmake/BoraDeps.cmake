# Third-party dependencies: Debian packages, and LibTorch from the torch wheel in the
# project's Python environment (nothing vendored):
#   libopenmpi-dev openmpi-bin libhdf5-dev libboost-program-options-dev
#   libgtest-dev libgmock-dev nlohmann-json3-dev libxxhash-dev    (launch/install-deps.sh)
#   .deps/venv: torch 2.11.0 (CUDA 13.0), its nvidia-* wheels (NCCL among them)
# LibTorch is found, in this order, through CMAKE_PREFIX_PATH / Torch_DIR (a LibTorch
# zip or another pip torch), else through BORA_PYTHON's torch. The CUDA toolkit
# (nvcc, CUDAToolkit) must match the torch build's CUDA major version.

set(BORA_PYTHON "${CMAKE_SOURCE_DIR}/.deps/venv/bin/python3" CACHE FILEPATH
    "Python whose torch provides LibTorch (when CMAKE_PREFIX_PATH does not) and which runs the hf tests")
if(NOT Torch_DIR AND EXISTS "${BORA_PYTHON}")
  # torch.utils.cmake_prefix_path is <site-packages>/torch/share/cmake; find_spec
  # gives the same folder without importing torch (seconds).
  execute_process(COMMAND "${BORA_PYTHON}" -c
                  "import importlib.util as u; print(u.find_spec('torch').submodule_search_locations[0])"
                  OUTPUT_VARIABLE _bora_torch_pkg OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc ERROR_QUIET)
  if(_rc EQUAL 0 AND EXISTS "${_bora_torch_pkg}/share/cmake/Torch")
    list(APPEND CMAKE_PREFIX_PATH "${_bora_torch_pkg}/share/cmake")
  endif()
endif()
# bora has no .cu files: the architecture list only silences torch's GPU probe.
if(NOT DEFINED TORCH_CUDA_ARCH_LIST AND NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(TORCH_CUDA_ARCH_LIST "9.0")
endif()
find_package(Torch REQUIRED)
if(Torch_VERSION VERSION_LESS 2.1)
  message(FATAL_ERROR "LibTorch ${Torch_VERSION} at ${Torch_DIR}: bora needs 2.1 or newer (launch/install-deps.sh "
                      "installs 2.11.0 into .deps/venv)")
endif()
# LibTorch's flags (e.g. -D_GLIBCXX_USE_CXX11_ABI) must be the same in every
# translation unit, also the ones that do not include torch: std::string crosses them.
set(CMAKE_CXX_FLAGS "${CMAKE_CXX_FLAGS} ${TORCH_CXX_FLAGS}")
add_library(bora_torch INTERFACE)
target_link_libraries(bora_torch INTERFACE ${TORCH_LIBRARIES})
# The PyPI wheels' libtorch.so exports its own copies of std::filesystem (from the
# newer GCC's libstdc++_nonshared it was built with); their remove_all calls a weak
# symbol that GCC 12's libstdc++ lacks, so a call that binds to them jumps to 0.
# Putting libstdc++.so.6 first in DT_NEEDED makes the dynamic linker bind every
# std:: symbol, libtorch's own calls included, to the system library.
target_link_options(bora_torch INTERFACE "LINKER:--push-state,--no-as-needed,-lstdc++,--pop-state")
target_include_directories(bora_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})

find_package(MPI REQUIRED COMPONENTS C)
# The C API only: the deprecated MPI C++ bindings would need libmpi_cxx.
add_compile_definitions(OMPI_SKIP_MPICXX=1 MPICH_SKIP_MPICXX=1)
find_package(HDF5 REQUIRED COMPONENTS C)
find_package(Boost REQUIRED COMPONENTS program_options)
find_package(nlohmann_json 3.9 REQUIRED)
find_package(Threads REQUIRED)

find_package(PkgConfig REQUIRED)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)

# ---- CUDA and NCCL: compiled only when LibTorch was built with CUDA -------------
# TorchConfig.cmake appends c10_cuda and the CUDA runtime to TORCH_CUDA_LIBRARIES
# (LibTorch 2.x) when it was built with USE_CUDA.
set(BORA_HAVE_CUDA OFF)
set(BORA_HAVE_NCCL OFF)
if(NOT BORA_CUDA STREQUAL "OFF")
  if(TORCH_CUDA_LIBRARIES OR C10_CUDA_LIBRARY)
    set(BORA_HAVE_CUDA ON)
  elseif(BORA_CUDA STREQUAL "ON")
    message(FATAL_ERROR "BORA_CUDA=ON but the LibTorch found (${Torch_DIR}) has no CUDA")
  endif()
endif()
if(BORA_HAVE_CUDA)
  find_package(CUDAToolkit REQUIRED)
  # NCCL: NCCL_ROOT, else the nvidia-nccl-cu* wheel beside a pip torch (the very
  # library libtorch_cuda.so loads, so that one libnccl.so.2 serves both), else a
  # system install.
  get_filename_component(_torch_site "${Torch_DIR}/../../../.." ABSOLUTE)
  find_path(NCCL_INCLUDE_DIR nccl.h
            HINTS $ENV{NCCL_ROOT}/include ${_torch_site}/nvidia/nccl/include)
  find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2
               HINTS $ENV{NCCL_ROOT}/lib ${_torch_site}/nvidia/nccl/lib)
  if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
    set(BORA_HAVE_NCCL ON)
    add_library(bora_nccl INTERFACE)
    target_include_directories(bora_nccl SYSTEM INTERFACE ${NCCL_INCLUDE_DIR})
    target_link_libraries(bora_nccl INTERFACE ${NCCL_LIBRARY} CUDA::cudart)
  elseif(BORA_CUDA STREQUAL "ON")
    message(FATAL_ERROR "BORA_CUDA=ON but NCCL was not found (set NCCL_ROOT)")
  endif()
endif()
# Definitions are global so that every target can reuse one precompiled header.
add_compile_definitions(BORA_HAVE_CUDA=$<BOOL:${BORA_HAVE_CUDA}> BORA_HAVE_NCCL=$<BOOL:${BORA_HAVE_NCCL}>
                        BORA_VERSION="${PROJECT_VERSION}")

# ---- the hf tests' Python (transformers, PEFT, tiktoken, h5py) ----------------------
set(BORA_HAVE_VENV OFF)
if(EXISTS "${BORA_PYTHON}")
  set(BORA_HAVE_VENV ON)
elseif(BORA_HF_TESTS)
  message(FATAL_ERROR "BORA_HF_TESTS=ON but ${BORA_PYTHON} does not exist: run launch/install-deps.sh")
endif()
