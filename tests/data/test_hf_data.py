"""A data_prep dataset read by h5py, by bora's DatasetReader and rebuilt with
tiktoken (ctest label hf).

The corpus: a few Debian fortune files (English, German, Russian, Czech, Polish),
copied under names that exercise task-name normalisation (upper case, '.', non-ASCII).
data_prep writes it with GPT-2's tokenizer, max_len 64 (so some sequences are cut),
256-token chunks (so tasks span several chunks) and 2 tasks per shard (several shards).

Checks:
  files     every shard's size is the manifest's; h5py opens it; its attributes, task
            groups, per-split counts and dataset layout (dtype, chunks, deflate 6,
            Fletcher32) are what docs/data-format.md and the manifest say
  reader    bora's reader (test tool dataset_dump: read(i) and read_range) hands out
            exactly h5py's tokens, prompt_len and doc_index, sequence by sequence
  content   every sequence is [bos] + tiktoken(" [task] " + task) + tiktoken(" [text]
            " + document) + [eos] cut to 64, with the documents split out of the files
            here; splits have the largest-remainder sizes and cover each document once
  checksum  a byte flipped inside a compressed chunk: h5py's read fails (Fletcher32),
            and so does bora's, with exit code 4 naming the shard
  hashes    the manifest's XXH3-64 of each shard equals the xxhash package's, and bora's
            reader verifies it too (dataset_dump --verify_hash true)
"""
import json
import os
import shutil

import h5py
import numpy as np
import tiktoken
import xxhash

from bora_testing import TMP, check, gpt2_files, main, run, test_tool

ROOT = "/usr/share/games/fortunes"
# input file name -> fortune file; the task is the name lower-cased without '.'.
CORPUS = {"Conscience": "ru/conscience", "Plätzchen.de": "de/plaetzchen", "truth_and_lie": "ru/truth_and_lie",
          "translate-me": "translate-me", "wiki.quote": "cs/wikiquote", "IRC": "pl/irc", "pets": "pets"}
MAX_LEN, CHUNK, EOT = 64, 256, 50256
SPLITS = ("train", "validation", "test")
FRACTIONS = (0.5, 0.25, 0.25)
_state = {}


def dataset():
    """(folder, manifest) of the dataset, made once per process."""
    if "dir" not in _state:
        corpus = os.path.join(TMP, "corpus")
        os.makedirs(corpus)
        for name, src in CORPUS.items():
            shutil.copy(os.path.join(ROOT, src), os.path.join(corpus, name))
        vocab, merges = gpt2_files()
        out = os.path.join(TMP, "ds")
        run("data_prep", "--input", corpus, "--vocab", vocab, "--merges", merges, "--min_docs", 0, "--max_docs", 0,
            "--max_tasks", 0, "--min_text_chars", 0, "--max_len", MAX_LEN, "--chunk_tokens", CHUNK,
            "--tasks_per_shard", 2, "--threads", 1, "--out", out)
        _state["dir"] = out
        _state["manifest"] = json.load(open(os.path.join(out, "manifest.json"), encoding="utf-8"))
    return _state["dir"], _state["manifest"]


def documents(path):
    """The documents of a fortune file as data_prep's folder reader defines them
    (written here from docs/data-format.md): text between lines equal to '%', without
    the line break before the delimiter; empty documents dropped."""
    def cut_cr(b):
        return b[:-1] if b.endswith(b"\r") else b

    docs, cur = [], []
    for line in open(path, "rb").read().split(b"\n"):
        if cut_cr(line) == b"%":
            docs.append(cut_cr(b"\n".join(cur)))  # the "\n" before the delimiter is not joined
            cur = []
        else:
            cur.append(line)
    last = b"\n".join(cur)  # to the end of the file, minus one final line break
    docs.append(cut_cr(last[:-1] if last.endswith(b"\n") else last))
    return [d.decode("utf-8") for d in docs if d]


def split_sizes(n):
    """Largest remainder: floors, then the leftovers to the largest fractional parts
    (ties to the earlier split)."""
    sizes = [int(n * f) for f in FRACTIONS]
    order = sorted(range(3), key=lambda k: (-(n * FRACTIONS[k] - sizes[k]), k))
    for k in order[:n - sum(sizes)]:
        sizes[k] += 1
    return sizes


