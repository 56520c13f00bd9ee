"""The reference side of bench_tokenizer: times tiktoken's "gpt2" encoding and HF
tokenizers' byte-level BPE (from vocab.json + merges.txt) on the same documents, one
thread each, one call per document, around the encode calls only (not the start-up,
not the reading). Prints one JSON line,
  {"tiktoken": {"version", "passes": [{"seconds", "tokens"}]}, "hf": {...}},
and writes each library's ids of the first pass to <ids_prefix>.<library>.ids:
little-endian int32, per document its id count and then its ids, for bench_tokenizer
to compare with bora's.

    python tokenizer_ref_bench.py <docs.jsonl> <gpt2 folder> <ids_prefix> [passes]

tiktoken has no cache, so its passes cost the same; HF keeps a word cache, which the
first pass fills (cold) and later passes find filled (warm).
"""
import json
import os
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import tiktoken  # noqa: E402
import tokenizers  # noqa: E402
from tokenizers import Tokenizer, models, pre_tokenizers  # noqa: E402


def time_passes(encode, docs, passes, ids_path):
    out = []
    for p in range(passes):
        all_ids = []
        t0 = time.perf_counter()
        for d in docs:
            all_ids.append(encode(d))
        seconds = time.perf_counter() - t0
        out.append({"seconds": seconds, "tokens": sum(map(len, all_ids))})
        if p == 0:
            flat = []
            for ids in all_ids:
                flat.append(len(ids))
                flat.extend(ids)
            np.asarray(flat, dtype="<i4").tofile(ids_path)
    return out


def main():
    if len(sys.argv) < 4:
        sys.exit("usage: tokenizer_ref_bench.py <docs.jsonl> <gpt2 folder> <ids_prefix> [passes]")
    docs_path, gpt2, prefix = sys.argv[1:4]
    passes = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    with open(docs_path, encoding="utf-8") as f:
        docs = [json.loads(line) for line in f]
    tk = tiktoken.get_encoding("gpt2")
    hf = Tokenizer(models.BPE.from_file(os.path.join(gpt2, "vocab.json"), os.path.join(gpt2, "merges.txt")))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    result = {
        "tiktoken": {"version": tiktoken.__version__,
                     "passes": time_passes(tk.encode_ordinary, docs, passes, prefix + ".tiktoken.ids")},
        "hf": {"version": tokenizers.__version__,
               "passes": time_passes(lambda d: hf.encode(d).ids, docs, passes, prefix + ".hf.ids")},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
