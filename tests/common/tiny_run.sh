# What the scenario scripts of the multi-process tests share (tests/slurm/slurm_jobs.sh,
# tests/cluster/cluster_tests.sh), and the tiny run of those tests (tests/slurm, tests/cluster,
# bench/cluster_scaling.sh): the tests/dist fixture's model and data, micro_batch 1
# (results then do not depend on the number of ranks), LoRA r 4. Callers append
# their own evaluation cadence and checks.
#   tiny_run_ini <fixture folder> <max_steps> >run.ini
tiny_run_ini() {
  cat <<INI
model = $1/model
data = $1/data
lr = 1e-4
max_steps = $2
batch_size = 16
micro_batch = 1
adapter_r = 4
adapter_alpha = 8
init_noise = 0.01
eval_base = false
patience = 0
log_every = 1
threads = 1
INI
}

# A scenario script's environment and helpers: Open MPI as root, one thread per rank,
# the binaries for the jobs (sbatch --export=ALL passes them on); say (a line with
# <prefix> and the seconds since the start), fail (a FAIL line, exit 1), same
# (compare_runs at 1e-5, the tolerance of tests/dist for micro_batch 1).
#   scenario_env <prefix>
scenario_env() {
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
  export BORA_ROOT=$BORA_SOURCE BORA_BIN
  _scenario_prefix=$1 _scenario_t0=$SECONDS
  say() { echo "[$_scenario_prefix +$((SECONDS - _scenario_t0))s] $*"; }
  fail() { echo "FAIL: $*"; exit 1; }
  same() { "$COMPARE_RUNS" --tol 1e-5 "$@" || fail "runs differ: $*"; }
}
