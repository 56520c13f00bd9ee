// Process-wide tuning of glibc malloc for training loops.
//
// A training step allocates the same large tensors (activations, logits: tens of MB)
// every step. By default glibc serves blocks above 32 MB with a fresh mmap and
// returns them with munmap on free, so every step first-touches new pages, which on
// a VM is slow enough to make a large batch's step cost more than the same rows in
// smaller steps (measurements: bench/README.md, "Measurements behind choices in
// the code"). tune_allocator() keeps blocks up to 1 GiB in the
// heap and keeps freed memory for reuse (the resident size stays at the peak, which
// a trainer reaches every step anyway).
//
// guarded_main calls it for every tool; BORA_MALLOC_DEFAULT=1 leaves glibc's defaults.
#pragma once

namespace bora {

// Returns true when the settings were applied.
bool tune_allocator();

}  // namespace bora
