"""The stages of bench/gpu/run.sh (docs/gpu.md), one subcommand each; every stage
writes one JSON file (--stage_json) that `report` merges into results.json and
results.md. A stage that fails still writes what it measured, with status "fail"
and the reason; run.sh goes on with the next stage.

  tests       ctest -L '^gpu$' on the build (tests/gpu): per test pass/fail/skip
  throughput  bora (gpu_step_bench, i.e. bora-train's Trainer::step) against the HF +
              PEFT peer (bench/peer/peer_train.py: the BoRA reference code's loop,
              set_adapter per task present, prior in the loss, AdamW) on one
              opt-350m-shaped random checkpoint: target tokens/s, ratio, peak memory
              (CUDA caching allocator: max_memory_allocated on both sides), and the
              share of bora's step spent in Theta's all-reduce
  mfu         bora at opt-1.3b shapes: model FLOP utilisation (FORMULA below) against
              the H200's nominal dense bf16 rate and a torch.mm bf16 rate measured here
  capacity    the most opt-1.3b LoRA (r=16, q,v) tasks that train on the one GPU
  report      results.json + results.md from the stage files, with the targets
  check       asserts that results.json has every stage and field (the dry run's ctest)

--mode gpu (shapes of the issue, device cuda, bf16) or cpu (the dry run: tiny shapes,
device cpu, float32; the same code).
"""
import argparse
import glob
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path[:0] = [os.path.join(ROOT, "tests", "gpu"), os.path.join(ROOT, "tests", "common")]

NOMINAL_BF16_TFLOPS = 790.0  # the H200's dense bf16 matmul rate measured on this workplace's machines (docs/gpu.md, stage 3)

# Model FLOPs of one training step per token, for an OPT of L layers, hidden h, ffn f,
# vocabulary V, sequence length s, LoRA rank r on n_sites linear layers (h -> h) per
# layer. The base is frozen: its backward computes input gradients only (no weight
# gradients), so every base matmul costs 2 FLOPs per weight forward and 2 backward.
#   base matmuls      N_mm = L (4 h^2 + 2 h f) + h V           (q,k,v,out, fc1, fc2; LM head)
#   forward           2 N_mm + 4 L s h                         (attention: QK^T and PV, full s x s)
#   backward          2 N_mm + 8 L s h                         (input grads; attention backward = 2x forward)
#   adapters          3 x (2 * 2 r h) x n_sites x L            (A and B forward; input + weight grads)
#   FLOPs/token = 4 N_mm + 12 L s h + 12 r h n_sites L
# MFU = FLOPs/token x tokens/s / peak; tokens = every token of the batch (B x s). The
# LM head is counted at every position although bora computes it on targets only.
FORMULA = ("FLOPs/token = 4*N_mm + 12*L*s*h + 12*r*h*n_sites*L, N_mm = L*(4*h^2 + 2*h*f) + h*V "
           "(frozen base: forward 2*N_mm + 4*L*s*h, backward without weight gradients 2*N_mm + 8*L*s*h; "
           "LoRA A,B forward + input and weight gradients); MFU = FLOPs/token * tokens/s / peak")


def flops_per_token(shape, seq, r, n_sites):
    h, f, L, V = shape["hidden_size"], shape["ffn_dim"], shape["num_hidden_layers"], shape["vocab_size"]
    n_mm = L * (4 * h * h + 2 * h * f) + h * V
    return 4 * n_mm + 12 * L * seq * h + 12 * r * h * n_sites * L


# ---- configuration per mode ------------------------------------------------------------
def config(mode):
    if mode == "gpu":
        return dict(device="cuda", dtype="bfloat16", peer_dtype="bf16", shape350="opt-350m", shape13="opt-1.3b",
                    tasks=25, docs=48, batch=64, micro=64, seq=256, warmup=3, steps=10, peer_warmup=2, peer_steps=6,
                    mfu_micro=32, r=16, cap_tasks=4096, cap_docs=10, cap_first=(32, 256), cap_micro=16,
                    cap_steps=2, mm_n=8192, threads=0, simulate_max_tasks=0)
    return dict(device="cpu", dtype="float32", peer_dtype="fp32", shape350="tiny-350m", shape13="tiny-1.3b",
                tasks=4, docs=16, batch=8, micro=8, seq=32, warmup=1, steps=3, peer_warmup=1, peer_steps=3,
                mfu_micro=8, r=16, cap_tasks=12, cap_docs=10, cap_first=(2, 4), cap_micro=8, cap_steps=1,
                mm_n=512, threads=1, simulate_max_tasks=6)


