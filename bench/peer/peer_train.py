#!/usr/bin/env python3
"""The BoRA reference code's way of training, as the peer of bora-train in bench/peer/bench_peer.py.

HF transformers' OPTForCausalLM with one PEFT LoRA adapter per task (add_adapter per
task) and one more for Theta, the mean adapter (trainable, never active in a forward).
Per step, for each task present in the minibatch: set_adapter(task) and a forward
over that task's rows; then the loss

    L = sum_d w_d * NLL_d(theta_d) + R(theta, Theta)

as bora-train computes it (docs/bora.md): NLL_d the token-mean NLL of
task d's rows in the minibatch (HF's own causal-LM loss with labels = -100 on the
prompt and padding), w_d by --likelihood_weight (documents: N_d, the task's training
sequences; tokens: its training target tokens; none: 1), R by --prior (gaussian:
tau/2 sum_d ||theta_d - Theta||^2 over ALL tasks, also those absent from the batch;
l2: tau sum_d sum_k ||theta_d^k - Theta^k||_F), one backward, AdamW over every
theta_d and Theta (betas 0.9/0.999, eps 1e-8, no weight decay). Initialisation:
Theta gets PEFT's LoRA init (A kaiming-uniform, B = 0), theta_d = Theta + N(0, 1e-3^2).

Differences from bora-train, on purpose (they are the reference's way):
  - HF computes logits at every position (also the prompt and the last one); bora only
    at the target positions.
  - one forward per task present instead of one mixed forward of the whole batch.
  - PEFT's set_adapter freezes every other adapter (requires_grad = False), which would
    silently drop the prior's gradient on them; the peer turns requires_grad back on
    for every adapter before the backward, so the gradient is bora's.
  - the initial noise and PEFT's A init come from torch's generator, not bora's, so
    adapters differ by 1e-3-sized noise: the first step's NLL agrees to about 1e-4
    (same base, same batch), later steps drift apart slowly.

The batches are bora's: the dataset made by data_prep is read with h5py, and bora's
global sampler (src/bora/sampler.cpp: splitmix64, Lemire's bounded draw, Fisher-Yates
per epoch) is reproduced exactly, so step s sees the same sequences on both sides.

Device-agnostic: --device cpu|cuda, --dtype fp32|bf16 (bf16: base weights in bfloat16,
adapters float32, the step under torch.autocast(device, bfloat16)).

Output: --out JSON with per-step wall and CPU seconds, tokens, NLL, loss; optionally a
torch.profiler table of --profile steps (--profile_out).
"""
import argparse
import json
import math
import os
import resource
import sys
import time

M64 = (1 << 64) - 1


class Rng:
    """bora's splitmix64 (src/bora/sampler.cpp), bit for bit."""

    def __init__(self, seed):
        self.state = seed & M64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & M64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    def below(self, n):
        m = self.next() * n
        low = m & M64
        if low < n:
            threshold = ((1 << 64) - n) % n
            while low < threshold:
                m = self.next() * n
                low = m & M64
        return m >> 64


class GlobalSampler:
    """bora's GlobalSampler: one permutation of all training sequences per epoch."""

    def __init__(self, sizes, batch_size, seed):
        self.sizes, self.batch, self.seed = sizes, batch_size, seed
        self.starts, total = [], 0
        for n in sizes:
            self.starts.append(total)
            total += n
        self.total = total
        self.epoch, self.perm = -1, None

    def steps_per_epoch(self):
        return (self.total + self.batch - 1) // self.batch

    def batch_refs(self, step):
        import bisect
        spe = self.steps_per_epoch()
        epoch = step // spe
        if epoch != self.epoch:
            perm = list(range(self.total))
            rng = Rng((self.seed * 0x2545F4914F6CDD1D + epoch + 1) & M64)
            for i in range(self.total - 1, 0, -1):
                j = rng.below(i + 1)
                perm[i], perm[j] = perm[j], perm[i]
            self.perm, self.epoch = perm, epoch
        begin = (step % spe) * self.batch
        end = min(self.total, begin + self.batch)
        out = []
        for g in self.perm[begin:end]:
            t = bisect.bisect_right(self.starts, g) - 1
            out.append((t, g - self.starts[t]))
        return out


