#!/usr/bin/env python3
"""GPT-2's tokenizer files, derived from the ranks a pinned PyPI package ships.

    gpt2_bpe.py <gpt2.tiktoken> <out dir>

Input: `whisper/assets/gpt2.tiktoken` from openai-whisper (one line per token:
base64 of its bytes, space, rank). Output in <out dir>:

  vocab.json    token -> id, tokens spelled in GPT-2's byte-to-unicode alphabet
  merges.txt    "#version: 0.2", then one merge "left right" per line, by rank
  tiktoken/     the two files again under the names tiktoken's cache gives
                OpenAI's URLs, so that tiktoken.get_encoding("gpt2") runs offline
                (TIKTOKEN_CACHE_DIR=<out dir>/tiktoken) and checks them itself

Why the derivation is exact: byte-level BPE ranks tokens by when they were merged.
Ranks 0..255 are the single bytes; a token of rank r >= 256 is the merge of the
two parts that BPE on its own bytes, allowed only merges of rank < r, leaves. So
the merge list is the ranks read in order. The result is checked byte for byte:
its SHA-256 must equal the digests tiktoken pins for OpenAI's published
encoder.json and vocab.bpe (tiktoken_ext/openai_public.py), which are these files.
"""
import base64
import hashlib
import json
import os
import sys

# OpenAI's files and their SHA-256 (as pinned in tiktoken_ext/openai_public.py).
VOCAB_URL = "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json"
MERGES_URL = "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe"
VOCAB_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
MERGES_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
END_OF_TEXT = "<|endoftext|>"


def byte_alphabet():
    """GPT-2's bijection bytes -> printable code points (so that a token is a str)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def read_ranks(path):
    ranks = {}
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    if sorted(ranks.values()) != list(range(len(ranks))):
        sys.exit(f"gpt2_bpe.py: {path}: ranks are not 0..{len(ranks) - 1}")
    return ranks


def split_by_lower_ranks(token, limit, ranks):
    """BPE on `token`'s bytes using only merges of rank < limit."""
    parts = [bytes([b]) for b in token]
    while len(parts) > 1:
        best = min(((ranks.get(parts[i] + parts[i + 1], limit), i) for i in range(len(parts) - 1)))
        if best[0] >= limit:
            break
        i = best[1]
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    return parts


def derive(ranks):
    alphabet = byte_alphabet()
    spell = lambda b: "".join(alphabet[x] for x in b)
    by_rank = sorted(ranks, key=ranks.get)
    merges = []
    for token in by_rank[256:]:
        parts = split_by_lower_ranks(token, ranks[token], ranks)
        if len(parts) != 2:
            sys.exit(f"gpt2_bpe.py: token {token!r} (rank {ranks[token]}) is not one merge of lower ranks")
        merges.append(spell(parts[0]) + " " + spell(parts[1]))
    vocab = {spell(t): ranks[t] for t in by_rank}
    vocab[END_OF_TEXT] = len(by_rank)
    # The layouts of OpenAI's files: json.dumps defaults, and a trailing newline.
    return json.dumps(vocab).encode(), ("#version: 0.2\n" + "\n".join(merges) + "\n").encode()


def write(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.split("\n\n")[1])
    src, out = sys.argv[1], sys.argv[2]
    vocab, merges = derive(read_ranks(src))
    for name, data, want in (("vocab.json", vocab, VOCAB_SHA256), ("merges.txt", merges, MERGES_SHA256)):
        got = hashlib.sha256(data).hexdigest()
        if got != want:
            sys.exit(f"gpt2_bpe.py: derived {name} has SHA-256 {got}, OpenAI's file has {want}")
    os.makedirs(os.path.join(out, "tiktoken"), exist_ok=True)
    write(os.path.join(out, "vocab.json"), vocab)
    write(os.path.join(out, "merges.txt"), merges)
    # tiktoken's cache names a file by the SHA-1 of its URL (tiktoken/load.py).
    for url, data in ((VOCAB_URL, vocab), (MERGES_URL, merges)):
        write(os.path.join(out, "tiktoken", hashlib.sha1(url.encode()).hexdigest()), data)


if __name__ == "__main__":
    main()
