// Host -> device copies that do not stall the host.
//
// A copy from ordinary (pageable) host memory to a CUDA device is synchronous: the
// driver stages it through a pinned buffer and the host waits. From pinned memory
// with non_blocking = true it is a DMA queued on the current stream, ordered before
// the kernels that use it, and the host runs on. Pinning needs CUDA, so it is only
// attempted for a CUDA device; for the CPU these are plain tensors and no copies.
#pragma once

#include <torch/types.h>

namespace bora {

// Options for a host tensor that will be copied to `device`: pinned when it is CUDA.
torch::TensorOptions staging_options(torch::Device device, torch::ScalarType dtype);

// `host` (a CPU tensor) on `device`, copied asynchronously when `device` is CUDA
// (through a pinned copy unless `host` is pinned already). The caching host
// allocator keeps a freed pinned block until the copies queued from it are done,
// so `host` may go out of scope right away.
torch::Tensor to_device_async(const torch::Tensor& host, torch::Device device);

}  // namespace bora
