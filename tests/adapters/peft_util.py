"""Fixtures of the PEFT interop tests (test_peft_*.py): a tiny OPT written by
transformers, a dataset of two Debian fortune files, and the reference NLL computed
in Python over exactly the sequences and loss mask bora uses.

The reference reads the sequences from the HDF5 shards with h5py (docs/data-format.md):
token j of a sequence is a loss target exactly when j >= prompt_len, predicted from
the logits at j - 1; sequences are right-padded with pad_token_id under an attention
mask, and padding never counts. Log-softmax runs in float64 so that the reference is
more exact than bora's float32 (the tests compare to 1e-5 relative).
"""
import json
import os
import shutil
import warnings

import h5py
import numpy as np
import torch

from bora_testing import TMP, check, gpt2_files, run, scratch

torch.manual_seed(0)
torch.set_num_threads(1)
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
import transformers  # noqa: E402  (after the variable above)

transformers.utils.logging.disable_progress_bar()
transformers.utils.logging.set_verbosity_error()
warnings.filterwarnings("ignore", module="peft")  # PEFT's advice on saving (lora_bias, ...) is noise here

FORTUNES = "/usr/share/games/fortunes"


def in_scratch_with_base_and_data():
    """Every test's start: work in the scratch folder (relative paths, as a user types
    them), with a tiny base model in base/ and its dataset in data/."""
    os.makedirs(TMP, exist_ok=True)
    os.chdir(TMP)
    make_base("base")
    make_data("base", "data")


def make_base(folder, hidden=32, layers=2, heads=4, ffn=64, seed=0):
    """An OPT written by transformers' save_pretrained (random weights, std 0.2 so that
    the logits vary), with the tokenizer of bora-make-model (GPT-2's first 400 merges)."""
    from transformers import OPTConfig, OPTForCausalLM

    vocab, merges = gpt2_files()
    run("bora-make-model", "--out", folder, "--vocab", vocab, "--merges", merges, "--keep_merges", 400,
        "--hidden_size", hidden, "--num_layers", layers, "--num_heads", heads, "--ffn_dim", ffn,
        "--max_positions", 64)
    with open(os.path.join(folder, "config.json")) as f:
        c = json.load(f)
    torch.manual_seed(seed)
    config = OPTConfig(vocab_size=c["vocab_size"], hidden_size=hidden, num_hidden_layers=layers, ffn_dim=ffn,
                       num_attention_heads=heads, max_position_embeddings=64, word_embed_proj_dim=hidden,
                       bos_token_id=c["bos_token_id"], eos_token_id=c["eos_token_id"], pad_token_id=c["pad_token_id"],
                       init_std=0.2, dropout=0.0, attention_dropout=0.0)
    model = OPTForCausalLM(config)
    os.remove(os.path.join(folder, "model.safetensors"))
    model.save_pretrained(folder)
    return folder


def make_data(model_dir, out, files=("debian", "disclaimer")):
    """A dataset of fortune files, one task each, sequences cut to 48 tokens."""
    corpus = os.path.dirname(scratch("corpus", "x"))
    for f in files:
        shutil.copy(os.path.join(FORTUNES, f), corpus)
    run("data_prep", "--input", corpus, "--tokenizer", model_dir, "--out", out, "--min_docs", 0, "--max_docs", 0,
        "--max_tasks", 0, "--max_len", 48, "--threads", 1, "--progress", "false")
    return out


def sequences(data, task, split):
    """[(ids int64 array, prompt_len)] of a task's split, read with h5py."""
    with open(os.path.join(data, "manifest.json")) as f:
        m = json.load(f)
    t = next(t for t in m["tasks"] if t["name"] == task)
    with h5py.File(os.path.join(data, t["shard"]), "r") as h:
        g = h["tasks"][task][split]
        tok, off, plen = g["tokens"][:], g["offsets"][:], g["prompt_len"][:]
    return [(tok[off[i]:off[i + 1]].astype(np.int64), int(plen[i])) for i in range(len(plen))]


