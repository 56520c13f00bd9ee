#!/usr/bin/env bash
# bench_peer: bora-train against the BoRA reference code's way of training (HF
# OPTForCausalLM + one PEFT LoRA adapter per task, set_adapter and a forward per task
# present in the batch: bench/peer/peer_train.py), in one run, fp32 and bf16, on the
# same random opt-125m-shaped checkpoint, the same 16 fortune tasks, the same batches
# (64 x 128 tokens, bora's sampler reproduced by the peer) and the same 2 threads.
# Rounds alternate bora and the peer (3 by default); every figure is a median.
#
#   bench/bench_peer.sh [--quick] [--build build] [--dir /tmp/bora_bench_peer] [--json out.json] [...]
#
# Prints a table and PASS/FAIL lines, writes JSON (default <dir>/bench_peer.json).
# Claims: fp32 bora >= 75% of the fp32 GEMM peak (torch.mm 2048^2, same threads, same
# run) and >= 1.25x the peer's tokens/s; bf16 bora >= 50% of the bf16 GEMM peak and
# >= 1.5x the peer. Exit status: the number of failed claims (--quick checks none).
#
# FLOPs of a step (useful work, the same for both sides):
#   F = T_all * (4 N_body + 6 P_lora) + T_loss * 4 V h + sum_seq 12 L h S^2
#   N_body = L (4 h^2 + 2 h f): frozen linears, forward 2 N + backward activation
#   gradients only 2 N (no weight gradients); P_lora = L * 2 r (h + h) for q_proj and
#   v_proj, forward 2 P + backward 4 P; the tied lm_head V h on the target tokens only,
#   forward + input gradient; attention scores and context, full S x S, forward 4 S^2 h
#   + backward 8 S^2 h per layer and sequence. (bench/peer/bench_peer.py, bench/README.md)
#
# Python: BORA_PYTHON, else .deps/venv (launch/install-deps.sh): torch, transformers,
# peft, h5py. Needs bora-train, bora-make-model and data_prep in <build>/bin.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=${BORA_PYTHON:-$root/.deps/venv/bin/python}
if [ ! -x "$py" ]; then
  echo "bench_peer.sh: no Python at $py (run launch/install-deps.sh or set BORA_PYTHON)" >&2
  exit 2
fi
exec "$py" "$root/bench/peer/bench_peer.py" "$@"