STAGE_PATH = [None]


def flush(out):
    """Writes the stage's figures so far (a stage killed at its time limit keeps them)."""
    if STAGE_PATH[0]:
        with open(STAGE_PATH[0], "w") as f:
            json.dump(dict(out, status="fail", reason=out.get("reason", "interrupted (time limit?)")), f, indent=1)


def log(*a):
    print(time.strftime("[%H:%M:%S]"), *a, flush=True)


def sh(cmd, env=None, timeout=None, check=True):
    """Runs a command, echoing it and its output into the log; returns the CompletedProcess."""
    log("$", " ".join(map(str, cmd)))
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=dict(os.environ, **(env or {})),
                       timeout=timeout)
    out = (p.stdout + p.stderr).strip()
    if out:
        print("\n".join("    " + line for line in out.splitlines()[-40:]), flush=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"{os.path.basename(str(cmd[0]))} exited {p.returncode}: {out[-600:]}")
    return p


def mpirun():
    exe = shutil.which("mpirun") or shutil.which("mpiexec")
    if not exe:
        raise RuntimeError("no mpirun on PATH")
    return [exe, "--allow-run-as-root", "--oversubscribe", "--mca", "btl", "self,vader", "--bind-to", "none", "-np", "1"]


def bin_path(a, name):
    return os.path.join(a.build, "bin", name)


def ensure_tools(a):
    """bora_testing.run finds the tools through BORA_BIN."""
    os.environ["BORA_BIN"] = os.path.join(a.build, "bin")
    os.environ.setdefault("OMP_NUM_THREADS", "1" if a.mode == "cpu" else "8")


def model(a, c, which):
    """The random checkpoint of `which` (350 or 13) in scratch, made once (bf16 on the GPU)."""
    import gpu_util as G

    shape = c["shape350"] if which == 350 else c["shape13"]
    d = os.path.join(a.scratch, shape)
    if not os.path.exists(os.path.join(d, "config.json")):
        t0 = time.time()
        G.make_opt(d, shape, dtype="bfloat16" if a.mode == "gpu" else "float32", seed=0,
                   build_device=c["device"])
        log(f"wrote {shape} in {time.time() - t0:.1f} s")
    return d, shape


def dataset(a, c, model_dir, tasks, docs, name):
    import gpu_util as G

    d = os.path.join(a.scratch, name)
    if not os.path.exists(os.path.join(d, "manifest.json")):
        t0 = time.time()
        G.make_dataset(model_dir, d, tasks=tasks, docs_per_task=docs, seq_len=c["seq"],
                       threads=0 if a.mode == "gpu" else 1)
        log(f"dataset {name}: {tasks} tasks in {time.time() - t0:.1f} s")
    return d


def bora_args(c, model_dir, data, run_dir, micro):
    return ["--model", model_dir, "--data", data, "--run_dir", run_dir, "--device", c["device"], "--dtype",
            c["dtype"], "--batch_size", c["batch"], "--micro_batch", micro, "--adapter_r", c["r"], "--adapter_alpha",
            c["r"], "--adapter_targets", "q_proj,v_proj", "--tau", 100, "--lr", 1e-3, "--init_noise", 1e-3,
            "--prior", "gaussian", "--likelihood_weight", "documents", "--seed", 42, "--threads", c["threads"],
            "--log_every", 1000000, "--replica_check_every", 0]


def step_bench(a, c, args, warmup, steps, json_out, timeout=None):
    """gpu_step_bench under mpirun -np 1 (the NCCL communicator on a GPU); its JSON."""
    if os.path.exists(json_out):
        os.remove(json_out)
    p = sh(mpirun() + [bin_path(a, "gpu_step_bench"), *args, "--warmup", warmup, "--steps", steps, "--json",
                       json_out], timeout=timeout, check=False)
    if not os.path.exists(json_out):
        raise RuntimeError(f"gpu_step_bench exited {p.returncode} without a result: {(p.stdout + p.stderr)[-600:]}")
    with open(json_out) as f:
        return json.load(f)


# ---- stage: tests ---------------------------------------------------------------------
def ctest_command(build):
    """The ctest of the CMake that configured `build` (else the one on PATH)."""
    try:
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith("CMAKE_CTEST_COMMAND:"):
                    return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return "ctest"


