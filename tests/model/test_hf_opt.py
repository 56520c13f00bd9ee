"""bora's OPT against transformers' own OPTForCausalLM (ctest label hf).

Random checkpoints are written by transformers' save_pretrained (nothing is
downloaded) in two shapes:
  pre_ln    opt-125m in miniature: hidden 64, 4 heads, 3 layers, ffn 256, GPT-2's
            padded vocabulary of 50272, lm_head tied to embed_tokens, one file
  post_ln   opt-350m's quirks: word_embed_proj_dim 32 != hidden 64 (project_in /
            project_out), do_layer_norm_before = false (no final layer norm), an
            UNTIED lm_head (tie_word_embeddings = false, its own lm_head.weight),
            sharded into several files + model.safetensors.index.json, with the
            small OPT-ordered tokenizer of bora-make-model (so bora-generate can run)
each as float32, float16 and bfloat16 files. bora's side comes from the test tool
opt_logprobs (target_nll, log_softmax of logits, generate(greedy)) and from
bora-generate itself.

Groups (one ctest entry each; the argument picks it):
  fp32      per-token log-probs of padded batches (right padding as bora's batches,
            and left padding) vs HF on each sequence alone: max |diff| <= 1e-5;
            and transformers' tying rules for files that disagree with their config
  half      float16 / bfloat16 files; see check_half for the tolerances and why
  generate  greedy ids vs HF generate(do_sample=False); bora-generate's text vs HF's
  eval      bora-eval's per-task perplexity on a data_prep dataset vs HF's on the
            same sequences read with h5py
"""
import itertools
import json
import math
import os
import shutil
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import GPT2Tokenizer, OPTConfig, OPTForCausalLM

from bora_testing import SOURCE, TMP, check, main, run, test_tool

torch.set_num_threads(1)
FP32_TOL = 1e-5
# Scales of the random weights (see randomize): embeddings and lm_head, the layer
# norms' spread around identity, biases. Linear weights have unit gain.
EMB, LNB, BIAS = 0.2, 0.2, 0.05
TOOL = test_tool("opt_logprobs")
SHAPES = {
    "pre_ln": dict(hidden_size=64, num_attention_heads=4, num_hidden_layers=3, ffn_dim=256,
                   word_embed_proj_dim=64, do_layer_norm_before=True, tie_word_embeddings=True),
    "post_ln": dict(hidden_size=64, num_attention_heads=4, num_hidden_layers=2, ffn_dim=256,
                    word_embed_proj_dim=32, do_layer_norm_before=False, tie_word_embeddings=False),
}
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_made = {}
_calls = itertools.count()


def tokenizer_dir():
    """bora-make-model's tokenizer cut to GPT-2's first 1000 merges (OPT's order:
    <s> <pad> </s> <unk> first, so bos = eos = 2 and pad = 1 as in OPT's config)."""
    d = os.path.join(TMP, "tokenizer")
    if not os.path.exists(os.path.join(d, "vocab.json")):
        vocab, merges = os.path.join(SOURCE, ".deps/gpt2/vocab.json"), os.path.join(SOURCE, ".deps/gpt2/merges.txt")
        run("bora-make-model", "--out", d, "--vocab", vocab, "--merges", merges, "--keep_merges", 1000,
            "--hidden_size", 8, "--num_layers", 1, "--num_heads", 1, "--ffn_dim", 8)
    return d


