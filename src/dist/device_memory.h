// Peak device memory of this process, for the end-of-run report of bora-train and
// the GPU benchmark (bench/gpu): on CUDA the caching allocator's statistics (the
// same numbers as torch.cuda.max_memory_allocated / max_memory_reserved in Python);
// on the CPU the process's peak resident set (VmHWM). Lives beside World's device
// selection; compiled with CUDA headers only when BORA_HAVE_CUDA.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>

namespace bora {

struct DeviceMemory {
  std::string kind;              // "cuda_allocator" or "cpu_rss" ("" = unknown)
  int64_t peak_allocated = -1;   // bytes: CUDA max allocated; CPU peak RSS
  int64_t peak_reserved = -1;    // bytes: CUDA max reserved by the caching allocator; CPU -1
  int64_t allocated = -1;        // bytes now: CUDA allocated; CPU current RSS
};

DeviceMemory device_memory(torch::Device device);
// Starts a new peak (CUDA only; the CPU's VmHWM cannot be reset).
void reset_device_memory_peak(torch::Device device);
// "peak GPU memory on cuda:0: 1.234 GiB allocated, 1.500 GiB reserved (12345 bytes allocated)"
std::string describe_device_memory(torch::Device device);

}  // namespace bora