def stage_tests(a, c, out):
    junit = os.path.join(a.scratch, "gpu_tests.xml")
    env = {"BORA_TEST_DEVICE": c["device"]}
    p = sh([ctest_command(a.build), "--test-dir", a.build, "-L", "^gpu$", "--output-on-failure", "--output-junit", junit,
            "-j", "2" if a.mode == "cpu" else "4"], env=env, check=False)
    tests = []
    if os.path.exists(junit):
        for tc in ET.parse(junit).getroot().iter("testcase"):
            status = tc.get("status") or ("fail" if tc.find("failure") is not None else "pass")
            status = {"run": "pass", "fail": "fail", "notrun": "skip", "disabled": "skip"}.get(status, status)
            if tc.find("skipped") is not None:
                status = "skip"
            if tc.find("failure") is not None:
                status = "fail"
            tests.append({"name": tc.get("name"), "status": status, "seconds": float(tc.get("time") or 0)})
    tail = (p.stdout + p.stderr)[-3000:]
    out.update(tests=tests, passed=sum(t["status"] == "pass" for t in tests),
               failed=sum(t["status"] == "fail" for t in tests), skipped=sum(t["status"] == "skip" for t in tests),
               ctest_exit=p.returncode, device=c["device"])
    expected = {"gpu_hf_parity", "gpu_peft_export", "gpu_nccl_np1", "gpu_mpi_np2"}
    missing = expected - {t["name"] for t in tests}
    if p.returncode != 0 or out["failed"] or missing or out["skipped"]:
        out["status"] = "fail"
        out["reason"] = (f"missing {sorted(missing)}; " if missing else "") + \
            f"{out['failed']} failed, {out['skipped']} skipped; ctest exit {p.returncode}: {tail[-800:]}"
    else:
        out["status"] = "pass"


# ---- stage: throughput ----------------------------------------------------------------
PEER_WRAPPER = r"""
import json, runpy, sys
import torch
out, argv = sys.argv[1], sys.argv[2:]
sys.argv = [argv[0]] + argv[1:]
cuda = torch.cuda.is_available() and "cuda" in " ".join(argv)
if cuda:
    torch.cuda.reset_peak_memory_stats()
runpy.run_path(argv[0], run_name="__main__")
with open(out) as f:
    r = json.load(f)
if cuda:
    r["wrapper_max_memory_allocated"] = torch.cuda.max_memory_allocated()
    r["wrapper_max_memory_reserved"] = torch.cuda.max_memory_reserved()
with open(out, "w") as f:
    json.dump(r, f, indent=1)
"""


def peer_peak(r):
    for k in ("max_memory_allocated", "peak_memory_bytes", "max_memory_allocated_bytes", "cuda_max_memory_allocated",
              "wrapper_max_memory_allocated"):
        if isinstance(r.get(k), (int, float)) and r[k] > 0:
            return int(r[k]), k
    if "maxrss_kb_self" in r:
        return int(r["maxrss_kb_self"]) * 1024, "maxrss_kb_self (CPU peak RSS)"
    return None, None


