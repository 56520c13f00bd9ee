# Third-party dependencies, all from Debian packages (nothing vendored):
#   libtorch-dev libopenmpi-dev openmpi-bin libhdf5-dev libboost-program-options-dev
#   libgtest-dev libgmock-dev nlohmann-json3-dev libxxhash-dev
# On a GPU host, a CUDA LibTorch 2.x is found through CMAKE_PREFIX_PATH and NCCL
# through NCCL_ROOT (or the nvidia-nccl wheel beside python's torch).

find_package(Torch REQUIRED)
# LibTorch's flags (e.g. -D_GLIBCXX_USE_CXX11_ABI) must be the same in every
# translation unit, also the ones that do not include torch: std::string crosses them.
set(CMAKE_CXX_FLAGS "${CMAKE_CXX_FLAGS} ${TORCH_CXX_FLAGS}")
add_library(bora_torch INTERFACE)
target_link_libraries(bora_torch INTERFACE ${TORCH_LIBRARIES})
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
  # NCCL: a system install, NCCL_ROOT, or the nvidia-nccl-cu* wheel next to torch.
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
add_compile_definitions(BORA_HAVE_CUDA=$<BOOL:${BORA_HAVE_CUDA}> BORA_HAVE_NCCL=$<BOOL:${BORA_HAVE_NCCL}>)
