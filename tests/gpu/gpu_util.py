"""Shared by the GPU tests (tests/gpu, label gpu) and the GPU benchmark (bench/gpu).

Nothing here needs files from outside the checkout: a GPU host has no network and
no .deps/gpt2, so the tokenizer is a byte-level one written here (OPT's four special
tokens first, then the 256 byte characters of GPT-2's bytes_to_unicode, no merges:
one token per byte), models are random and written by transformers'
save_pretrained, and datasets are made by bora's data_prep from random words.

The device under test comes from BORA_TEST_DEVICE: cuda (the default) or cpu (the
dry run of bench/gpu/run.sh --cpu runs the same code on the CPU). With cuda
requested and no CUDA device, a test prints SKIP and exits 77 (ctest's
SKIP_RETURN_CODE).
"""
import json
import os
import random
import subprocess
import sys

from bora_testing import run

SKIP = 77


def device():
    """'cuda' or 'cpu' (BORA_TEST_DEVICE); exits 77 when CUDA is wanted but absent."""
    want = os.environ.get("BORA_TEST_DEVICE", "cuda") or "cuda"
    if want not in ("cuda", "cpu"):
        sys.exit(f"BORA_TEST_DEVICE must be cuda or cpu, got {want!r}")
    if want == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("SKIP: no CUDA device (BORA_TEST_DEVICE=cpu runs this test on the CPU)")
            sys.exit(SKIP)
    return want


def bytes_to_unicode():
    """GPT-2's byte -> printable character map (openai/gpt-2 encoder.py)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def write_byte_tokenizer(folder):
    """vocab.json + merges.txt of a byte-level BPE without merges: <s> <pad> </s>
    <unk> = 0..3 (OPT's ids: bos = eos = 2, pad = 1), then one id per byte. Returns
    the vocabulary size (260)."""
    os.makedirs(folder, exist_ok=True)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for b, ch in sorted(bytes_to_unicode().items()):
        vocab[ch] = 4 + b
    with open(os.path.join(folder, "vocab.json"), "w") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(folder, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n")
    return len(vocab)


# OPT shapes by name: the real ones (vocabulary 50272, 2048 positions) and tiny
# stand-ins of the same kinds for the dry run and the tests.
SHAPES = {
    "opt-350m": dict(hidden_size=1024, num_attention_heads=16, num_hidden_layers=24, ffn_dim=4096,
                     word_embed_proj_dim=512, do_layer_norm_before=False, vocab_size=50272,
                     max_position_embeddings=2048),
    "opt-1.3b": dict(hidden_size=2048, num_attention_heads=32, num_hidden_layers=24, ffn_dim=8192,
                     word_embed_proj_dim=2048, do_layer_norm_before=True, vocab_size=50272,
                     max_position_embeddings=2048),
    "tiny-350m": dict(hidden_size=64, num_attention_heads=4, num_hidden_layers=2, ffn_dim=256,
                      word_embed_proj_dim=32, do_layer_norm_before=False, vocab_size=512,
                      max_position_embeddings=256),
    "tiny-1.3b": dict(hidden_size=64, num_attention_heads=4, num_hidden_layers=2, ffn_dim=256,
                      word_embed_proj_dim=64, do_layer_norm_before=True, vocab_size=512,
                      max_position_embeddings=256),
}


def make_opt(folder, shape, dtype="float32", seed=0, build_device="cpu", randomize=None, **config):
    """A random OPT of SHAPES[shape] written by transformers' save_pretrained in
    `dtype`, with the byte tokenizer beside it. `build_device` = cuda initialises
    the weights on the GPU (an opt-1.3b in seconds). `randomize(model)` may replace
    HF's init (the parity tests use test_hf_opt's O(1) weights); `config` overrides
    OPTConfig fields (init_std, ...)."""
    import torch
    from transformers import OPTConfig, OPTForCausalLM

    dt = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    cfg = OPTConfig(pad_token_id=1, bos_token_id=2, eos_token_id=2, dropout=0.0, attention_dropout=0.0,
                    **dict(SHAPES[shape], **config))
    torch.manual_seed(seed)
    with torch.device(build_device):
        model = OPTForCausalLM(cfg)
    if randomize:
        randomize(model)
    model.to(dt).save_pretrained(folder)
    write_byte_tokenizer(folder)
    del model
    return folder


WORDS = ("the of and to in is was for on that with as by at from his her an which have are this be not "
         "had were or it its their one all but has been they who would more also can time first after "
         "two other new into may some only when year could over most state made about many then").split()


def write_corpus(path, tasks, docs_per_task, chars, seed=0):
    """A JSON Lines corpus: tasks t0000.. with docs_per_task documents of about
    `chars` characters each (random words; one byte = one token here)."""
    rng = random.Random(seed)
    with open(path, "w") as f:
        for t in range(tasks):
            for _ in range(docs_per_task):
                words, n = [], 0
                while n < chars:
                    w = rng.choice(WORDS)
                    words.append(w)
                    n += len(w) + 1
                f.write(json.dumps({"task": f"t{t:04d}", "text": " ".join(words)}) + "\n")
    return path


def make_dataset(model_dir, out, tasks, docs_per_task, seq_len, split=(0.8, 0.1, 0.1), threads=1, seed=0):
    """A data_prep dataset of `tasks` tasks whose sequences all have seq_len tokens
    (documents longer than that are cut to it)."""
    corpus = write_corpus(out + ".jsonl", tasks, docs_per_task, chars=seq_len + 64, seed=seed)
    run("data_prep", "--input", corpus, "--tokenizer", model_dir, "--out", out, "--min_docs", 0, "--max_docs", 0,
        "--max_tasks", 0, "--min_text_chars", 0, "--max_len", seq_len, "--threads", threads, "--progress", "false",
        "--split_fractions", ",".join(map(str, split)), "--overwrite", "true")
    return out


def task_names(data):
    with open(os.path.join(data, "manifest.json")) as f:
        return [t["name"] for t in json.load(f)["tasks"]]