def stage_throughput(a, c, out):
    model_dir, shape = model(a, c, 350)
    data = dataset(a, c, model_dir, c["tasks"], c["docs"], f"data_{c['tasks']}tasks")
    out["shape"] = dict(model=shape, tasks=c["tasks"], batch=c["batch"], seq=c["seq"], lora=f"r={c['r']} q_proj,v_proj",
                        dtype=c["dtype"], device=c["device"], micro_batch=c["micro"])
    errors = []
    bora = None
    try:
        bora = step_bench(a, c, bora_args(c, model_dir, data, os.path.join(a.scratch, "run_tp"), c["micro"]),
                          c["warmup"], c["steps"], os.path.join(a.scratch, "bora_tp.json"))
        if bora.get("oom"):
            raise RuntimeError("bora ran out of device memory")
        sec = bora["seconds"]
        out["bora"] = dict(target_tokens_per_s=bora["target_tokens"] / sec, sequences_per_s=bora["sequences_per_s"],
                           step_s=bora["step_s"], peak_memory_bytes=bora["peak_allocated_bytes"],
                           peak_reserved_bytes=bora["peak_reserved_bytes"], memory_kind=bora["memory_kind"],
                           allreduce_share=bora["allreduce_s"] / sec if sec > 0 else None,
                           allreduce_s_per_step=bora["allreduce_s"] / bora["steps"], backend=bora["backend"],
                           steps=bora["steps"])
    except Exception as e:  # noqa: BLE001  (the stage records it and goes on)
        errors.append(f"bora: {e}")
    flush(out)
    peer_py = os.path.join(ROOT, "bench", "peer", "peer_train.py")
    try:
        if not os.path.exists(peer_py):
            raise RuntimeError("bench/peer/peer_train.py is not in this checkout (git checkout HEAD -- bench/peer/peer_train.py)")
        pj = os.path.join(a.scratch, "peer_tp.json")
        wrapper = os.path.join(a.scratch, "peer_wrapper.py")
        with open(wrapper, "w") as f:
            f.write(PEER_WRAPPER)
        sh([sys.executable, wrapper, pj, peer_py, "--model", model_dir, "--data", data, "--out", pj, "--device",
            c["device"], "--dtype", c["peer_dtype"], "--steps", c["peer_warmup"] + c["peer_steps"], "--warmup",
            c["peer_warmup"], "--batch_size", c["batch"], "--tau", 100, "--lr", 1e-3, "--r", c["r"], "--alpha", c["r"],
            "--targets", "q_proj,v_proj", "--seed", 42] + (["--threads", c["threads"]] if c["threads"] else []))
        with open(pj) as f:
            peer = json.load(f)
        peak, source = peer_peak(peer)
        out["peer"] = dict(target_tokens_per_s=peer["tokens_per_s_loss"], all_tokens_per_s=peer.get("tokens_per_s_all"),
                           step_s=peer["step_s"], peak_memory_bytes=peak, peak_memory_source=source,
                           steps=peer.get("measured_steps"), first_nll=peer.get("first_nll"))
    except Exception as e:  # noqa: BLE001
        errors.append(f"peer: {e}")
    b, p = out.get("bora"), out.get("peer")
    if b and p:
        out["ratio"] = b["target_tokens_per_s"] / p["target_tokens_per_s"]
        if b["peak_memory_bytes"] and p["peak_memory_bytes"]:
            out["memory_ratio"] = b["peak_memory_bytes"] / p["peak_memory_bytes"]
    out["status"] = "fail" if errors else "pass"
    if errors:
        out["reason"] = "; ".join(errors)


# ---- stage: mfu -----------------------------------------------------------------------
def mm_peak(c):
    """The device's matmul rate, TFLOP/s: the mean of 10 timed n x n x n products after 3 warm-ups
    (bf16 on CUDA, float32 on the CPU)."""
    import torch

    n = c["mm_n"]
    dev = c["device"]
    dt = torch.bfloat16 if dev == "cuda" else torch.float32
    g = torch.Generator(device=dev).manual_seed(0)
    x = torch.randn(n, n, device=dev, dtype=dt, generator=g)
    y = torch.randn(n, n, device=dev, dtype=dt, generator=g)
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    for _ in range(3):
        torch.mm(x, y)
    sync()
    t0 = time.perf_counter()
    for _ in range(10):
        torch.mm(x, y)
    sync()
    dt_s = (time.perf_counter() - t0) / 10
    return 2 * n ** 3 / dt_s / 1e12, str(dt).replace("torch.", ""), n


def stage_mfu(a, c, out):
    import gpu_util as G

    model_dir, shape = model(a, c, 13)
    data = dataset(a, c, model_dir, c["tasks"], c["docs"], f"data13_{c['tasks']}tasks")
    out["formula"] = FORMULA
    fpt = flops_per_token(G.SHAPES[shape], c["seq"], c["r"], 2)
    out["shape"] = dict(model=shape, tasks=c["tasks"], batch=c["batch"], seq=c["seq"], micro_batch=c["mfu_micro"],
                        lora=f"r={c['r']} q_proj,v_proj", dtype=c["dtype"])
    out["flops_per_token"] = fpt
    errors = []
    try:
        tf, dt, n = mm_peak(c)
        out["mm_peak_tflops_measured"] = tf
        out["mm_peak_what"] = f"torch.mm {dt} {n}x{n}x{n}, mean of 10 after 3 warm-ups"
    except Exception as e:  # noqa: BLE001
        errors.append(f"mm peak: {e}")
    out["nominal_peak_tflops"] = NOMINAL_BF16_TFLOPS if c["device"] == "cuda" else None
    try:
        r = step_bench(a, c, bora_args(c, model_dir, data, os.path.join(a.scratch, "run_mfu"), c["mfu_micro"]),
                       c["warmup"], c["steps"], os.path.join(a.scratch, "bora_mfu.json"))
        if r.get("oom"):
            raise RuntimeError("bora ran out of device memory")
        tokens_per_s = r["sequences"] * c["seq"] / r["seconds"]
        out["tokens_per_s"] = tokens_per_s
        out["target_tokens_per_s"] = r["target_tokens"] / r["seconds"]
        out["step_s"] = r["step_s"]
        out["peak_memory_bytes"] = r["peak_allocated_bytes"]
        out["achieved_tflops"] = fpt * tokens_per_s / 1e12
        out["mfu_nominal"] = out["achieved_tflops"] / out["nominal_peak_tflops"] if out["nominal_peak_tflops"] else None
        m = out.get("mm_peak_tflops_measured")
        out["mfu_measured"] = out["achieved_tflops"] / m if m else None
    except Exception as e:  # noqa: BLE001
        errors.append(f"bora: {e}")
    out["status"] = "fail" if errors else "pass"
    if errors:
        out["reason"] = "; ".join(errors)