def test_files():
    d, m = dataset()
    check(len(m["shards"]) >= 3, "expected several shards:", m["shards"])
    check([t["name"] for t in m["tasks"]] == sorted(n.lower().replace(".", "") for n in CORPUS),
          "task names:", [t["name"] for t in m["tasks"]])
    tasks = {t["name"]: t for t in m["tasks"]}
    tok = m["tokenizer"]
    most_chunks = 0
    for k, shard in enumerate(m["shards"]):
        path = os.path.join(d, shard["file"])
        check(os.path.getsize(path) == shard["bytes"], path, "size differs from the manifest's")
        with open(path, "rb") as f:
            digest = xxhash.xxh3_64(f.read()).hexdigest()
        check(digest == shard["xxh3"], f"{path}: XXH3-64 {digest}, the manifest says {shard['xxh3']}")
        with h5py.File(path, "r") as f:
            a = f.attrs
            want = {"magic": "BORA-DATASET", "format_version": 1, "shard_index": k, "num_tasks": len(shard["tasks"]),
                    "tokenizer_identity": tok["identity"], "vocab_size": tok["vocab_size"], "bos_id": tok["bos_id"],
                    "eos_id": tok["eos_id"], "max_len": m["max_len"], "token_dtype": m["token_dtype"],
                    "chunk_tokens": m["chunk_tokens"], "created_by": "bora data_prep"}
            for key, value in want.items():
                got = a[key]
                got = got.decode() if isinstance(got, bytes) else got.item() if hasattr(got, "item") else got
                check(got == value, f"{path}: attribute {key} = {got!r}, expected {value!r}")
            check(sorted(f["tasks"].keys()) == sorted(shard["tasks"]), path, "holds", list(f["tasks"].keys()))
            for name in shard["tasks"]:
                g, t = f["tasks"][name], tasks[name]
                for key in ("name", "source_name", "rows", "documents"):
                    got = g.attrs[key]
                    got = got.decode() if isinstance(got, bytes) else got
                    check(got == t[key], f"{path} {name}: {key} = {got!r}, manifest {t[key]!r}")
                check(g.attrs["task_index"] == m["tasks"].index(t), name, "task_index")
                for s in SPLITS:
                    sg, c = g[s], t[s]
                    tokens, offsets, plen = sg["tokens"][:], sg["offsets"][:], sg["prompt_len"][:]
                    lengths = np.diff(offsets.astype(np.int64))
                    counts = {"num_sequences": len(plen), "num_tokens": len(tokens),
                              "num_target_tokens": int((lengths - plen).sum())}
                    for key, value in counts.items():
                        check(sg.attrs[key] == value, f"{name}/{s}: {key} attribute {sg.attrs[key]} != {value} in the data")
                    check(c["sequences"] == len(plen) and c["tokens"] == len(tokens) and c["target_tokens"] ==
                          counts["num_target_tokens"] and c["truncated"] == sg.attrs["num_truncated"],
                          f"{name}/{s}: manifest counts {c} disagree with the shard")
                    check(offsets[0] == 0 and offsets[-1] == len(tokens), name, s, "offsets")
                    check(len(sg["doc_index"]) == len(plen), name, s, "doc_index length")
                    for ds, dtype in (("tokens", "<u2"), ("offsets", "<u8"), ("prompt_len", "<i4"), ("doc_index", "<i8")):
                        x = sg[ds]
                        check(x.dtype == np.dtype(dtype), f"{name}/{s}/{ds}: dtype {x.dtype}, expected {dtype}")
                        if x.shape[0] == 0:
                            check(x.chunks is None, f"{name}/{s}/{ds}: an empty dataset should be contiguous")
                            continue
                        most_chunks = max(most_chunks, x.id.get_num_chunks())
                        check(x.chunks == (min(CHUNK, x.shape[0]),) and x.compression == "gzip" and
                              x.compression_opts == 6 and x.fletcher32,
                              f"{name}/{s}/{ds}: layout {x.chunks} {x.compression} {x.compression_opts} {x.fletcher32}")
    check(most_chunks >= 3, "no dataset spans several chunks; lower CHUNK")
    print(f"  {len(m['shards'])} shards, {len(m['tasks'])} tasks (up to {most_chunks} chunks a dataset): "
          "attributes, counts and layout as documented")


