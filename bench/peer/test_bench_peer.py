#!/usr/bin/env python3
"""ctest bench_peer_quick: bench/bench_peer.sh --quick end to end on tiny shapes, then its
JSON: every field present with sane values, so that the benchmark cannot rot.

Checks: both sides, both dtypes: tokens/s (all and loss) > 0 with loss/all = (S-1)/S
(the same tokens on both sides), seconds and CPU-seconds per step > 0, peak RSS > 0,
FLOP/s > 0 and a finite fraction of a positive GEMM peak; FLOPs per step equal to the
documented formula recomputed here; the ratio bora/peer finite and > 0; four claims
with verdicts; bora's NLL in fp32 and bf16 finite and within 5%; the first step's NLL of
bora and the peer (same base, same batch) within 1% and their first-step losses (which
count the tasks present, so the batches must match) within 0.2%; the printed table has
the PASS/FAIL lines.
"""
import json
import math
import os
import subprocess
import sys

src = os.environ["BORA_SOURCE_DIR"]
tmp = os.environ["BORA_TEST_TMP"]
build = os.path.dirname(os.environ["BORA_BIN"])
out_json = os.path.join(tmp, "bench_peer.json")
cmd = [os.path.join(src, "bench", "bench_peer.sh"), "--quick", "--build", build, "--dir", os.path.join(tmp, "w"),
       "--json", out_json]
r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, BORA_PYTHON=sys.executable))
print(r.stdout[-6000:])
print(r.stderr[-3000:], file=sys.stderr)
assert r.returncode == 0, "bench_peer.sh --quick exited %d" % r.returncode

with open(out_json) as f:
    j = json.load(f)

fails = []


def check(cond, what):
    if not cond:
        fails.append(what)


def finite_pos(x):
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


w = j["workload"]
h, L, f, V, r_, S, B = w["hidden"], w["layers"], w["ffn"], w["vocab"], w["lora_r"], w["seq"], w["batch"]
n_body = L * (4 * h * h + 2 * h * f)
p_lora = L * 2 * r_ * (h + h)  # q_proj and v_proj
check(w["n_body"] == n_body and w["p_lora"] == p_lora and w["n_lm_head"] == V * h, "parameter counts")
t_all, t_loss = B * S, B * (S - 1)
want_flops = t_all * (4 * n_body + 6 * p_lora) + t_loss * 4 * V * h + B * 12 * L * h * S * S
for k in ("fp32", "bf16"):
    check(finite_pos(j["gemm_peak_flops"][k]), "gemm peak " + k)
for d in ("fp32", "bf16"):
    sec = j[d]
    for side in ("bora", "peer"):
        m = sec[side]
        tag = "%s %s" % (side, d)
        for key in ("tokens_per_s_all", "tokens_per_s_loss", "step_s", "cpu_s_per_step", "peak_rss_mb",
                    "achieved_flops", "fraction_of_peak", "flops_per_step", "nll_first", "nll_last"):
            check(finite_pos(m.get(key)), "%s: %s = %r" % (tag, key, m.get(key)))
        check(abs(m["tokens_per_s_loss"] / m["tokens_per_s_all"] - (S - 1) / S) < 1e-9, tag + ": loss/all tokens")
        check(abs(m["flops_per_step"] / want_flops - 1) < 1e-12, "%s: flops_per_step %r, formula %r"
              % (tag, m["flops_per_step"], want_flops))
        check(len(m["rounds"]) == w["rounds"], tag + ": one entry per round")
    check(finite_pos(sec["ratio_bora_over_peer"]), d + ": ratio")
    check(all(finite_pos(x) for x in sec["ratio_per_round"]), d + ": ratios per round")
    check(set(sec["bora"]["breakdown_s"]) >= {"data_s", "compute_s", "optimizer_s"}, d + ": bora's breakdown")
check(len(j["claims"]) == 4 and all(isinstance(c["pass"], bool) and finite_pos(c["value"]) for c in j["claims"]),
      "four claims with verdicts")
n = j["bf16_numerics"]["bora"]
check(math.isfinite(n["nll_last_fp32"]) and math.isfinite(n["nll_last_bf16"]), "bora NLLs finite")
check(n["rel_diff_last"] < 0.05, "bora bf16 vs fp32 training NLL: relative %r" % n["rel_diff_last"])
check(math.isfinite(n["val_nll_fp32"]) and math.isfinite(n["val_nll_bf16"]) and n["rel_diff_val"] < 0.05,
      "bora bf16 vs fp32 validation NLL: %r vs %r" % (n["val_nll_fp32"], n["val_nll_bf16"]))
g = j["agreement_fp32"]
check(g["rel_diff"] < 0.01, "first-step NLL bora %r vs peer %r" % (g["nll_first_bora"], g["nll_first_peer"]))
# The loss sum_d N_d NLL_d + R counts the tasks present in the batch: equal losses say that
# the peer drew bora's batch (its copy of bora's sampler) and weighs tasks as bora does.
check(g["loss_rel_diff"] < 2e-3, "first-step loss bora %r vs peer %r" % (g["loss_first_bora"], g["loss_first_peer"]))
for c in j["claims"]:
    check(("(pass)" if c["pass"] else "(fail)") + " " + c["claim"] in r.stdout, "table line for " + c["claim"])
check("ratio bora/peer" in r.stdout and "GEMM peak" in r.stdout, "table")

if fails:
    print("FAILED:\n  " + "\n  ".join(fails))
    sys.exit(1)
print("bench_peer --quick: JSON complete and sane")