# ---- stage: capacity ------------------------------------------------------------------
def stage_capacity(a, c, out):
    model_dir, shape = model(a, c, 13)
    data = dataset(a, c, model_dir, c["cap_tasks"], c["cap_docs"], f"data13_{c['cap_tasks']}tasks")
    import gpu_util as G

    names = G.task_names(data)
    nmax = len(names)
    out["shape"] = dict(model=shape, lora=f"r={c['r']} q_proj,v_proj", batch=c["batch"], seq=c["seq"],
                        micro_batch=c["cap_micro"], dataset_tasks=nmax, dtype=c["dtype"])
    out["method"] = ("probes of gpu_step_bench (setup + 1 warm-up + %d steps) at two task counts give memory per "
                     "task (slope of peak allocated); the limit predicted from it is probed at -3%% / +3%%, then "
                     "bisection until the gap is <= 1%% or the stage's time is up" % c["cap_steps"])
    if c["simulate_max_tasks"]:
        out["simulated_max_tasks"] = c["simulate_max_tasks"]
        out["method"] += "; dry run: a probe of more than %d tasks counts as out of memory" % c["simulate_max_tasks"]
    deadline = time.time() + a.budget - 15
    probes = []

    def probe(n):
        args = bora_args(c, model_dir, data, os.path.join(a.scratch, "run_cap"), c["cap_micro"])
        args += ["--tasks", ",".join(names[:n])]
        t0 = time.time()
        try:
            r = step_bench(a, c, args, 1, c["cap_steps"], os.path.join(a.scratch, "bora_cap.json"),
                           timeout=max(10, deadline - time.time()))
        except Exception as e:  # noqa: BLE001
            text = str(e)
            # A device that ran out outside the allocator's reach (a CUDA error) still says so.
            oom = True if re.search(r"out of memory|ALLOC_FAILED", text, re.I) else None
            r = {"oom": oom, "error": text[-300:]}
        ok = r.get("oom") is False and (not c["simulate_max_tasks"] or n <= c["simulate_max_tasks"])
        rec = dict(tasks=n, fits=ok, oom=r.get("oom"), peak_memory_bytes=r.get("peak_allocated_bytes"),
                   step_s=r.get("step_s"), seconds=round(time.time() - t0, 1))
        if "error" in r:
            rec["error"] = r["error"]
        probes.append(rec)
        out["probes"] = probes
        flush(out)
        log(f"capacity probe {n} tasks: {'fits' if ok else 'does not fit'} ({rec['peak_memory_bytes']} bytes peak)")
        return ok, r

    n1, n2 = c["cap_first"]
    ok1, r1 = probe(n1)
    ok2, r2 = probe(n2) if ok1 else (False, {})
    out["probes"] = probes
    if not (ok1 and ok2):
        out["status"] = "fail"
        out["reason"] = f"the first probes ({n1}, {n2} tasks) did not both fit"
        return
    per_task = (r2["peak_allocated_bytes"] - r1["peak_allocated_bytes"]) / (n2 - n1)
    out["memory_per_task_bytes"] = per_task
    out["memory_fixed_bytes"] = r1["peak_allocated_bytes"] - per_task * n1
    out["adapter_parameters_per_task"] = r2.get("row_size")
    total = None
    if c["device"] == "cuda":
        import torch

        total = torch.cuda.mem_get_info()[1]
        out["device_memory_bytes"] = total
    lo, hi = n2, None
    queue = []
    if total and per_task > 0:
        pred = (total - out["memory_fixed_bytes"]) / per_task
        out["predicted_max_tasks"] = pred
        queue = [int(pred * 0.97), int(math.ceil(pred * 1.03))]
    stopped = None
    while time.time() < deadline - 5:
        if hi is not None and hi - lo <= max(1, int(lo * 0.01)):
            break
        if lo >= nmax:
            break
        n = None
        while queue and n is None:
            q = queue.pop(0)
            if q > lo and (hi is None or q < hi):
                n = min(q, nmax)
        if n is None:
            n = (lo + hi) // 2 if hi is not None else min(2 * lo, nmax)
        if n <= lo:
            break
        ok, r = probe(n)
        if r.get("oom") is None:  # an error or the time limit, not a verdict on memory
            stopped = f"the probe of {n} tasks failed without running out of memory: {r.get('error', '')[-200:]}"
            break
        if ok:
            lo = n
        else:
            hi = n
    out["max_tasks"] = lo
    out["first_failing_tasks"] = hi
    out["bounded_by_dataset"] = hi is None and lo >= nmax
    out["resolved"] = hi is not None and hi - lo <= max(1, int(lo * 0.01))
    out["status"] = "pass"
    if not out["resolved"] and not out["bounded_by_dataset"]:
        out["note"] = stopped or f"time ran out: the limit lies between {lo} and {hi if hi else '?'} tasks"