def test_reader():
    d, m = dataset()
    out = os.path.join(TMP, "dump.json")
    run(test_tool("dataset_dump"), "--data", d, "--out", out, "--verify_hash", "true")
    dump = json.load(open(out, encoding="utf-8"))
    check([t["name"] for t in dump["tasks"]] == [t["name"] for t in m["tasks"]], "bora's reader lists other tasks")
    n = 0
    for t in dump["tasks"]:
        with h5py.File(os.path.join(d, t["shard"]), "r") as f:
            for s in SPLITS:
                sg, b = f["tasks"][t["name"]][s], t["splits"][s]
                tokens, offsets = sg["tokens"][:].astype(np.int64), sg["offsets"][:].astype(np.int64)
                plen, doc = sg["prompt_len"][:].tolist(), sg["doc_index"][:].tolist()
                check(len(b["tokens"]) == len(plen), t["name"], s, "number of sequences differs")
                for i in range(len(plen)):
                    want = tokens[offsets[i]:offsets[i + 1]].tolist()
                    check(b["tokens"][i] == want, f"{t['name']}/{s}/{i}: bora reads {b['tokens'][i]}, h5py {want}")
                    check(b["length"][i] == len(want), f"{t['name']}/{s}/{i}: length")
                    n += 1
                check(b["prompt_len"] == plen, t["name"], s, "prompt_len: bora", b["prompt_len"], "h5py", plen)
                check(b["doc_index"] == doc, t["name"], s, "doc_index: bora", b["doc_index"], "h5py", doc)
                check(b["range_tokens"] == tokens.tolist() and b["range_offsets"] == offsets.tolist() and
                      b["range_prompt_len"] == plen, t["name"], s, "read_range differs from h5py")
    print(f"  {n} sequences: bora's reader == h5py (tokens, prompt_len, doc_index, read_range)")


def test_content():
    d, m = dataset()
    enc = tiktoken.get_encoding("gpt2")
    check(m["tokenizer"]["bos_id"] == EOT == m["tokenizer"]["eos_id"], "GPT-2's bos/eos is <|endoftext|>")
    n = cut = 0
    for source, fortune in CORPUS.items():
        task = source.lower().replace(".", "")
        docs = documents(os.path.join(ROOT, fortune))
        t = next(x for x in m["tasks"] if x["name"] == task)
        check(t["source_name"] == source and t["documents"] == len(docs),
              f"{task}: {t['documents']} documents, this parse finds {len(docs)}")
        prefix = [EOT] + enc.encode(f" [task] {task}", disallowed_special=())
        seen = []
        with h5py.File(os.path.join(d, t["shard"]), "r") as f:
            for s, size in zip(SPLITS, split_sizes(len(docs))):
                sg = f["tasks"][task][s]
                tokens, offsets = sg["tokens"][:].astype(np.int64), sg["offsets"][:].astype(np.int64)
                plen, doc = sg["prompt_len"][:], sg["doc_index"][:]
                check(len(plen) == size, f"{task}/{s}: {len(plen)} sequences, largest remainder gives {size}")
                truncated = 0
                for i, di in enumerate(doc):
                    full = prefix + enc.encode(f" [text] {docs[di]}", disallowed_special=()) + [EOT]
                    got = tokens[offsets[i]:offsets[i + 1]].tolist()
                    check(got == full[:MAX_LEN], f"{task}/{s}/{i} (document {di}): data_prep {got} != tiktoken {full[:MAX_LEN]}")
                    check(plen[i] == len(prefix), f"{task}/{s}/{i}: prompt_len {plen[i]} != {len(prefix)}")
                    truncated += len(full) > MAX_LEN
                    n += 1
                check(sg.attrs["num_truncated"] == truncated, f"{task}/{s}: num_truncated")
                cut += truncated
                seen += doc.tolist()
        check(sorted(seen) == list(range(len(docs))), f"{task}: the splits do not hold each document once: {seen}")
    check(cut > 0 and cut < n, "the corpus should have some cut sequences:", cut, "of", n)
    print(f"  {n} sequences ({cut} cut at {MAX_LEN}) equal tiktoken's encoding of the documents")


def test_checksum():
    d, m = dataset()
    bad = os.path.join(TMP, "bad")
    shutil.copytree(d, bad)
    task = max(m["tasks"], key=lambda t: t["train"]["tokens"])
    path = os.path.join(bad, task["shard"])
    with h5py.File(path, "r") as f:
        info = f["tasks"][task["name"]]["train"]["tokens"].id.get_chunk_info(0)
    with open(path, "r+b") as f:
        f.seek(info.byte_offset + info.size // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0x10]))
    try:
        with h5py.File(path, "r") as f:
            f["tasks"][task["name"]]["train"]["tokens"][:]
        check(False, "h5py read a corrupted chunk without an error")
    except OSError as e:
        check("checksum" in str(e).lower() or "filter" in str(e).lower(), "h5py failed otherwise:", e)
    p = run(test_tool("dataset_dump"), "--data", bad, "--out", os.path.join(TMP, "bad.json"), expect=4)
    msg = p.stderr.strip()
    check(len(msg.splitlines()) == 1 and task["shard"] in msg, "bora's error should be one line naming the shard:", msg)
    run(test_tool("dataset_dump"), "--data", bad, "--out", os.path.join(TMP, "bad.json"), "--verify_hash", "true", expect=4)
    print(f"  a flipped byte in {task['shard']}: h5py and bora both refuse it; bora: {msg}")


if __name__ == "__main__":
    main(test_files, test_reader, test_content, test_checksum)
