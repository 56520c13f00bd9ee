#!/usr/bin/env bash
# bench_adapters over a grid of model widths and rows per task: where does a batch
# mixing 16 tasks reach 2x the throughput of a loop over the tasks on this CPU?
#
# On a CPU the loop loses only its per-call overhead (LibTorch dispatch, autograd,
# small matmuls that use one core): the ratio (b)/(c) grows as a task's share of
# the batch shrinks, and falls towards 1 as it grows. This prints that dependence
# as one table (each cell is one bench_adapters run, median of --reps steps).
#
#   bench/adapters_grid.sh [BUILD_DIR]     (OMP_NUM_THREADS defaults to 2: all cores here)
#
# Models (OPT, 4 layers, 4 heads, LoRA r = 16 on q_proj, v_proj, 64 tokens per row):
#   test   hidden 64,  ffn 256,  vocab 1024 (the size of the unit tests' models)
#   demo   hidden 128, ffn 512,  vocab 3257 (launch/demo.sh's base)
#   bench  hidden 256, ffn 1024, vocab 4096 (bench_adapters' default)
# The reference batch of docs/bora.md (64 sequences over 16 tasks) is 4 rows per task.
set -euo pipefail
build="${1:-build}"
exe="$build/bin/bench_adapters"
[ -x "$exe" ] || { echo "adapters_grid.sh: no $exe (build first)" >&2; exit 2; }
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"

declare -A model=(
  [test]="--hidden 64 --ffn 256 --vocab 1024"
  [demo]="--hidden 128 --ffn 512 --vocab 3257"
  [bench]="--hidden 256 --ffn 1024 --vocab 4096"
)
rows_list="1 2 4"
echo "bench_adapters grid: OMP_NUM_THREADS=$OMP_NUM_THREADS, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date '+%F %T')"
echo
echo "mixed (gather) throughput / loop over the 16 tasks; in brackets: mixed / one adapter"
echo
printf '| model |'; for r in $rows_list; do printf ' %s row(s) per task |' "$r"; done; echo
printf '|---|'; for r in $rows_list; do printf -- '---:|'; done; echo
for m in test demo bench; do
  printf '| %s |' "$m"
  for r in $rows_list; do
    # shellcheck disable=SC2086  # the model's flags are words
    line=$("$exe" ${model[$m]} --rows_per_task "$r" --big_bank 0 --mem_tasks 1 --reps 5 2>&1 | grep '^ratios' || true)
    # "ratios (throughput): gather (b)/(a) = A, (b)/(c) = C; segments ..."
    a=$(sed -n 's/.*gather (b)\/(a) = \([0-9.]*\),.*/\1/p' <<<"$line")
    c=$(sed -n 's/.*gather (b)\/(a) = [0-9.]*, (b)\/(c) = \([0-9.]*\);.*/\1/p' <<<"$line")
    [ -n "$c" ] || { echo; echo "adapters_grid.sh: bench_adapters failed for $m, $r rows" >&2; exit 1; }
    printf ' %.2f (%.2f) |' "$c" "$a"
  done
  echo
done