# ---- report ----------------------------------------------------------------------------
STAGES = ["tests", "throughput", "mfu", "capacity"]
FIELDS = {
    "tests": ["status", "passed", "failed", "skipped", "tests"],
    "throughput": ["status", "shape", "bora", "peer", "ratio"],
    "mfu": ["status", "formula", "flops_per_token", "tokens_per_s", "achieved_tflops", "mm_peak_tflops_measured",
            "nominal_peak_tflops", "mfu_nominal", "mfu_measured"],
    "capacity": ["status", "max_tasks", "memory_per_task_bytes", "probes"],
}
REQUIRED_NUMBERS = {"tests": ["passed"], "throughput": ["ratio"],
                    "mfu": ["flops_per_token", "tokens_per_s", "achieved_tflops", "mm_peak_tflops_measured", "mfu_measured"],
                    "capacity": ["max_tasks", "memory_per_task_bytes"]}
SUBFIELDS = {"bora": ["target_tokens_per_s", "peak_memory_bytes", "allreduce_share"],
             "peer": ["target_tokens_per_s", "peak_memory_bytes"]}


def targets(res):
    st = res["stages"]
    tp, mfu = st.get("throughput", {}), st.get("mfu", {})
    b, p = tp.get("bora") or {}, tp.get("peer") or {}
    gpu = res["mode"] == "gpu"

    def verdict(ok):
        return None if ok is None else bool(ok)

    ratio = tp.get("ratio")
    mem_ok = None
    if b.get("peak_memory_bytes") and p.get("peak_memory_bytes") and gpu:
        mem_ok = b["peak_memory_bytes"] <= p["peak_memory_bytes"]
    t = [
        dict(name="tokens/s >= 1.5x peer", value=ratio, target=1.5,
             passed=verdict(None if ratio is None else ratio >= 1.5)),
        dict(name="peak memory <= peer's", value=tp.get("memory_ratio"), target=1.0, passed=verdict(mem_ok)),
        dict(name="MFU >= 40% (of 790 TFLOP/s)", value=mfu.get("mfu_nominal"), target=0.40,
             passed=verdict(None if mfu.get("mfu_nominal") is None else mfu["mfu_nominal"] >= 0.40)),
        dict(name="all-reduce < 2% of step", value=b.get("allreduce_share"), target=0.02,
             passed=verdict(None if b.get("allreduce_share") is None else b["allreduce_share"] < 0.02)),
    ]
    return t


def fmt(v, unit="", nd=3):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{nd}g}{unit}"
    return f"{v}{unit}"


def gib(v):
    return "n/a" if not v else f"{v / 2**30:.2f} GiB"


