"""bora's GPT-2 tokenizer against the encoders users run: tiktoken's "gpt2" encoding
(OpenAI's own encoder, THE reference) and HF tokenizers' byte-level BPE built from
.deps/gpt2/vocab.json + merges.txt (ByteLevel pre-tokenizer, no prefix space).

    test_tokenizer_reference.py <tokenizer_probe> texts|unicode

texts:   the fortunes of every installed language, hand-made hard cases and every
         vocabulary token in context (tests/model/tokenizer_cases.h): bora's ids must
         equal tiktoken's, and its ids and pre-tokens HF's.
unicode: the class (letter \\p{L}, number \\p{N}, white space \\s, other) of every
         Unicode scalar value as bora's pre-tokenizer shows it must equal the class that
         tiktoken's regex engine gives (Rust regex crate tables, probed per code point
         as src/model/gen_unicode_tables.py does); then a sweep of the code points in
         context, compared like the texts.

tiktoken does not show its pre-tokens, only ids, and a class difference seldom changes
ids (BPE rarely merges across the boundary it moves), so pre-tokens are compared with
HF's, whose classes are tiktoken's (checked per code point).

bora follows tiktoken where tiktoken and HF disagree. They agree everywhere we looked
(tiktoken 0.14.0, tokenizers 0.23.2): Rust's regex crate and HF's Oniguruma put the same
code points in \\p{L}, \\p{N} and \\s (both Unicode 16.0; \\s is White_Space, which has
U+0085 and not U+FEFF), and the ids of every text here are the same. The sets below
document that; the test asserts the observed disagreements are exactly these, so that
a change in either library is noticed (then list what differs, and why, here).
"""
import json
import os
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")  # HF tokenizers on one core, like bora here
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import tiktoken  # noqa: E402
from tokenizers import Regex, Tokenizer, models, pre_tokenizers  # noqa: E402

from bora_testing import SOURCE, Failure, check, gpt2_files, main, run, scratch  # noqa: E402

sys.path.insert(0, os.path.join(SOURCE, "src", "model"))
from gen_unicode_tables import CLASSES, OTHER, scalar_values, tiktoken_classes  # noqa: E402

# Per set of texts, the documents (by source) whose ids differ between tiktoken and HF.
KNOWN_TIKTOKEN_HF_DIFFERENCES = {"fortunes": set(), "cases": set(), "vocabulary": set(), "sweep": set()}
# Code points whose class differs between tiktoken's regex engine and Oniguruma.
KNOWN_CLASS_DIFFERENCES = {}
CLASS_NAMES = {0: "other", 1: "letter", 2: "number", 3: "white space"}

PROBE = sys.argv[1] if len(sys.argv) > 1 else ""
PART = sys.argv[2] if len(sys.argv) > 2 else ""


def references():
    vocab, merges = gpt2_files()
    tk = tiktoken.get_encoding("gpt2")
    hf = Tokenizer(models.BPE.from_file(vocab, merges))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    return tk, hf


