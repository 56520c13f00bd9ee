"""Two MPI ranks on one GPU equal one CPU process (ctest gpu_mpi_np2, label gpu;
BORA_TEST_DEVICE=cpu runs the same on the CPU communicator).

NCCL refuses two ranks on one GPU, so make_communicator (dist/world.cpp) stages
Theta's all-reduce through host memory over MPI when ranks share a GPU; this test
runs that path: the reference regime of the dist tests (tau = 10, lr = 1e-4, 24
steps, micro_batch 1, replica checks every 4 steps) on a tiny OPT with four tasks,
  cpu_np1   bora-train --device cpu, one process (no MPI)
  dev_np1   bora-train --device <dev>, one process
  dev_np2   mpirun -np 2 bora-train --device <dev> (on CUDA: both ranks on cuda:0)
and compare_runs (adapters, Theta and perplexities) at 1e-5 relative between
cpu_np1 and dev_np2, and dev_np1 and dev_np2. Float32 throughout.
"""
import os
import sys

import gpu_util as G
from bora_testing import TMP, check, main, run, test_tool

DEVICE = G.device()
MPIEXEC = sys.argv[1] if len(sys.argv) > 1 else "mpirun"
TOL = 1e-5
ARGS = ["--model", "base", "--data", "data", "--lr", 1e-4, "--tau", 10, "--max_steps", 24, "--batch_size", 16,
        "--micro_batch", 1, "--adapter_r", 4, "--adapter_alpha", 8, "--init_noise", 0.01, "--eval_base", "false",
        "--patience", 0, "--eval_every", 12, "--log_every", 1, "--replica_check_every", 4, "--threads", 1,
        "--dtype", "float32", "--checkpoint_every", 0]
MPI = [MPIEXEC, "--allow-run-as-root", "--oversubscribe", "--mca", "btl", "self,vader", "--bind-to", "none"]


def bora_train_np(np, device, name):
    if np == 1:
        return run("bora-train", *ARGS, "--device", device, "--run_dir", f"runs/{name}")
    exe = os.path.join(os.environ.get("BORA_BIN", ""), "bora-train")
    return run(MPI[0], *MPI[1:], "-np", np, exe, *ARGS, "--device", device, "--run_dir", f"runs/{name}",
               env={"OMPI_MCA_rmaps_base_oversubscribe": "1", "OMP_NUM_THREADS": "1"})


def test_two_ranks_on_one_device_equal_one_cpu_process():
    os.makedirs(TMP, exist_ok=True)
    os.chdir(TMP)
    G.make_opt("base", "tiny-1.3b", init_std=0.2)
    G.make_dataset("base", "data", tasks=4, docs_per_task=12, seq_len=40)
    bora_train_np(1, "cpu", "cpu_np1")
    if DEVICE != "cpu":
        bora_train_np(1, DEVICE, "dev_np1")
    p = bora_train_np(2, DEVICE, "dev_np2")
    if DEVICE == "cuda":
        check("staged through host memory" in p.stderr + p.stdout,
              "two ranks on one GPU did not fall back to MPI staging:\n" + p.stderr[-2000:])
    pairs = [("cpu_np1", "dev_np2")] + ([("dev_np1", "dev_np2")] if DEVICE != "cpu" else [])
    for a, b in pairs:
        out = run(test_tool("compare_runs"), "--tol", TOL, f"runs/{a}", f"runs/{b}", expect=None)
        print("\n".join("    " + line for line in out.stdout.splitlines()[-6:]))
        check(out.returncode == 0, f"{a} vs {b}: compare_runs exited {out.returncode} (tolerance {TOL})")
        print(f"  {a} == {b} within {TOL}")


if __name__ == "__main__":
    main(test_two_ranks_on_one_device_equal_one_cpu_process)