def randomize(model, seed):
    """Every parameter random and O(1) in effect: HF's own init (zero biases,
    identity layer norms, std 0.02) would hide a swapped bias or LN weight and give
    nearly flat logits whose argmax is decided by rounding noise. Larger biases make
    one token win every greedy step (a weak test of generation); larger embeddings
    make log-probs of -20 whose float32 rounding alone nears 1e-5."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g)
            if "layer_norm" in name:
                p.copy_((1.0 if name.endswith("weight") else 0.0) + LNB * r)
            elif name.endswith("bias"):
                p.copy_(BIAS * r)
            elif "embed" in name or name == "lm_head.weight":
                p.copy_(EMB * r)
            else:  # linear weights: unit gain
                p.copy_(r / p.shape[1] ** 0.5)


def model_dir(shape, dtype="float32"):
    """A folder written by HF save_pretrained (cached per test process)."""
    key = (shape, dtype)
    if key in _made:
        return _made[key]
    vocab = 50272 if shape == "pre_ln" else len(json.load(open(os.path.join(tokenizer_dir(), "vocab.json"))))
    cfg = OPTConfig(vocab_size=vocab, max_position_embeddings=64, pad_token_id=1, bos_token_id=2,
                    eos_token_id=2, **SHAPES[shape])
    torch.manual_seed(0)
    m = OPTForCausalLM(cfg).eval()
    randomize(m, seed=1 if shape == "pre_ln" else 2)
    if not cfg.tie_word_embeddings:
        check(not torch.equal(m.lm_head.weight, m.model.decoder.embed_tokens.weight), "lm_head is tied")
    d = os.path.join(TMP, f"{shape}-{dtype}")
    # post_ln is sharded: 100 KB shards hold a few tensors each (the largest, fc1/fc2
    # and the embeddings, are 64 KB in float32).
    m.to(DTYPES[dtype]).save_pretrained(d, max_shard_size="100KB" if shape == "post_ln" else "1GB")
    files = os.listdir(d)
    if shape == "post_ln":
        shards = [f for f in files if f.startswith("model-")]
        check(len(shards) >= 3 and "model.safetensors.index.json" in files, "expected a sharded checkpoint:", files)
        weight_map = json.load(open(os.path.join(d, "model.safetensors.index.json")))["weight_map"]
        check("lm_head.weight" in weight_map, "untied checkpoint without lm_head.weight")
        for f in ("vocab.json", "merges.txt"):
            shutil.copy(os.path.join(tokenizer_dir(), f), d)
    else:
        check("model.safetensors" in files, "expected one model.safetensors:", files)
    _made[key] = d
    return d


def hf_model(d, dtype):
    return OPTForCausalLM.from_pretrained(d, dtype=DTYPES[dtype]).eval()


def sequences(vocab, seed):
    """Token lists of different lengths, each starting with OPT's bos (2)."""
    g = torch.Generator().manual_seed(seed)
    return [[2] + torch.randint(3, vocab, (n - 1,), generator=g).tolist() for n in (21, 14, 6, 2)]


def batch(seqs, side):
    """ids / attention_mask / target_mask [B, S] padded with pad = 1 on `side`;
    every token but a row's first is a target (bora's target_mask convention)."""
    S = max(map(len, seqs))
    ids = torch.ones(len(seqs), S, dtype=torch.long)
    mask = torch.zeros_like(ids)
    offsets = []
    for b, s in enumerate(seqs):
        o = S - len(s) if side == "left" else 0
        ids[b, o:o + len(s)] = torch.tensor(s)
        mask[b, o:o + len(s)] = 1
        offsets.append(o)
    target = mask.clone()
    for b, o in enumerate(offsets):
        target[b, o] = 0
    return ids, mask, target, offsets


def bora(d, inputs, dtype="float32", **opts):
    """Runs opt_logprobs on `inputs` (name -> int64 tensor); returns its tensors."""
    n = next(_calls)
    inp, out = os.path.join(TMP, f"in{n}.safetensors"), os.path.join(TMP, f"out{n}.safetensors")
    save_file({k: v.contiguous() for k, v in inputs.items()}, inp)
    args = [a for k, v in opts.items() for a in (f"--{k}", v)]
    run(TOOL, "--model", d, "--input", inp, "--output", out, "--dtype", dtype, *args)
    return load_file(out)


@torch.no_grad()
def hf_logprobs(model, seqs):
    """HF's log-softmax for each sequence ALONE (no padding): [L, V] float32 each."""
    return [torch.log_softmax(model(torch.tensor([s])).logits[0].float(), -1) for s in seqs]


def bora_logprobs(d, seqs, side, dtype="float32"):
    """bora's full log-probs [L, V] and target NLL [L] (0 at the first token) per
    sequence, from one padded batch."""
    ids, mask, target, offsets = batch(seqs, side)
    out = bora(d, {"ids": ids, "attention_mask": mask, "target_mask": target}, dtype)
    lp, nll = [], []
    for b, (s, o) in enumerate(zip(seqs, offsets)):
        lp.append(out["logprobs"][b, o:o + len(s)])
        nll.append(out["nll"][b, o:o + len(s)])
    return lp, nll


