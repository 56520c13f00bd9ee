// The one thread pool of bora: a parallel loop over indices, for data_prep's
// tokenizer and the checkpoint reader. Plain std::threads started per call: both
// callers run a handful of long loops, so a persistent pool would buy nothing.
#pragma once

#include <cstdint>
#include <functional>

namespace bora {

// Runs fn(i) for every i in [0, n) on `threads` threads, `grain` consecutive indices
// per grab (cheap atomics, fine-grained balance). Without `poll` this thread is one
// of the workers (so one thread runs the indices in order, on this thread); with
// it, `threads` workers run and this thread calls poll() every 50 ms until they
// finish (a progress bar). After an exception no further grab starts; the
// exception of the lowest index is rethrown once every worker has stopped.
void parallel_for(int64_t n, int threads, const std::function<void(int64_t)>& fn, int64_t grain = 1,
                  const std::function<void()>& poll = {});

}  // namespace bora
