#include "core/allocator.h"

#include <malloc.h>

#include <cstdlib>

namespace bora {

bool tune_allocator() {
  const char* opt_out = std::getenv("BORA_MALLOC_DEFAULT");
  if (opt_out && *opt_out && *opt_out != '0') return false;
  constexpr int kOneGiB = 1 << 30;
  // M_MMAP_THRESHOLD: blocks below it come from the heap (and are reused);
  // M_TRIM_THRESHOLD: free heap memory above it is returned to the OS.
  return mallopt(M_MMAP_THRESHOLD, kOneGiB) == 1 && mallopt(M_TRIM_THRESHOLD, kOneGiB) == 1;
}

}  // namespace bora
