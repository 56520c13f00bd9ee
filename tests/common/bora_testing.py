"""Shared helpers of the hf tests (Python scripts run by ctest through run_py.sh).

Each script compares bora with a library users actually run (transformers, PEFT,
tiktoken, tokenizers, h5py) and exits non-zero with a message naming the first
disagreement. The environment comes from bora_add_py_test (cmake/BoraTargets.cmake):
  BORA_BIN         bora's tools (bora-train, bora-eval, ...)
  BORA_TEST_BIN    test-only tools (build/tests: opt_logprobs, dataset_dump, ...)
  BORA_SOURCE_DIR  the checkout (for .deps/gpt2 and configs)
  BORA_TEST_TMP    an empty scratch folder for this test, removed when it passes
"""
import os
import shlex
import subprocess
import sys

SOURCE = os.environ.get("BORA_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BIN = os.environ.get("BORA_BIN", os.path.join(SOURCE, "build", "bin"))
TEST_BIN = os.environ.get("BORA_TEST_BIN", os.path.join(os.path.dirname(BIN), "tests"))
TMP = os.environ.get("BORA_TEST_TMP") or os.path.join("/tmp", f"bora_test_{os.getpid()}")
GPT2 = os.path.join(SOURCE, ".deps", "gpt2")


class Failure(Exception):
    """A disagreement with the reference; the message says which and by how much."""


def check(condition, *message):
    if not condition:
        raise Failure(" ".join(str(m) for m in message))


def gpt2_files():
    """GPT-2's vocab.json and merges.txt (launch/install-deps.sh derives them)."""
    vocab, merges = os.path.join(GPT2, "vocab.json"), os.path.join(GPT2, "merges.txt")
    check(os.path.exists(vocab) and os.path.exists(merges), f"no GPT-2 files in {GPT2}: run launch/install-deps.sh")
    return vocab, merges


def scratch(*parts):
    """A path inside this test's scratch folder (parents created)."""
    path = os.path.join(TMP, *parts)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def test_tool(name):
    """The path of a test-only tool (tests/*/CMakeLists.txt builds them into BORA_TEST_BIN)."""
    return os.path.join(TEST_BIN, name)


def run(tool, *args, expect=0, env=None):
    """Runs a bora tool (a name in BORA_BIN, or a path); returns its completed process.
    A different exit code than `expect` is a Failure that shows the command and its output."""
    exe = tool if os.sep in tool else os.path.join(BIN, tool)
    cmd = [exe, *map(str, args)]
    full_env = dict(os.environ, **(env or {}))
    p = subprocess.run(cmd, capture_output=True, text=True, env=full_env)
    if expect is not None and p.returncode != expect:
        raise Failure(f"{shlex.join(cmd)}\nexited {p.returncode}, expected {expect}\n"
                      f"--- stdout\n{p.stdout[-4000:]}\n--- stderr\n{p.stderr[-4000:]}")
    return p


def main(*tests):
    """Runs test functions in order, prints one line each, exits 1 on the first Failure."""
    for t in tests:
        try:
            t()
        except Failure as e:
            print(f"FAIL {t.__name__}: {e}")
            sys.exit(1)
        print(f"ok   {t.__name__}")