def markdown(res):
    st = res["stages"]
    L = [f"# bora on {res.get('device_name') or res['mode']}: bench/gpu/run.sh results", "",
         f"Mode: **{res['mode']}**" + (" (dry run: tiny shapes on the CPU; the numbers mean nothing, the fields are "
                                       "what is checked)" if res["mode"] != "gpu" else "") +
         f". Started {res['started']}, {res.get('total_seconds', 0):.0f} s in all. {res.get('build', {}).get('note', '')}",
         "", "## Targets", "", "| target | value | verdict |", "|---|---:|---|"]
    for t in res["targets"]:
        v = t["value"]
        shown = "n/a" if v is None else (f"{100 * v:.2f}%" if "%" in t["name"] else f"{v:.3g}")
        L.append(f"| {t['name']} | {shown} | {'PASS' if t['passed'] else 'FAIL' if t['passed'] is False else 'n/a'} |")
    L += ["", "## Stages", "", "| stage | status | seconds | note |", "|---|---|---:|---|"]
    b = res.get("build", {})
    L.append(f"| build | {b.get('status', 'n/a')} | {fmt(b.get('seconds'))} | {b.get('note', '')} |")
    for s in STAGES:
        x = st.get(s, {})
        L.append(f"| {s} | {x.get('status', 'missing')} | {fmt(x.get('seconds'))} | "
                 f"{(x.get('reason') or x.get('note') or '').replace('|', '/')[:300]} |")
    t = st.get("tests", {})
    L += ["", "### 1. GPU tests (ctest -L '^gpu$')", "", "| test | status | seconds |", "|---|---|---:|"]
    for x in t.get("tests", []):
        L.append(f"| {x['name']} | {x['status']} | {x['seconds']:.1f} |")
    tp = st.get("throughput", {})
    bb, pp = tp.get("bora") or {}, tp.get("peer") or {}
    sh_ = tp.get("shape", {})
    L += ["", "### 2. Throughput and peak memory against HF + PEFT", "",
          f"{sh_.get('model')} (random, save_pretrained), {sh_.get('tasks')} tasks, batch {sh_.get('batch')} x "
          f"{sh_.get('seq')} tokens, LoRA {sh_.get('lora')}, base {sh_.get('dtype')} on {sh_.get('device')}. "
          "Tokens/s counts loss (target) tokens on both sides (the same batches: the peer reproduces bora's sampler). "
          "Peak memory: the CUDA caching allocator's max allocated (torch.cuda.max_memory_allocated for the peer).", "",
          "| side | target tokens/s | step s | peak memory | all-reduce share |", "|---|---:|---:|---:|---:|",
          f"| bora | {fmt(bb.get('target_tokens_per_s'))} | {fmt(bb.get('step_s'))} | {gib(bb.get('peak_memory_bytes'))} | "
          f"{fmt(None if bb.get('allreduce_share') is None else 100 * bb['allreduce_share'], '%')} ({bb.get('backend', '')}) |",
          f"| HF + PEFT | {fmt(pp.get('target_tokens_per_s'))} | {fmt(pp.get('step_s'))} | {gib(pp.get('peak_memory_bytes'))} | |",
          "", f"Ratio bora / peer: **{fmt(tp.get('ratio'))}x**; memory ratio {fmt(tp.get('memory_ratio'))}."]
    m = st.get("mfu", {})
    L += ["", "### 3. Model FLOP utilisation", "", f"Shapes: {m.get('shape')}.", "", f"`{FORMULA}`", "",
          f"FLOPs/token {fmt(m.get('flops_per_token'))}; tokens/s {fmt(m.get('tokens_per_s'))}; achieved "
          f"{fmt(m.get('achieved_tflops'))} TFLOP/s. Peak: nominal {fmt(m.get('nominal_peak_tflops'))} TFLOP/s, "
          f"measured {fmt(m.get('mm_peak_tflops_measured'))} TFLOP/s ({m.get('mm_peak_what', '')}). "
          f"MFU {fmt(None if m.get('mfu_nominal') is None else 100 * m['mfu_nominal'], '%')} of nominal, "
          f"{fmt(None if m.get('mfu_measured') is None else 100 * m['mfu_measured'], '%')} of measured."]
    cp = st.get("capacity", {})
    L += ["", "### 4. Tasks that fit on the GPU", "", f"{cp.get('method', '')}.", "",
          f"Most tasks that trained: **{fmt(cp.get('max_tasks'))}** (first failing: {fmt(cp.get('first_failing_tasks'))}"
          f"{', bounded by the dataset' if cp.get('bounded_by_dataset') else ''}); memory per task "
          f"{fmt(None if not cp.get('memory_per_task_bytes') else cp['memory_per_task_bytes'] / 2**20, ' MiB')}, "
          f"fixed {gib(cp.get('memory_fixed_bytes'))}.", "", "| tasks | fits | peak memory | s |", "|---:|---|---:|---:|"]
    for x in cp.get("probes", []):
        L.append(f"| {x['tasks']} | {x['fits']} | {gib(x.get('peak_memory_bytes'))} | {x['seconds']} |")
    return "\n".join(L) + "\n"


