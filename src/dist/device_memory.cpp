#include "dist/device_memory.h"

#if BORA_HAVE_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <cstdio>
#include <fstream>

namespace bora {
namespace {

int64_t proc_status_kb(const char* key) {
  std::ifstream in("/proc/self/status");
  const std::string k = key;
  for (std::string line; std::getline(in, line);)
    if (line.rfind(k, 0) == 0) return std::stoll(line.substr(k.size()));
  return -1;
}

}  // namespace

DeviceMemory device_memory(torch::Device device) {
  DeviceMemory m;
#if BORA_HAVE_CUDA
  if (device.is_cuda()) {
    namespace alloc = c10::cuda::CUDACachingAllocator;
    const auto idx = device.has_index() ? device.index() : c10::DeviceIndex(0);
    const auto stats = alloc::getDeviceStats(idx);
    const auto agg = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
    m.kind = "cuda_allocator";
    m.peak_allocated = stats.allocated_bytes[agg].peak;
    m.peak_reserved = stats.reserved_bytes[agg].peak;
    m.allocated = stats.allocated_bytes[agg].current;
    return m;
  }
#endif
  if (device.is_cpu()) {
    const int64_t hwm = proc_status_kb("VmHWM:"), rss = proc_status_kb("VmRSS:");
    m.kind = "cpu_rss";
    m.peak_allocated = hwm < 0 ? -1 : hwm * 1024;
    m.allocated = rss < 0 ? -1 : rss * 1024;
  }
  return m;
}

void reset_device_memory_peak(torch::Device device) {
#if BORA_HAVE_CUDA
  if (device.is_cuda())
    c10::cuda::CUDACachingAllocator::resetPeakStats(device.has_index() ? device.index() : c10::DeviceIndex(0));
#else
  (void)device;
#endif
}

std::string describe_device_memory(torch::Device device) {
  const DeviceMemory m = device_memory(device);
  char buf[256];
  const double gib = 1024.0 * 1024.0 * 1024.0;
  if (m.kind == "cuda_allocator")
    std::snprintf(buf, sizeof buf, "peak GPU memory on %s: %.3f GiB allocated, %.3f GiB reserved (%lld bytes allocated)",
                  device.str().c_str(), double(m.peak_allocated) / gib, double(m.peak_reserved) / gib,
                  static_cast<long long>(m.peak_allocated));
  else if (m.kind == "cpu_rss")
    std::snprintf(buf, sizeof buf, "peak resident memory: %.3f GiB (%lld bytes)", double(m.peak_allocated) / gib,
                  static_cast<long long>(m.peak_allocated));
  else
    std::snprintf(buf, sizeof buf, "peak memory of %s: unknown", device.str().c_str());
  return buf;
}

}  // namespace bora
