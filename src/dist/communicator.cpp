#include "dist/communicator.h"

#include "core/error.h"
#include "core/progress.h"

namespace bora {

void Communicator::all_reduce_sum(torch::Tensor& t) {
  BORA_CHECK(t.is_contiguous(), InternalError, "all_reduce_sum needs a contiguous tensor");
  Stopwatch watch;
  all_reduce_sum_impl(t);
  stats_.all_reduces += 1;
  stats_.all_reduce_elements += t.numel();
  stats_.all_reduce_seconds += watch.seconds();
}

}  // namespace bora