def diffs(seqs, ref, lp, nll):
    """(max |diff| of the full log-probs, max |diff| of the targets' log-probs)."""
    full = max((a - b).abs().max().item() for a, b in zip(ref, lp))
    tgt = 0.0
    for s, r, n in zip(seqs, ref, nll):
        want = r[torch.arange(len(s) - 1), torch.tensor(s[1:])]  # log p(token t | < t)
        check(n[0].item() == 0.0, "the bos got an nll")
        tgt = max(tgt, (-n[1:] - want).abs().max().item())
    return full, tgt


def test_fp32():
    for shape in SHAPES:
        d = model_dir(shape)
        model = hf_model(d, "float32")
        seqs = sequences(model.config.vocab_size, seed=3)
        ref = hf_logprobs(model, seqs)
        top = torch.cat([r.max(-1).values for r in ref]).mean().item()
        check(top > -math.log(model.config.vocab_size) + 3, f"logits too flat to test anything: mean top log p {top:.2f}")
        for side in ("right", "left"):
            full, tgt = diffs(seqs, ref, *bora_logprobs(d, seqs, side))
            print(f"  {shape} float32 {side}-padded: max |log p diff| {full:.2e} (all {model.config.vocab_size} ids), "
                  f"{tgt:.2e} (targets)")
            check(full <= FP32_TOL and tgt <= FP32_TOL, f"{shape} {side}: bora differs from HF by {full:.3g} / {tgt:.3g}")


def variant(src, name, edit_config=None, edit_tensors=None):
    """A copy of model folder `src` with its config.json and/or tensors edited."""
    d = os.path.join(TMP, name)
    shutil.copytree(src, d)
    if edit_config:
        path = os.path.join(d, "config.json")
        cfg = json.load(open(path))
        edit_config(cfg)
        json.dump(cfg, open(path, "w"))
    if edit_tensors:
        path = os.path.join(d, "model.safetensors")
        tensors = load_file(path)
        edit_tensors(tensors)
        save_file(tensors, path, metadata={"format": "pt"})
    return d


def test_tying():
    """transformers' rules for tie_word_embeddings = true at load (modeling_utils
    tie_weights): a file with only lm_head.weight ties embed_tokens to it; a file with
    both ties them when equal and keeps both (with a warning) when they differ."""
    embed = "model.decoder.embed_tokens.weight"
    cases = {
        "head_only": variant(model_dir("pre_ln"), "head_only",
                             edit_tensors=lambda t: t.__setitem__("lm_head.weight", t.pop(embed))),
        "equal_copy": variant(model_dir("pre_ln"), "equal_copy",
                              edit_tensors=lambda t: t.__setitem__("lm_head.weight", t[embed].clone())),
        "tied_but_different": variant(model_dir("post_ln"), "tied_but_different",
                                      edit_config=lambda c: c.__setitem__("tie_word_embeddings", True)),
    }
    for name, d in cases.items():
        model = hf_model(d, "float32")
        shared = model.lm_head.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()
        check(shared == (name != "tied_but_different"), f"{name}: HF's tying is not what this test expects")
        seqs = sequences(model.config.vocab_size, seed=6)
        full, tgt = diffs(seqs, hf_logprobs(model, seqs), *bora_logprobs(d, seqs, "right"))
        print(f"  {name}: HF {'ties' if shared else 'does not tie'} lm_head; max |diff| {full:.2e}")
        check(full <= FP32_TOL and tgt <= FP32_TOL, f"{name}: bora differs from HF by {full:.3g} / {tgt:.3g}")


