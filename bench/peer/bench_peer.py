#!/usr/bin/env python3
"""bench_peer: bora-train against the BoRA reference code's way of training (peer_train.py:
HF OPTForCausalLM + one PEFT LoRA adapter per task, a forward per task present), in one
run, in fp32 and in bf16, on the same checkpoint, dataset, batches and thread count.

Run it through bench/bench_peer.sh (it picks the venv's Python); --help lists the options.

Workload (defaults): a random opt-125m-shaped OPT written by bora-make-model (hidden 768,
12 layers, 12 heads, ffn 3072, GPT-2's 50257-token vocabulary), 16 tasks made by
data_prep from the fortunes Debian ships (/usr/share/games/fortunes: one category per
task, consecutive fortunes joined into documents long enough that every sequence is cut
to exactly --seq tokens; no prompt), minibatches of 64 sequences x 128 tokens drawn by
bora's global sampler (the peer reproduces it exactly: step s trains on the same
sequences on both sides), LoRA r 16 alpha 16 on q_proj,v_proj, gaussian prior tau 100,
likelihood weight = documents, AdamW lr 1e-3, 2 threads. Each run takes --warmup +
--steps optimizer steps; the warm-up steps are left out.

Rounds: each round measures the machine's GEMM peak (torch.mm of --gemm_n squared
matrices in fp32 and bf16 on the same threads, in the venv), then bora fp32, peer fp32,
bora bf16, peer bf16. Every figure reported is the median over rounds.

Measured per run: tokens/s (all tokens = every position of every sequence; loss tokens
= the target tokens), wall seconds per step, CPU seconds per step (bora: metrics.jsonl's
cpu_s, the process's CPU time in the step; peer: time.process_time() around the step),
peak RSS (ru_maxrss of the process, from wait4: the peer's includes Python, transformers
and PEFT), and the achieved FLOP/s against the GEMM peak of the same dtype.

FLOPs of one step (useful work, the same count for both sides):

    F = T_all  * (4 * N_body + 6 * P_lora)          frozen body, adapters
      + T_loss * 4 * V * h                          lm_head
      + sum_seq 12 * L * h * S_seq^2                attention scores and context

  N_body = L * (4 h^2 + 2 h f): the frozen linear layers' weights (q, k, v, out_proj,
      fc1, fc2). Frozen weights need no weight gradient: forward 2 N_body per token,
      backward the activation gradient only, 2 N_body again.
  V h: the (tied) lm_head, on the target positions only (bora computes logits there
      only; HF computes them at every position, which is work the objective does not
      need and is not counted). Forward 2 V h, backward dX 2 V h.
  P_lora = L * 2 * r * (h + h): LoRA A and B of q_proj and v_proj. Forward 2 P, backward
      4 P (activation and weight gradients).
  Attention per layer and sequence of S tokens: scores Q K^T and context P V, 2 S^2 h
      each forward (the full square, as dense kernels compute it: causal masking is not
      halved), twice that backward: 12 S^2 h.
  Not counted: layer norms, softmax, ReLU, embeddings, biases, the prior, AdamW.
  Counted although not needed: the input gradient of layer 0's q/k/v projections
  (2 * 3h^2 a token, 1% of the body's 4 N_body).
  T_all, T_loss: tokens and target tokens of the step's sequences (from the sampler);
  h hidden size, f ffn size, L layers, V vocabulary, r LoRA rank. At the default
  workload F = 4.18 TFLOP a step.

Claims (not checked with --quick, whose shapes are too small for them):
  fp32: bora >= 75% of the fp32 GEMM peak, and >= 1.25x the peer's tokens/s
  bf16: bora >= 50% of the bf16 GEMM peak, and >= 1.5x the peer's tokens/s
Where a claim fails, one extra step of each side is profiled: bora under LibTorch's
profiler (BORA_PROFILE, a chrome trace; the table sums each op's self time), the peer
under torch.profiler (key_averages); the top ops are printed.

bf16 numerics: bora's NLL after the same steps in bf16 against fp32 (the last step's
training NLL and the final validation NLL), relative difference. Agreement: the first
step's NLL of bora and the peer (same base, same batch, adapters ~0) in fp32.

Output: a table on stdout and --json (default <dir>/bench_peer.json). Exit status: the
number of failed claims (0 with --quick).
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import peer_train  # noqa: E402  (the sampler and the dataset reader)

FORTUNES = "/usr/share/games/fortunes"
# English categories first; others (by size) only when these are missing.
PREFERRED = ["fortunes", "literature", "computers", "zippy", "startrek", "humorists", "people", "wisdom",
             "platitudes", "men-women", "science", "politics", "songs-poems", "miscellaneous", "work",
             "definitions", "law", "linuxcookie", "riddles", "love", "food", "education", "art", "kids",
             "cookie", "magic", "medicine", "news", "pets", "sports", "debian", "drugs", "ethnic", "goedel"]

CLAIMS = {"fp32": (0.75, 1.25), "bf16": (0.50, 1.5)}


def log(*a):
    print(*a, flush=True)


def parse():
    ap = argparse.ArgumentParser(description="bora-train vs the BoRA reference code's way of training (HF + PEFT)")
    ap.add_argument("--quick", action="store_true", help="tiny shapes for a smoke test (claims not checked)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="bora build folder (bin/ inside)")
    ap.add_argument("--dir", default="/tmp/bora_bench_peer", help="scratch folder (model, data, runs)")
    ap.add_argument("--json", default="", help="output JSON (default <dir>/bench_peer.json)")
    ap.add_argument("--rounds", type=int, default=None, help="round-robin repetitions (default 3; quick 1)")
    ap.add_argument("--steps", type=int, default=None, help="measured steps per run (default 4; quick 2)")
    ap.add_argument("--warmup", type=int, default=1, help="steps per run left out of the figures")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tasks", type=int, default=None, help="tasks (default 16; quick 4)")
    ap.add_argument("--per_task", type=int, default=None,
                    help="training sequences per task (default 2 x batch / tasks)")
    ap.add_argument("--batch", type=int, default=None, help="sequences per step (default 64; quick 8)")
    ap.add_argument("--seq", type=int, default=None, help="tokens per sequence (default 128; quick 32)")
    ap.add_argument("--hidden", type=int, default=None, help="default 768 (opt-125m); quick 64")
    ap.add_argument("--layers", type=int, default=None, help="default 12; quick 2")
    ap.add_argument("--heads", type=int, default=None, help="default 12; quick 4")
    ap.add_argument("--ffn", type=int, default=None, help="default 4 x hidden")
    ap.add_argument("--keep_merges", type=int, default=None, help="GPT-2 merges kept (default all; quick 4000)")
    ap.add_argument("--r", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=16)
    ap.add_argument("--targets", default="q_proj,v_proj")
    ap.add_argument("--tau", type=float, default=100.0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--prior", default="gaussian", choices=["gaussian", "l2"])
    ap.add_argument("--likelihood_weight", default="documents", choices=["documents", "tokens", "none"])
    ap.add_argument("--dtypes", default="fp32,bf16", help="which of fp32,bf16 to run")
    ap.add_argument("--gemm_n", type=int, default=None, help="GEMM size for the peak (default 2048; quick 512)")
    ap.add_argument("--attn", default="sdpa", help="the peer's attn_implementation")
    ap.add_argument("--profile", choices=["auto", "always", "never"], default="auto",
                    help="profile one step of each side: where a claim fails (auto), always, never")
    a = ap.parse_args()
    q = a.quick
    dflt = lambda v, full, quick: v if v is not None else (quick if q else full)  # noqa: E731
    a.rounds = dflt(a.rounds, 3, 1)
    a.steps = dflt(a.steps, 4, 2)
    a.tasks = dflt(a.tasks, 16, 4)
    a.batch = dflt(a.batch, 64, 8)
    a.seq = dflt(a.seq, 128, 32)
    a.hidden = dflt(a.hidden, 768, 64)
    a.layers = dflt(a.layers, 12, 2)
    a.heads = dflt(a.heads, 12, 4)
    a.ffn = dflt(a.ffn, 4 * a.hidden, 4 * a.hidden)
    a.keep_merges = dflt(a.keep_merges, 0, 4000)
    a.gemm_n = dflt(a.gemm_n, 2048, 512)
    if a.per_task is None:
        a.per_task = max(1, 2 * a.batch // a.tasks)
    a.dtypes = [d for d in a.dtypes.split(",") if d]
    assert all(d in ("fp32", "bf16") for d in a.dtypes), "--dtypes: fp32 and/or bf16"
    if (a.tasks * a.per_task) % a.batch:
        ap.error("tasks x per_task must be a multiple of batch (every minibatch full)")
    if not a.json:
        a.json = os.path.join(a.dir, "bench_peer.json")
    return a


def child_env(threads):
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", TOKENIZERS_PARALLELISM="false",
               PYTHONDONTWRITEBYTECODE="1")
    return env


def run_measured(cmd, env, logfile):
    """Runs cmd; returns (exit status, wall s, rusage) of that one process (wait4)."""
    os.makedirs(os.path.dirname(logfile), exist_ok=True)
    with open(logfile, "w") as out:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
    if p.returncode != 0:
        with open(logfile) as f:
            tail = f.read()[-3000:]
        raise SystemExit("bench_peer: %s failed (exit %d); its log %s ends:\n%s" % (cmd[0], p.returncode, logfile,
                                                                                 tail))
    return wall, ru


# ---- inputs ----------------------------------------------------------------------

def make_corpus(a, path):
    files = [f for f in os.listdir(FORTUNES) if os.path.isfile(os.path.join(FORTUNES, f))
             and not f.endswith((".dat", ".u8")) and not f.startswith(".")]
    chosen = [f for f in PREFERRED if f in files]
    chosen += sorted((f for f in files if f not in chosen), key=lambda f: -os.path.getsize(os.path.join(FORTUNES, f)))
    if len(chosen) < a.tasks:
        raise SystemExit("bench_peer: %s has %d fortune files, %d tasks asked" % (FORTUNES, len(chosen), a.tasks))
    chosen = sorted(chosen[:a.tasks])
    docs_per_task = a.per_task + 2  # + one validation and one test document
    min_chars = 8 * a.seq + 200  # English BPE: ~4 characters a token; checked below
    with open(path, "w") as out:
        for name in chosen:
            with open(os.path.join(FORTUNES, name), encoding="utf-8", errors="replace") as f:
                fortunes = [x.strip() for x in f.read().split("\n%\n") if x.strip()]
            i = 0
            for _ in range(docs_per_task):
                parts, n = [], 0
                while n < min_chars:
                    parts.append(fortunes[i % len(fortunes)])
                    n += len(parts[-1]) + 2
                    i += 1
                out.write(json.dumps({"task": name, "text": "\n\n".join(parts)}) + "\n")
    return chosen


def make_inputs(a, bin_dir):
    os.makedirs(a.dir, exist_ok=True)
    model, data = os.path.join(a.dir, "model"), os.path.join(a.dir, "data")
    gpt2 = os.path.join(ROOT, ".deps", "gpt2")
    subprocess.run([os.path.join(bin_dir, "bora-make-model"), "--out", model, "--hidden_size", str(a.hidden),
                    "--num_layers", str(a.layers), "--num_heads", str(a.heads), "--ffn_dim", str(a.ffn),
                    "--max_positions", str(max(a.seq, 2048 if not a.quick else a.seq)),
                    "--keep_merges", str(a.keep_merges), "--vocab", os.path.join(gpt2, "vocab.json"),
                    "--merges", os.path.join(gpt2, "merges.txt"), "--seed", "1"],
                   check=True, stdout=subprocess.DEVNULL)
    corpus = os.path.join(a.dir, "corpus.jsonl")
    make_corpus(a, corpus)
    n = a.per_task + 2
    fr = "%r,%r,%r" % (a.per_task / n, 1 / n, 1 / n)
    subprocess.run([os.path.join(bin_dir, "data_prep"), "--input", corpus, "--format", "jsonl", "--task_field",
                    "task", "--text_field", "text", "--tokenizer", model, "--prompt_template", '""',
                    "--min_docs", "0", "--max_docs", "0", "--max_tasks", "0", "--min_text_chars", "0",
                    "--split_fractions", fr, "--seed", "42", "--max_len", str(a.seq), "--out", data,
                    "--overwrite=true", "--threads", str(a.threads), "--progress=false"],
                   check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(data, "manifest.json")) as f:
        m = json.load(f)
    for t in m["tasks"]:
        tr = t["train"]
        if tr["sequences"] != a.per_task or tr["tokens"] != a.per_task * a.seq:
            raise SystemExit("bench_peer: task %s has %d training sequences of %d tokens in all; every sequence "
                             "should have exactly %d (raise the document length in make_corpus)"
                             % (t["name"], tr["sequences"], tr["tokens"], a.seq))
    with open(os.path.join(model, "config.json")) as f:
        cfg = json.load(f)
    return model, data, cfg


# ---- FLOPs and the GEMM peak -----------------------------------------------------

def flop_model(a, cfg):
    h, f, L, V = cfg["hidden_size"], cfg["ffn_dim"], cfg["num_hidden_layers"], cfg["vocab_size"]
    targets = a.targets.split(",")
    dims = {"q_proj": (h, h), "k_proj": (h, h), "v_proj": (h, h), "out_proj": (h, h), "fc1": (h, f), "fc2": (f, h)}
    n_body = L * (4 * h * h + 2 * h * f)
    p_lora = L * sum(a.r * (dims[t][0] + dims[t][1]) for t in targets)
    return {"hidden": h, "ffn": f, "layers": L, "vocab": V, "n_body": n_body, "n_lm_head": V * h,
            "p_lora": p_lora}


def step_flops(fm, all_tokens, loss_tokens, seq_lens):
    attn = sum(12 * fm["layers"] * fm["hidden"] * s * s for s in seq_lens)
    return all_tokens * (4 * fm["n_body"] + 6 * fm["p_lora"]) + loss_tokens * 4 * fm["n_lm_head"] + attn


GEMM_CODE = r"""
import json, sys, time, torch
n, threads = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
out = {}
for name, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
    x, y = torch.randn(n, n).to(dt), torch.randn(n, n).to(dt)
    z = torch.empty(n, n, dtype=dt)
    for _ in range(2):
        torch.mm(x, y, out=z)
    times = []
    budget = time.perf_counter() + 6.0
    while len(times) < 3 or (len(times) < 7 and time.perf_counter() < budget):
        t0 = time.perf_counter()
        torch.mm(x, y, out=z)
        times.append(time.perf_counter() - t0)
    times.sort()
    out[name] = 2.0 * n ** 3 / times[len(times) // 2]
print(json.dumps(out))
"""


def gemm_peak(a, env):
    r = subprocess.run([sys.executable, "-c", GEMM_CODE, str(a.gemm_n), str(a.threads)], env=env, check=True,
                       capture_output=True, text=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


# ---- the two sides -----------------------------------------------------------------

def batch_tokens(a, tasks, steps):
    """(all tokens, loss tokens, sequence lengths) of steps 0..steps-1, bora's sampler."""
    s = peer_train.GlobalSampler([len(t["seqs"]) for t in tasks], a.batch, 42)
    out = []
    for step in range(steps):
        lens, loss = [], 0
        for t, i in s.batch_refs(step):
            L = len(tasks[t]["seqs"][i])
            lens.append(L)
            loss += L - tasks[t]["prompt_len"][i]
        out.append((sum(lens), loss, lens))
    return out


def bora_cmd(a, bin_dir, model, data, run_dir, dtype, steps):
    return [os.path.join(bin_dir, "bora-train"), "--model", model, "--data", data, "--run_dir", run_dir,
            "--device", "cpu", "--dtype", {"fp32": "float32", "bf16": "bfloat16"}[dtype],
            "--threads", str(a.threads), "--seed", "42", "--batch_size", str(a.batch), "--micro_batch", str(a.batch),
            "--max_steps", str(steps), "--eval_every", str(steps), "--eval_base=false", "--patience", "0",
            "--eval_batch", str(a.batch), "--log_every", "1", "--replica_check_every", "0",
            "--export_adapters=false", "--tau", repr(a.tau), "--lr", repr(a.lr), "--lr_per_tau", "0",
            "--prior", a.prior, "--likelihood_weight", a.likelihood_weight, "--adapter", "lora",
            "--adapter_r", str(a.r), "--adapter_alpha", repr(a.alpha), "--adapter_targets", a.targets,
            "--adapter_dropout", "0", "--init_noise", "0.001"]


def run_bora(a, bin_dir, model, data, dtype, tag, env, profile=""):
    run_dir = os.path.join(a.dir, "runs", tag)
    subprocess.run(["rm", "-rf", run_dir], check=True)
    steps = a.warmup + (1 if profile else a.steps)
    e = dict(env)
    if profile:
        e["BORA_PROFILE"], e["BORA_PROFILE_STEP"] = profile, str(steps)
    wall, ru = run_measured(bora_cmd(a, bin_dir, model, data, run_dir, dtype, steps), e, run_dir + ".log")
    lines = [json.loads(x) for x in open(os.path.join(run_dir, "metrics.jsonl")) if x.strip()]
    st = [j for j in lines if "nll" in j and "eval" not in j and "step_s" in j]
    val = [j for j in lines if j.get("eval") == "validation"]
    return {"steps": st, "maxrss_kb": ru.ru_maxrss, "process_cpu_s": ru.ru_utime + ru.ru_stime, "wall_s": wall,
            "val_nll": val[-1]["micro_nll"] if val else float("nan")}


def run_peer(a, model, data, dtype, tag, env, profile=""):
    out = os.path.join(a.dir, "runs", tag + ".json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    cmd = [sys.executable, os.path.join(HERE, "peer_train.py"), "--model", model, "--data", data, "--out", out,
           "--device", "cpu", "--dtype", dtype, "--threads", str(a.threads), "--steps", str(a.warmup + a.steps),
           "--warmup", str(a.warmup), "--batch_size", str(a.batch), "--seed", "42", "--tau", repr(a.tau),
           "--lr", repr(a.lr), "--prior", a.prior, "--likelihood_weight", a.likelihood_weight, "--r", str(a.r),
           "--alpha", repr(a.alpha), "--targets", a.targets, "--attn", a.attn, "--init_noise", "0.001"]
    if profile:
        cmd += ["--profile", "1", "--profile_out", profile]
    wall, ru = run_measured(cmd, env, os.path.join(a.dir, "runs", tag + ".log"))
    with open(out) as f:
        r = json.load(f)
    return {"steps": r["steps"], "maxrss_kb": ru.ru_maxrss, "process_cpu_s": ru.ru_utime + ru.ru_stime,
            "wall_s": wall, "val_nll": float("nan")}


def summarize_run(a, r, counts, fm, side):
    """Figures of one run over its measured steps (the warm-up left out)."""
    st = r["steps"][a.warmup:]
    if not st:
        raise SystemExit("bench_peer: a %s run logged %d steps, fewer than warm-up + 1" % (side, len(r["steps"])))
    wall = sum(s["step_s"] for s in st)
    all_tok = loss_tok = flops = 0
    for s in st:
        n_all, n_loss, lens = counts[s["step"] - 1]
        if s["tokens"] != n_loss:
            raise SystemExit("bench_peer: %s step %d has %d loss tokens, the sampler says %d: the two sides would "
                             "not train on the same tokens" % (side, s["step"], s["tokens"], n_loss))
        all_tok += n_all
        loss_tok += n_loss
        flops += step_flops(fm, n_all, n_loss, lens)
    out = {"step_s": wall / len(st), "cpu_s_per_step": sum(s.get("cpu_s", float("nan")) for s in st) / len(st),
           "tokens_per_s_all": all_tok / wall, "tokens_per_s_loss": loss_tok / wall,
           "flops_per_step": flops / len(st), "achieved_flops": flops / wall,
           "peak_rss_mb": r["maxrss_kb"] / 1024.0, "process_cpu_s": r["process_cpu_s"], "wall_s": r["wall_s"],
           "nll_first": r["steps"][0]["nll"], "nll_last": r["steps"][-1]["nll"],
           "loss_first": r["steps"][0]["loss"], "val_nll": r["val_nll"], "measured_steps": len(st)}
    if side == "bora":
        out["breakdown_s"] = {k: sum(s.get(k, 0.0) for s in st) / len(st)
                              for k in ("data_s", "compute_s", "optimizer_s", "allreduce_s")}
    return out


def median_of(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None and not (isinstance(r[key], float) and math.isnan(r[key]))]
    return statistics.median(vals) if vals else float("nan")


# ---- profiles ------------------------------------------------------------------------

def trace_self_times(path, top=15):
    """Self time per op name from a LibTorch legacy-profiler chrome trace."""
    with open(path) as f:
        text = f.read()
    try:
        ev = json.loads(text)
    except json.JSONDecodeError:
        ev = json.loads(text.rstrip().rstrip(",") + "]")
    if isinstance(ev, dict):
        ev = ev.get("traceEvents", [])
    spans = [e for e in ev if e.get("ph") == "X" and "dur" in e]
    by_tid = {}
    for e in spans:
        by_tid.setdefault(e.get("tid"), []).append(e)
    self_t, calls = {}, {}
    for evs in by_tid.values():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []  # [end, name, child time]
        def close(entry):
            end, name, child, dur = entry
            self_t[name] = self_t.get(name, 0.0) + dur - child
        for e in evs:
            while stack and e["ts"] >= stack[-1][0]:
                close(stack.pop())
            if stack:
                stack[-1][2] += e["dur"]
            stack.append([e["ts"] + e["dur"], e["name"], 0.0, e["dur"]])
            calls[e["name"]] = calls.get(e["name"], 0) + 1
        while stack:
            close(stack.pop())
    total = sum(self_t.values()) or 1.0
    rows = sorted(self_t.items(), key=lambda kv: -kv[1])[:top]
    lines = ["%-45s %10s %7s %7s" % ("op (bora, LibTorch profiler)", "self ms", "%", "calls")]
    for name, t in rows:
        lines.append("%-45s %10.1f %6.1f%% %7d" % (name[:45], t / 1000.0, 100.0 * t / total, calls[name]))
    return "\n".join(lines)


def profile_dtype(a, bin_dir, model, data, dtype, env, fm):
    log("\n-- profile, %s: one step of each side after %d warm-up step(s)" % (dtype, a.warmup))
    out = {}
    trace = os.path.join(a.dir, "runs", "profile_bora_%s.trace.json" % dtype)
    if os.path.exists(trace):
        os.remove(trace)
    r = run_bora(a, bin_dir, model, data, dtype, "profile_bora_" + dtype, env, profile=trace)
    last = r["steps"][-1]
    parts = ", ".join("%s %.3f" % (k, last.get(k, 0.0)) for k in ("data_s", "compute_s", "optimizer_s"))
    log("bora step %.3f s (%s)" % (last["step_s"], parts))
    if os.path.exists(trace):
        try:
            out["bora"] = trace_self_times(trace)
        except (ValueError, KeyError) as e:
            out["bora"] = "could not read %s: %s" % (trace, e)
    else:
        out["bora"] = "no trace written (bora-train without BORA_PROFILE support?)"
    log(out["bora"])
    table = os.path.join(a.dir, "runs", "profile_peer_%s.txt" % dtype)
    run_peer(a, model, data, dtype, "profile_peer_" + dtype, env, profile=table)
    with open(table) as f:
        out["peer"] = f.read()
    log("peer (torch.profiler key_averages, by self CPU time):\n" + out["peer"])
    return out


# ---- main -----------------------------------------------------------------------------

def rel(x, y):
    return abs(x - y) / max(abs(y), 1e-30)


def main():
    a = parse()
    bin_dir = os.path.join(a.build, "bin")
    for tool in ("bora-train", "bora-make-model", "data_prep"):
        if not os.access(os.path.join(bin_dir, tool), os.X_OK):
            raise SystemExit("bench_peer: no %s in %s (build first)" % (tool, bin_dir))
    env = child_env(a.threads)
    t_start = time.time()
    loadavg_start = open("/proc/loadavg").read().split()[:3]
    log("bench_peer: %s, %d threads, load average %s" % (time.strftime("%F %T"), a.threads, loadavg_start))
    model, data, cfg = make_inputs(a, bin_dir)
    fm = flop_model(a, cfg)
    _, tasks = peer_train.read_dataset(data)
    counts = batch_tokens(a, tasks, a.warmup + a.steps)
    log("workload: OPT hidden %d, %d layers, %d heads, ffn %d, vocabulary %d (%.1f M parameters in matmuls + "
        "lm_head %.1f M); %d tasks, %d x %d tokens a step; LoRA r %d on %s (%d per task); tau %g, lr %g; "
        "%d + %d steps a run, %d round(s)"
        % (fm["hidden"], fm["layers"], cfg["num_attention_heads"], fm["ffn"], fm["vocab"], fm["n_body"] / 1e6,
           fm["n_lm_head"] / 1e6, a.tasks, a.batch, a.seq, a.r, a.targets, fm["p_lora"], a.tau, a.lr, a.warmup,
           a.steps, a.rounds))

    raw = {d: {"bora": [], "peer": []} for d in a.dtypes}
    gemms = []
    for rnd in range(a.rounds):
        g = gemm_peak(a, env)
        gemms.append(g)
        log("round %d/%d: GEMM %d^2 fp32 %.1f GFLOP/s, bf16 %.1f GFLOP/s"
            % (rnd + 1, a.rounds, a.gemm_n, g["fp32"] / 1e9, g["bf16"] / 1e9))
        for d in a.dtypes:
            for side in ("bora", "peer"):
                tag = "%s_%s_r%d" % (side, d, rnd)
                r = (run_bora(a, bin_dir, model, data, d, tag, env) if side == "bora"
                     else run_peer(a, model, data, d, tag, env))
                s = summarize_run(a, r, counts, fm, side)
                raw[d][side].append(s)
                log("  %-4s %s: %8.1f tokens/s (all), %6.3f s/step, %6.2f CPU-s/step, %7.1f MB peak RSS, nll %.4f"
                    % (side, d, s["tokens_per_s_all"], s["step_s"], s["cpu_s_per_step"], s["peak_rss_mb"],
                       s["nll_last"]))

    peak = {k: statistics.median(g[k] for g in gemms) for k in ("fp32", "bf16")}
    keys = ["tokens_per_s_all", "tokens_per_s_loss", "step_s", "cpu_s_per_step", "peak_rss_mb", "achieved_flops",
            "flops_per_step", "nll_first", "nll_last", "loss_first", "val_nll", "wall_s", "process_cpu_s"]
    res = {"bench": "bench_peer", "quick": a.quick, "date": time.strftime("%F %T"),
           "machine": {"threads": a.threads, "loadavg_start": loadavg_start, "cpu": cpu_name()},
           "workload": {"hidden": fm["hidden"], "layers": fm["layers"], "heads": cfg["num_attention_heads"],
                        "ffn": fm["ffn"], "vocab": fm["vocab"], "tasks": a.tasks, "batch": a.batch, "seq": a.seq,
                        "per_task_train": a.per_task, "lora_r": a.r, "lora_alpha": a.alpha, "targets": a.targets,
                        "tau": a.tau, "lr": a.lr, "prior": a.prior, "likelihood_weight": a.likelihood_weight,
                        "warmup": a.warmup, "steps": a.steps, "rounds": a.rounds, "attn": a.attn,
                        "n_body": fm["n_body"], "n_lm_head": fm["n_lm_head"], "p_lora": fm["p_lora"]},
           "flop_formula": "F = T_all*(4*N_body + 6*P_lora) + T_loss*4*V*h + sum_seq 12*L*h*S^2; "
                           "N_body = L*(4h^2 + 2hf), P_lora = L*sum_targets r*(in+out)",
           "gemm_peak_flops": peak, "gemm_rounds": gemms, "claims": []}
    failed = 0
    for d in a.dtypes:
        sec = {}
        for side in ("bora", "peer"):
            runs = raw[d][side]
            m = {k: median_of(runs, k) for k in keys}
            m["fraction_of_peak"] = m["achieved_flops"] / peak[d]
            if side == "bora":
                m["breakdown_s"] = {k: statistics.median(r["breakdown_s"][k] for r in runs)
                                    for k in runs[0]["breakdown_s"]}
            m["rounds"] = runs
            sec[side] = m
        sec["ratio_bora_over_peer"] = sec["bora"]["tokens_per_s_all"] / sec["peer"]["tokens_per_s_all"]
        # the ratio of medians, and the median of per-round ratios (robust to a slow round)
        sec["ratio_per_round"] = [b["tokens_per_s_all"] / p["tokens_per_s_all"]
                                  for b, p in zip(raw[d]["bora"], raw[d]["peer"])]
        frac_min, ratio_min = CLAIMS[d]
        for name, val, thr in (("%s bora >= %d%% of the %s GEMM peak" % (d, round(100 * frac_min), d),
                                sec["bora"]["fraction_of_peak"], frac_min),
                               ("%s bora >= %.2fx peer tokens/s" % (d, ratio_min), sec["ratio_bora_over_peer"],
                                ratio_min)):
            ok = val >= thr
            res["claims"].append({"claim": name, "value": val, "threshold": thr, "pass": ok, "checked": not a.quick})
            if not ok and not a.quick:
                failed += 1
        res[d] = sec

    # bf16 numerics and the two sides' agreement.
    if "fp32" in a.dtypes:
        f = res["fp32"]
        res["agreement_fp32"] = {"nll_first_bora": f["bora"]["nll_first"], "nll_first_peer": f["peer"]["nll_first"],
                                 "rel_diff": rel(f["peer"]["nll_first"], f["bora"]["nll_first"]),
                                 "loss_first_bora": f["bora"]["loss_first"],
                                 "loss_first_peer": f["peer"]["loss_first"],
                                 "loss_rel_diff": rel(f["peer"]["loss_first"], f["bora"]["loss_first"])}
    if "fp32" in a.dtypes and "bf16" in a.dtypes:
        n = {}
        for side in ("bora", "peer"):
            x, y = res["fp32"][side], res["bf16"][side]
            n[side] = {"nll_last_fp32": x["nll_last"], "nll_last_bf16": y["nll_last"],
                       "rel_diff_last": rel(y["nll_last"], x["nll_last"])}
        n["bora"].update(val_nll_fp32=res["fp32"]["bora"]["val_nll"], val_nll_bf16=res["bf16"]["bora"]["val_nll"],
                         rel_diff_val=rel(res["bf16"]["bora"]["val_nll"], res["fp32"]["bora"]["val_nll"]))
        n["steps"] = a.warmup + a.steps
        res["bf16_numerics"] = n

    profile_needed = a.profile == "always" or (a.profile == "auto" and failed and not a.quick)
    if profile_needed:
        failing = sorted({c["claim"].split()[0] for c in res["claims"] if not c["pass"]}) if a.profile == "auto" \
            else a.dtypes
        res["profiles"] = {d: profile_dtype(a, bin_dir, model, data, d, env, fm) for d in failing}

    res["machine"]["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    res["elapsed_s"] = time.time() - t_start
    print_table(a, res)
    os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(res, f, indent=1, allow_nan=True)
    log("wrote %s (%.0f s)" % (a.json, res["elapsed_s"]))
    return 0 if a.quick else failed


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def print_table(a, res):
    log("\n== bench_peer: bora-train vs HF+PEFT (reference way), medians of %d round(s), %d threads"
        % (a.rounds, a.threads))
    log("GEMM peak (torch.mm %d^2): fp32 %.1f GFLOP/s, bf16 %.1f GFLOP/s"
        % (a.gemm_n, res["gemm_peak_flops"]["fp32"] / 1e9, res["gemm_peak_flops"]["bf16"] / 1e9))
    hdr = "%-10s %12s %12s %9s %9s %10s %9s %10s %7s %9s" % (
        "run", "tok/s all", "tok/s loss", "s/step", "CPU-s/st", "peak RSS", "GFLOP/st", "GFLOP/s", "%peak",
        "nll last")
    log(hdr)
    for d in a.dtypes:
        for side in ("bora", "peer"):
            m = res[d][side]
            log("%-10s %12.1f %12.1f %9.3f %9.2f %8.0f MB %9.1f %10.2f %6.1f%% %9.4f" % (
                side + " " + d, m["tokens_per_s_all"], m["tokens_per_s_loss"], m["step_s"], m["cpu_s_per_step"],
                m["peak_rss_mb"], m["flops_per_step"] / 1e9, m["achieved_flops"] / 1e9,
                100 * m["fraction_of_peak"], m["nll_last"]))
        b = res[d]["bora"]["breakdown_s"]
        log("%-10s ratio bora/peer %.2fx (per round: %s); bora's step: data %.3f s, compute %.3f s, optimizer %.3f s"
            % ("", res[d]["ratio_bora_over_peer"], ", ".join("%.2f" % x for x in res[d]["ratio_per_round"]),
               b["data_s"], b["compute_s"], b["optimizer_s"]))
    if "agreement_fp32" in res:
        g = res["agreement_fp32"]
        log("first step, fp32 (same base, same batch): NLL bora %.5f, peer %.5f (relative difference %.1e); "
            "loss bora %.6g, peer %.6g (%.1e)" % (g["nll_first_bora"], g["nll_first_peer"], g["rel_diff"],
                                                g["loss_first_bora"], g["loss_first_peer"], g["loss_rel_diff"]))
    if "bf16_numerics" in res:
        n = res["bf16_numerics"]
        log("bf16 numerics after %d steps: bora training NLL %.5f (fp32) vs %.5f (bf16), relative %.1e; "
            "validation NLL %.5f vs %.5f, relative %.1e; peer %.5f vs %.5f, relative %.1e"
            % (n["steps"], n["bora"]["nll_last_fp32"], n["bora"]["nll_last_bf16"], n["bora"]["rel_diff_last"],
               n["bora"]["val_nll_fp32"], n["bora"]["val_nll_bf16"], n["bora"]["rel_diff_val"],
               n["peer"]["nll_last_fp32"], n["peer"]["nll_last_bf16"], n["peer"]["rel_diff_last"]))
    for c in res["claims"]:
        verdict = ("PASS" if c["pass"] else "FAIL") if c["checked"] else ("(pass)" if c["pass"] else "(fail)")
        log("%-6s %s: %.3g (threshold %.3g)%s" % (verdict, c["claim"], c["value"], c["threshold"],
                                                  "" if c["checked"] else "  [--quick: not checked]"))


if __name__ == "__main__":
    sys.exit(main())
