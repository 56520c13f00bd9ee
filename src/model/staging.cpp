#include "model/staging.h"

namespace bora {

torch::TensorOptions staging_options(torch::Device device, torch::ScalarType dtype) {
  return torch::TensorOptions().dtype(dtype).device(torch::kCPU).pinned_memory(device.is_cuda());
}

torch::Tensor to_device_async(const torch::Tensor& host, torch::Device device) {
  if (!device.is_cuda()) return host.to(device);
  const torch::Tensor pinned = host.is_pinned() ? host : host.pin_memory();
  return pinned.to(device, /*non_blocking=*/true);
}

}  // namespace bora