# Half-precision files. Like with like:
# (a) bora-eval and bora-generate compute in float32 whatever the file holds (the
#     weights are upcast exactly on load); HF from_pretrained(dtype=float32) does the
#     same, so the two agree to float32 rounding: FP32_TOL.
# (b) bora-train's dtype = bfloat16 (LoadOptions) computes in the file's dtype; HF
#     with dtype=<that dtype> too. The two use different kernels and rounding orders,
#     so neither is "right"; the truth is (a). bora must be as close to the truth as
#     HF is: err_bora <= HALF_RATIO * err_hf over every log-prob, and bora and HF
#     within HALF_TOL of each other: an absolute bound on log-probs of size up to
#     ~15, a few units in the last place of the dtype (eps = 2^-10 fp16, 2^-7 bf16)
#     and about 3x the largest difference measured here (8e-3 fp16, 6e-2 bf16).
HALF_TOL = {"float16": 0.025, "bfloat16": 0.2}
HALF_RATIO = 2.0


def test_half():
    for shape in SHAPES:
        for dtype in ("float16", "bfloat16"):
            d = model_dir(shape, dtype)
            st = load_file(os.path.join(d, "model.safetensors") if shape == "pre_ln" else
                           os.path.join(d, sorted(f for f in os.listdir(d) if f.startswith("model-"))[0]))
            check(all(t.dtype == DTYPES[dtype] for t in st.values()), "HF did not write", dtype)
            exact = hf_model(d, "float32")
            seqs = sequences(exact.config.vocab_size, seed=4)
            truth = hf_logprobs(exact, seqs)
            # (a) float32 compute on the half file.
            full, tgt = diffs(seqs, truth, *bora_logprobs(d, seqs, "right"))
            print(f"  {shape} {dtype} file, float32 compute: max |diff| {full:.2e} / {tgt:.2e} (targets)")
            check(full <= FP32_TOL and tgt <= FP32_TOL, f"{shape} {dtype} file: {full:.3g} / {tgt:.3g}")
            # (b) compute in the file's dtype.
            hf_half = hf_logprobs(hf_model(d, dtype), seqs)
            lp, nll = bora_logprobs(d, seqs, "right", dtype)
            err_hf = max((a - b).abs().max().item() for a, b in zip(hf_half, truth))
            err_bora = max((a - b).abs().max().item() for a, b in zip(lp, truth))
            full, tgt = diffs(seqs, hf_half, lp, nll)
            print(f"  {shape} {dtype} compute: |bora - HF| {full:.2e} ({tgt:.2e} targets); vs float32: "
                  f"bora {err_bora:.2e}, HF {err_hf:.2e}")
            check(full <= HALF_TOL[dtype], f"{shape} {dtype}: bora and HF differ by {full:.3g} > {HALF_TOL[dtype]}")
            check(err_bora <= HALF_RATIO * err_hf, f"{shape} {dtype}: bora's error vs float32 {err_bora:.3g} "
                  f"exceeds {HALF_RATIO} x HF's {err_hf:.3g}")


GAP = 1e-4  # smallest top-1 / top-2 logit gap along HF's greedy path (100x fp32 noise)


@torch.no_grad()
def hf_greedy(model, prompt, n):
    out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                         do_sample=False, max_new_tokens=n, eos_token_id=2, pad_token_id=1,
                         output_scores=True, return_dict_in_generate=True)
    ids = out.sequences[0, len(prompt):].tolist()
    gap = min((lambda t: (t[0] - t[1]).item())(s[0].float().topk(2).values) for s in out.scores)
    return ids, gap