def bora(texts):
    """bora's documents: [{"source", "text", "ids", "pieces"}] from tokenizer_probe."""
    out = scratch(f"{texts}.jsonl")
    run(PROBE, "--texts", texts, "--out", out)
    with open(out, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def show_ids(ids, k, unit):
    """The whole sequence when short, else a window around position k."""
    if len(ids) <= 64:
        return f"{ids} ({len(ids)} {unit})"
    lo = max(0, k - 8)
    return (f"[{'... ' if lo else ''}{' '.join(map(str, ids[lo:k + 24]))}"
            f"{' ...' if k + 24 < len(ids) else ''}] ({len(ids)} {unit})")


def first_difference(a, b):
    k = 0
    while k < len(a) and k < len(b) and a[k] == b[k]:
        k += 1
    return k


def mismatch(i, doc, what, name_a, a, name_b, b, offset_of):
    """The failure message: the document, the first differing position (and the byte
    offset where the text differs, from `offset_of(position)`), both sequences."""
    k = first_difference(a, b)
    unit = "ids" if what == "ids" else "pre-tokens"
    text = doc["text"]
    raw = text.encode()
    off = offset_of(k)
    return (f"{what} differ in document {i} ({doc['source']}), {len(raw)} bytes: "
            f"{text[:300]!r}{'...' if len(text) > 300 else ''}\n"
            f"  first difference at position {k}, byte {off} of the text: "
            f"{raw[off:off + 40].decode(errors='replace')!r}\n"
            f"  {name_a + ':':10}{show_ids(a, k, unit)}\n  {name_b + ':':10}{show_ids(b, k, unit)}")


def compare(name, docs):
    """bora == tiktoken on every document; bora == HF (ids and pre-tokens) on every
    document where tiktoken and HF agree; the documents where they do not are exactly
    the known ones."""
    tk, hf = references()
    texts = [d["text"] for d in docs]
    t0 = time.time()
    tk_ids = [tk.encode_ordinary(t) for t in texts]
    t1 = time.time()
    hf_ids = [e.ids for e in hf.encode_batch(texts)]
    t2 = time.time()
    hf_pieces = [[len(p) for p, _ in hf.pre_tokenizer.pre_tokenize_str(t)] for t in texts]
    t3 = time.time()
    differ = set()
    for i, d in enumerate(docs):
        def id_offset(k):  # bytes of the common prefix of ids
            return len(tk.decode_bytes(tk_ids[i][:k]))

        def piece_offset(k):
            return sum(hf_pieces[i][:k])

        if d["ids"] != tk_ids[i]:
            raise Failure(mismatch(i, d, "ids", "bora", d["ids"], "tiktoken", tk_ids[i], id_offset))
        if tk_ids[i] != hf_ids[i]:
            differ.add(d["source"])
            continue
        if d["ids"] != hf_ids[i]:
            raise Failure(mismatch(i, d, "ids", "bora", d["ids"], "HF", hf_ids[i], id_offset))
        if d["pieces"] != hf_pieces[i]:
            raise Failure(mismatch(i, d, "pre-token byte lengths", "bora", d["pieces"], "HF", hf_pieces[i],
                                   piece_offset))
    known = KNOWN_TIKTOKEN_HF_DIFFERENCES[name]
    check(differ == known, f"{name}: tiktoken and HF tokenizers now disagree on {sorted(differ - known)[:20]} "
          f"and agree on the known {sorted(known - differ)[:20]}: update KNOWN_TIKTOKEN_HF_DIFFERENCES")
    nbytes = sum(len(t.encode()) for t in texts)
    tokens = sum(map(len, tk_ids))
    print(f"  {name}: {len(docs)} documents, {nbytes} bytes, {tokens} tokens: bora == tiktoken "
          f"everywhere, == HF (ids and {sum(map(len, hf_pieces))} pre-tokens) on the "
          f"{len(docs) - len(differ)} where HF agrees "
          f"(tiktoken {t1 - t0:.1f} s, HF {t2 - t1:.1f} s, HF pre-tokenizer {t3 - t2:.1f} s)")


def test_fortunes():
    docs = bora("fortunes")
    folders = {d["source"].split("/")[0] if "/" in d["source"] else "." for d in docs}
    present = {n for n in os.listdir("/usr/share/games/fortunes")
               if os.path.isdir(os.path.join("/usr/share/games/fortunes", n))}
    check(sum(len(d["text"].encode()) for d in docs) >= 1 << 20,
          "the fortunes sample is under 1 MB: are the fortunes packages installed (launch/install-deps.sh)?")
    check(len(folders) >= 10, f"documents from only {sorted(folders)}; expected English and 9 other folders")
    print(f"  languages: top level + {sorted(folders - {'.'})} (folders present: {sorted(present)})")
    compare("fortunes", docs)


def test_hand_made_cases():
    compare("cases", bora("cases"))


def test_vocabulary_in_context():
    compare("vocabulary", bora("vocabulary"))


def runs_to_classes(runs):
    cls = {}
    for first, last, c in runs:
        for cp in range(first, last + 1):
            cls[cp] = c
    return cls


def describe(cp):
    import unicodedata
    return f"U+{cp:04X} {unicodedata.name(chr(cp), '(no name in Python ' + unicodedata.unidata_version + ')')}"


def oniguruma_classes(cps):
    """code point -> class as HF tokenizers' Oniguruma matches \\p{L}, \\p{N}, \\s."""
    text = "".join(map(chr, cps))
    cls = dict.fromkeys(cps, OTHER)
    for c, pattern in CLASSES:
        # "removed" drops the matches: the characters left are the non-members.
        split = pre_tokenizers.Split(Regex(pattern), behavior="removed")
        members = set(cps) - set(map(ord, "".join(p for p, _ in split.pre_tokenize_str(text))))
        twice = sorted(cp for cp in members if cls[cp] != OTHER)
        check(not twice, f"Oniguruma puts {', '.join(map(describe, twice[:5]))} in two classes")
        cls.update(dict.fromkeys(members, c))
    return cls


def test_class_of_every_code_point():
    out = scratch("classes.json")
    run(PROBE, "--texts", "classes", "--out", out)
    with open(out) as f:
        ours = runs_to_classes(json.load(f))
    t0 = time.time()
    tk = tiktoken_classes()
    t1 = time.time()
    cps = scalar_values()
    bad = [cp for cp in cps if ours.get(cp, OTHER) != tk[cp]]
    check(not bad, f"{len(bad)} code points have another class in bora than in tiktoken, e.g. " +
          "; ".join(f"{describe(cp)}: bora {CLASS_NAMES[ours.get(cp, OTHER)]}, tiktoken {CLASS_NAMES[tk[cp]]}"
                    for cp in bad[:12]) + " (regenerate src/model/unicode_tables.cpp with gen_unicode_tables.py)")
    onig = oniguruma_classes(cps)
    t2 = time.time()
    differ = {cp: (tk[cp], onig[cp]) for cp in cps if tk[cp] != onig[cp]}
    check(differ == KNOWN_CLASS_DIFFERENCES,
          "the classes of tiktoken's regex engine and HF's Oniguruma now differ from the documented set: " +
          "; ".join(f"{describe(cp)}: tiktoken {CLASS_NAMES[a]}, Oniguruma {CLASS_NAMES[b]}"
                    for cp, (a, b) in sorted(differ.items())[:12]) + ": update KNOWN_CLASS_DIFFERENCES")
    counts = {n: sum(1 for cp in cps if tk[cp] == c) for c, n in CLASS_NAMES.items()}
    print(f"  {len(cps)} scalar values: bora == tiktoken == Oniguruma for every one ({counts}; "
          f"tiktoken probe {t1 - t0:.1f} s, Oniguruma probe {t2 - t1:.1f} s)")


def test_unicode_sweep():
    compare("sweep", bora("sweep"))


if __name__ == "__main__":
    if not os.path.exists(PROBE) or PART not in ("texts", "unicode"):
        sys.exit(f"usage: test_tokenizer_reference.py <tokenizer_probe> texts|unicode (got {sys.argv[1:]})")
    if PART == "texts":
        main(test_hand_made_cases, test_fortunes, test_vocabulary_in_context)
    else:
        main(test_class_of_every_code_point, test_unicode_sweep)
