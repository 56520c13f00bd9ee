# The tiny run of the multi-process tests (tests/slurm, tests/cluster,
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