def report(a):
    with open(os.path.join(a.scratch, "run_meta.json")) as f:
        meta = json.load(f)
    res = dict(meta, stages={})
    for s in STAGES:
        p = os.path.join(a.scratch, f"stage_{s}.json")
        rc_file = os.path.join(a.scratch, f"rc_{s}")
        x = {}
        if os.path.exists(p):
            with open(p) as f:
                x = json.load(f)
        if os.path.exists(rc_file):
            rc, secs = open(rc_file).read().split()
            x["seconds"] = float(secs)
            x["exit"] = int(rc)
            if int(rc) != 0 and x.get("status") != "fail":
                x["status"] = "fail"
                x["reason"] = ("timed out; " if int(rc) in (124, 137) else f"exited {rc}; ") + x.get("reason", "")
        x.setdefault("status", "fail")
        if not os.path.exists(p):
            x.setdefault("reason", "the stage wrote no result (see run.log)")
        res["stages"][s] = x
    res["targets"] = targets(res)
    res["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if "started_epoch" in res:
        res["total_seconds"] = time.time() - res["started_epoch"]
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(markdown(res))
    for t in res["targets"]:
        print(f"{'PASS' if t['passed'] else 'FAIL' if t['passed'] is False else 'n/a '}  {t['name']}: "
              f"{fmt(t['value'])}")
    print(f"stages: " + ", ".join(f"{s} {res['stages'][s]['status']}" for s in STAGES))


def check(a):
    """The dry run's assertions: every stage ran, passed and has its fields."""
    with open(os.path.join(a.out, "results.json")) as f:
        res = json.load(f)
    problems = []
    for k in ("mode", "started", "build", "stages", "targets"):
        if k not in res:
            problems.append(f"results.json lacks {k}")
    for s in STAGES:
        x = res.get("stages", {}).get(s)
        if x is None:
            problems.append(f"no stage {s}")
            continue
        if x.get("status") != "pass":
            problems.append(f"stage {s}: {x.get('status')}: {x.get('reason', '')[:400]}")
        for k in FIELDS[s]:
            if k not in x:
                problems.append(f"stage {s} lacks {k}")
        for k in REQUIRED_NUMBERS.get(s, []):
            if not isinstance(x.get(k), (int, float)):
                problems.append(f"stage {s}: {k} is not a number: {x.get(k)!r}")
        for sub, keys in SUBFIELDS.items():
            if s == "throughput":
                for k in keys:
                    if not isinstance((x.get(sub) or {}).get(k), (int, float)):
                        problems.append(f"stage throughput: {sub}.{k} is not a number")
    if len(res.get("targets", [])) != 4:
        problems.append("expected 4 targets")
    if not os.path.exists(os.path.join(a.out, "results.md")):
        problems.append("no results.md")
    for p in problems:
        print("FAIL", p)
    print("check:", "ok" if not problems else f"{len(problems)} problem(s)")
    sys.exit(1 if problems else 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=STAGES + ["report", "check"])
    ap.add_argument("--mode", choices=["gpu", "cpu"], default="gpu")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--scratch", required=True)
    ap.add_argument("--out", default=".")
    ap.add_argument("--budget", type=float, default=120, help="seconds this stage may take")
    a = ap.parse_args()
    os.makedirs(a.scratch, exist_ok=True)
    if a.stage == "report":
        return report(a)
    if a.stage == "check":
        return check(a)
    ensure_tools(a)
    c = config(a.mode)
    out = {"status": "running"}
    path = os.path.join(a.scratch, f"stage_{a.stage}.json")
    STAGE_PATH[0] = path
    t0 = time.time()
    try:
        globals()["stage_" + a.stage](a, c, out)
    except Exception as e:  # noqa: BLE001  (recorded; run.sh goes on)
        out["status"] = "fail"
        out["reason"] = f"{type(e).__name__}: {e}"[-1500:]
        log("stage", a.stage, "failed:", out["reason"])
    out["stage_seconds"] = time.time() - t0
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    log(f"stage {a.stage}: {out['status']} in {out['stage_seconds']:.1f} s")
    sys.exit(0 if out["status"] == "pass" else 1)


if __name__ == "__main__":
    main()