def read_dataset(folder):
    """Every task's training sequences (lists of ids) and prompt lengths, via h5py."""
    import h5py
    with open(os.path.join(folder, "manifest.json")) as f:
        m = json.load(f)
    tasks = []
    for t in m["tasks"]:
        with h5py.File(os.path.join(folder, t["shard"]), "r") as f:
            g = f["tasks"][t["name"]]["train"]
            tok, off, plen = g["tokens"][:].astype("int64"), g["offsets"][:], g["prompt_len"][:]
        seqs = [tok[off[i]:off[i + 1]] for i in range(len(off) - 1)]
        tasks.append({"name": t["name"], "seqs": seqs, "prompt_len": [int(p) for p in plen],
                      "documents": t["train"]["sequences"], "target_tokens": t["train"]["target_tokens"]})
    return m, tasks


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="HF checkpoint folder (save_pretrained / bora-make-model)")
    ap.add_argument("--data", required=True, help="dataset folder made by data_prep")
    ap.add_argument("--out", required=True, help="JSON file with the per-step figures")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--steps", type=int, default=5, help="optimizer steps, warm-up included")
    ap.add_argument("--warmup", type=int, default=1, help="first steps left out of the summary")
    ap.add_argument("--batch_size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=42, help="the sampler's seed (bora-train's seed)")
    ap.add_argument("--tau", type=float, default=100.0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--prior", default="gaussian", choices=["gaussian", "l2"])
    ap.add_argument("--likelihood_weight", default="documents", choices=["documents", "tokens", "none"])
    ap.add_argument("--init_noise", type=float, default=1e-3)
    ap.add_argument("--r", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=16)
    ap.add_argument("--targets", default="q_proj,v_proj")
    ap.add_argument("--attn", default="sdpa", help="transformers attn_implementation (sdpa | eager)")
    ap.add_argument("--profile", type=int, default=0, help="> 0: profile this many steps after the warm-up")
    ap.add_argument("--profile_out", default="", help="file for the profile's key_averages table")
    a = ap.parse_args()

    import torch
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    from transformers import OPTForCausalLM
    from peft import LoraConfig, get_peft_model

    device = torch.device(a.device)
    base_dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    torch.manual_seed(a.seed)

    manifest, tasks = read_dataset(a.data)
    D = len(tasks)
    sampler = GlobalSampler([len(t["seqs"]) for t in tasks], a.batch_size, a.seed)
    weight = [float(t["documents"]) if a.likelihood_weight == "documents"
              else float(t["target_tokens"]) if a.likelihood_weight == "tokens" else 1.0 for t in tasks]

    t0 = time.perf_counter()
    model = OPTForCausalLM.from_pretrained(a.model, dtype=base_dtype, attn_implementation=a.attn)
    pad_id = model.config.pad_token_id if model.config.pad_token_id is not None else 1
    cfg = LoraConfig(r=a.r, lora_alpha=a.alpha, lora_dropout=0.0, target_modules=a.targets.split(","),
                     bias="none", task_type="CAUSAL_LM")
    names = ["task%03d" % d for d in range(D)]  # PEFT adapter names (task names may hold any character)
    model = get_peft_model(model, cfg, adapter_name="theta")
    for n in names:
        model.add_adapter(n, cfg)
    model.to(device)

    # Adapter tensors by adapter name, in one fixed order (module, A/B); float32 always.
    by_adapter = {n: [] for n in ["theta"] + names}
    for mod_name, mod in model.named_modules():
        if hasattr(mod, "lora_A") and isinstance(getattr(mod, "lora_A"), torch.nn.ModuleDict):
            for n in by_adapter:
                by_adapter[n].append(mod.lora_A[n].weight)
                by_adapter[n].append(mod.lora_B[n].weight)
    with torch.no_grad():
        for ps in by_adapter.values():
            for p in ps:
                p.data = p.data.float()
        # theta_d = Theta + N(0, init_noise^2) on every tensor (the reference's init).
        for n in names:
            for p, th in zip(by_adapter[n], by_adapter["theta"]):
                p.copy_(th + a.init_noise * torch.randn_like(th))
    all_lora = [p for ps in by_adapter.values() for p in ps]
    lora_params_per_task = sum(p.numel() for p in by_adapter["theta"])
    for p in model.parameters():
        p.requires_grad_(False)
    for p in all_lora:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(all_lora, lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    load_s = time.perf_counter() - t0

    def autocast():
        if a.dtype == "bf16":
            return torch.autocast(device.type, dtype=torch.bfloat16)
        import contextlib
        return contextlib.nullcontext()

    def one_step(step):
        refs = sampler.batch_refs(step)
        by_task = {}
        for t, i in refs:  # grouped by task, drawn order kept inside a task (as bora)
            by_task.setdefault(t, []).append(i)
        lik = torch.zeros((), device=device)
        nll_sum, tokens, all_tokens = 0.0, 0, 0
        with autocast():
            for t in sorted(by_task):
                rows = by_task[t]
                seqs = [tasks[t]["seqs"][i] for i in rows]
                S = max(len(s) for s in seqs)
                ids = torch.full((len(rows), S), pad_id, dtype=torch.long)
                mask = torch.zeros((len(rows), S), dtype=torch.long)
                labels = torch.full((len(rows), S), -100, dtype=torch.long)
                for b, (s, i) in enumerate(zip(seqs, rows)):
                    L, p = len(s), tasks[t]["prompt_len"][i]
                    ids[b, :L] = torch.from_numpy(s)
                    mask[b, :L] = 1
                    labels[b, p:L] = ids[b, p:L]
                ids, mask, labels = ids.to(device), mask.to(device), labels.to(device)
                n_t = int((labels[:, 1:] != -100).sum())
                model.set_adapter(names[t])
                out = model(input_ids=ids, attention_mask=mask, labels=labels)
                lik = lik + weight[t] * out.loss.float()
                nll_sum += float(out.loss.detach()) * n_t
                tokens += n_t
                all_tokens += int(mask.sum())
        # set_adapter froze every other adapter: the prior needs all of them.
        for p in all_lora:
            p.requires_grad_(True)
        prior = torch.zeros((), device=device)
        th = by_adapter["theta"]
        if a.tau > 0:
            for n in names:
                for p, q in zip(by_adapter[n], th):
                    d = (p - q).pow(2).sum()
                    prior = prior + (0.5 * a.tau * d if a.prior == "gaussian" else a.tau * d.sqrt())
        loss = lik + prior
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        lv = float(loss.detach())
        return {"loss": lv, "prior": float(prior.detach()), "nll": nll_sum / max(1, tokens), "tokens": tokens,
                "all_tokens": all_tokens, "tasks_present": len(by_task), "sequences": len(refs)}

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    steps = []
    for s in range(a.steps):
        if a.profile > 0 and s == a.warmup:
            break
        sync()
        w0, c0 = time.perf_counter(), time.process_time()
        r = one_step(s)
        sync()
        r["step"] = s + 1
        r["step_s"] = time.perf_counter() - w0
        r["cpu_s"] = time.process_time() - c0
        if not math.isfinite(r["loss"]):
            sys.exit("peer_train: non-finite loss at step %d" % (s + 1))
        steps.append(r)
        print("peer step %d: %.3f s, cpu %.2f s, nll %.4f, loss %.4g" % (s + 1, r["step_s"], r["cpu_s"], r["nll"],
                                                                         r["loss"]), flush=True)
    if a.profile > 0:
        from torch.profiler import ProfilerActivity, profile
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with profile(activities=acts) as prof:
            for s in range(len(steps), len(steps) + a.profile):
                w0 = time.perf_counter()
                r = one_step(s)
                sync()
                r["step"], r["step_s"], r["cpu_s"] = s + 1, time.perf_counter() - w0, 0.0
                steps.append(r)
        sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
        table = prof.key_averages().table(sort_by=sort, row_limit=20)
        if a.profile_out:
            with open(a.profile_out, "w") as f:
                f.write(table + "\n")
        else:
            print(table)

    meas = steps[a.warmup:] if len(steps) > a.warmup else steps
    wall = sum(r["step_s"] for r in meas)
    out = {
        "side": "peer", "device": str(device), "dtype": a.dtype, "threads": torch.get_num_threads(),
        "torch": torch.__version__, "tasks": D, "adapters": D + 1, "lora_params_per_task": lora_params_per_task,
        "load_s": load_s, "warmup": a.warmup, "steps": steps,
        "measured_steps": len(meas),
        "step_s": wall / len(meas),
        "cpu_s_per_step": sum(r["cpu_s"] for r in meas) / len(meas),
        "tokens_per_s_all": sum(r["all_tokens"] for r in meas) / wall,
        "tokens_per_s_loss": sum(r["tokens"] for r in meas) / wall,
        "first_nll": steps[0]["nll"], "last_nll": steps[-1]["nll"],
        "first_loss": steps[0]["loss"],
        "maxrss_kb_self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