def task_names(data):
    with open(os.path.join(data, "manifest.json")) as f:
        return [t["name"] for t in json.load(f)["tasks"]]


def batches(seqs, pad_id, size=16):
    """(ids, attention_mask, target_mask) tensors, right-padded."""
    for b in range(0, len(seqs), size):
        chunk = seqs[b:b + size]
        S = max(len(ids) for ids, _ in chunk)
        ids = torch.full((len(chunk), S), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), S), dtype=torch.long)
        target = torch.zeros((len(chunk), S), dtype=torch.bool)
        for i, (seq, plen) in enumerate(chunk):
            ids[i, :len(seq)] = torch.from_numpy(seq)
            mask[i, :len(seq)] = 1
            target[i, plen:len(seq)] = True
        yield ids, mask, target


def nll(model, seqs, pad_id):
    """(summed NLL over target tokens in float64, number of target tokens)."""
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for ids, mask, target in batches(seqs, pad_id):
            logits = model(input_ids=ids, attention_mask=mask).logits.double()
            logp = logits[:, :-1].log_softmax(-1).gather(-1, ids[:, 1:, None])[..., 0]
            t = target[:, 1:]
            total -= logp[t].sum().item()
            count += int(t.sum())
    return total, count


def reference_nll(model, data, split="validation"):
    """{task: mean NLL} of a transformers/PEFT model on every task of a dataset."""
    pad = model.config.pad_token_id
    out = {}
    for task in task_names(data):
        total, count = nll(model, sequences(data, task, split), pad)
        out[task] = total / count
    return out


_evals = [0]


def bora_nll(model_dir, data, split="validation", **options):
    """{task: mean NLL} from bora-eval --json (options: run=..., adapter=...)."""
    _evals[0] += 1
    out = scratch("eval", f"{_evals[0]}.json")
    args = ["--model", model_dir, "--data", data, "--split", split, "--json", out, "--threads", 1]
    for k, v in options.items():
        args += [f"--{k}", v]
    run("bora-eval", *args)
    with open(out) as f:
        return {name: t["nll"] for name, t in json.load(f)["tasks"].items()}


def compare(what, got, want, tol=1e-5):
    """Per-task relative difference |got - want| / want <= tol; returns the largest."""
    check(set(got) == set(want), what, ": tasks", sorted(got), "vs", sorted(want))
    worst = 0.0
    for task in want:
        rel = abs(got[task] - want[task]) / abs(want[task])
        check(rel <= tol, f"{what}: task {task}: NLL {got[task]!r} vs {want[task]!r}, relative difference {rel:.2e} > {tol}")
        worst = max(worst, rel)
    print(f"     {what}: max relative NLL difference {worst:.2e} (tolerance {tol})")
    return worst


def differs(what, adapted, base, at_least=1e-3):
    """The adapter must change every task's NLL, so that an ignored adapter would fail."""
    for task in base:
        rel = abs(adapted[task] - base[task]) / abs(base[task])
        check(rel >= at_least, f"{what}: task {task}: adapted NLL {adapted[task]} is within {rel:.1e} of the base's "
              f"{base[task]} (the adapter does nothing?)")


def load_base(model_dir):
    from transformers import OPTForCausalLM

    return OPTForCausalLM.from_pretrained(model_dir).eval()


def train_peft(base_dir, data, config, steps=3, lr=3e-2, seed=0):
    """A PEFT model trained for a few Adam steps on the first task's training split,
    so that every factor is non-trivial; returns the PeftModel."""
    from peft import get_peft_model

    torch.manual_seed(seed)
    model = get_peft_model(load_base(base_dir), config)
    model.train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    seqs = sequences(data, task_names(data)[0], "train")[:16]
    pad = model.config.pad_token_id
    for _ in range(steps):
        for ids, mask, target in batches(seqs, pad):
            logits = model(input_ids=ids, attention_mask=mask).logits
            logp = logits[:, :-1].log_softmax(-1).gather(-1, ids[:, 1:, None])[..., 0]
            loss = -logp[target[:, 1:]].mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()