def test_generate():
    cases, min_gap = 0, float("inf")
    for shape, dtype in (("pre_ln", "float32"), ("post_ln", "float32"), ("post_ln", "float16")):
        d = model_dir(shape, dtype)
        model = hf_model(d, "float32")  # bora-generate computes in float32
        vocab = model.config.vocab_size
        prompts = [[2]] + [p[:n] for p, n in zip(sequences(vocab, seed=5), (9, 4, 2))]
        for n in (6, 24):
            out = bora(d, {f"prompt.{i}": torch.tensor(p) for i, p in enumerate(prompts)},
                       max_new_tokens=n, stop_id=2)
            for i, p in enumerate(prompts):
                want, gap = hf_greedy(model, p, n)
                check(gap >= GAP, f"{shape}: HF's greedy path has a near tie ({gap:.2g}); choose other prompts")
                min_gap = min(min_gap, gap)
                got = out[f"generated.{i}"].tolist()
                check(got == want, f"{shape} {dtype} prompt {p} +{n}: bora {got} != HF {want}")
                cases += 1
    print(f"  {cases} greedy continuations equal HF's (smallest top-2 logit gap on the way {min_gap:.2g})")
    # bora-generate itself: the folder's tokenizer, the bos, greedy decoding, decoding.
    d = model_dir("post_ln")
    model = hf_model(d, "float32")
    tok = GPT2Tokenizer.from_pretrained(d, bos_token="</s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>")
    # Texts whose continuations are whole characters (byte tokens can split one).
    for text in ("Once upon a time, there was", "Hello world"):
        prompt = [2] + tok.encode(text)
        want, gap = hf_greedy(model, prompt, 16)
        check(gap >= GAP and min(want) >= 4 and "\ufffd" not in tok.decode(want),
              "HF's continuation has a near tie, a special token or a partial character:", want)
        p = run("bora-generate", "--model", d, "--prompt", text, "--greedy", "true", "--max_new_tokens", 16)
        got = p.stdout[:-1] if p.stdout.endswith("\n") else p.stdout
        check(got == text + tok.decode(want), f"bora-generate printed {got!r}, HF continues with {tok.decode(want)!r}")
    print("  bora-generate --greedy prints HF's continuation")


@torch.no_grad()
def test_eval():
    """bora-eval's per-task perplexity (Evaluator: right-padded micro-batches,
    target_nll on tokens j >= prompt_len) vs HF's on the same sequences read with
    h5py. bora-eval prints 3 decimals: tolerance 5e-4 + 1e-5 relative."""
    import h5py
    d = model_dir("post_ln")
    corpus = os.path.join(TMP, "corpus")
    os.makedirs(corpus)
    for name, src in (("pets", "pets"), ("conscience", "ru/conscience"), ("translate-me", "translate-me")):
        shutil.copy(os.path.join("/usr/share/games/fortunes", src), os.path.join(corpus, name))
    data = os.path.join(TMP, "data")
    run("data_prep", "--input", corpus, "--tokenizer", d, "--min_docs", 0, "--max_docs", 0, "--max_tasks", 0,
        "--min_text_chars", 0, "--max_len", 64, "--threads", 1, "--out", data)
    p = run("bora-eval", "--model", d, "--data", data, "--split", "validation", "--eval_batch", 5)
    rows = {c[1].strip(): c for c in (line.split("|") for line in p.stdout.splitlines()) if len(c) == 5}
    model = hf_model(d, "float32")
    manifest = json.load(open(os.path.join(data, "manifest.json")))
    nlls = []
    for t in manifest["tasks"]:
        with h5py.File(os.path.join(data, t["shard"]), "r") as f:
            g = f["tasks"][t["name"]]["validation"]
            tokens, offsets, plen = g["tokens"][:].astype("int64"), g["offsets"][:].astype("int64"), g["prompt_len"][:]
        total, count = 0.0, 0
        for i in range(len(plen)):
            s = tokens[offsets[i]:offsets[i + 1]].tolist()
            lp = torch.log_softmax(model(torch.tensor([s])).logits[0].double(), -1)
            total -= sum(lp[j - 1, s[j]].item() for j in range(plen[i], len(s)))
            count += len(s) - plen[i]
        nlls.append(total / count)
        want, got = math.exp(total / count), float(rows[t["name"]][3])
        check(int(rows[t["name"]][2]) == count, f"{t['name']}: bora-eval counts {rows[t['name']][2]} tokens, h5py {count}")
        check(abs(got - want) <= 5e-4 + 1e-5 * want, f"{t['name']}: bora-eval perplexity {got}, HF {want:.4f}")
        print(f"  {t['name']}: {count} tokens, perplexity bora-eval {got:.3f}, HF {want:.4f}")
    macro = math.exp(sum(nlls) / len(nlls))
    got = float(rows["**overall (macro)**"][3])
    check(abs(got - macro) <= 5e-4 + 1e-5 * macro, f"macro perplexity: bora-eval {got}, HF {macro:.4f}")


if __name__ == "__main__":
    groups = {"fp32": [test_fp32, test_tying], "half": [test_half], "generate": [test_generate], "eval": [test_eval]}
    main(*[t for a in (sys.argv[1:] or groups) for t in groups[a]])
