// Process-wide tuning of glibc malloc for training loops.
//
// A training step allocates the same large tensors (activations, logits: tens of MB)
// every step. By default glibc serves blocks above 32 MB with a fresh mmap and
// returns them with munmap on free, so every step first-touches new pages: on the
// 2-core VMs bora is developed on that costs ~3 ms per MB (50 x 50 MB: 7.7 s, against
// 0.21 s when the blocks stay in the heap), and it made a 48-row training step 2x
// slower than three 16-row steps. tune_allocator() keeps blocks up to 1 GiB in the
// heap and keeps freed memory for reuse (the resident size stays at the peak, which
// a trainer reaches every step anyway).
//
// guarded_main calls it for every tool; BORA_MALLOC_DEFAULT=1 leaves glibc's defaults.
#pragma once

namespace bora {

// Returns true when the settings were applied.
bool tune_allocator();

}  // namespace bora
