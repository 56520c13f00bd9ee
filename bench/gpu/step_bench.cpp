// gpu_step_bench: bora-train's training step, timed, with the device's peak memory;
// the bora side of bench/gpu/run.sh (throughput, MFU and capacity stages).
//
//   [mpirun -np 1] gpu_step_bench --warmup 3 --steps 10 --json out.json <bora-train options>
//
// It builds exactly what bora-train builds (World, device, communicator, Trainer
// from the same option table) and calls Trainer::step() warmup + steps times; the
// evaluations, checkpoint and export that bora-train's run adds around the steps
// are left out, so that a capacity probe of thousands of tasks does not write
// their adapters and Adam moments to disk. Timed: the wall clock over the timed
// steps, with the device synchronised before and after (independent of whether a
// step waits for the GPU itself). Memory: the CUDA caching allocator's peak over
// the whole process (base, adapters, optimizer state and activations), the number
// torch.cuda.max_memory_allocated gives the HF + PEFT peer; on the CPU, peak RSS.
//
// JSON (rank 0; every rank's peak is gathered): device, ranks, tasks, row_size
// (adapter parameters per task), base_parameters, steps, seconds, sequences,
// target_tokens, sequences_per_s, step_s, allreduce_s, compute_s, data_s,
// optimizer_s, peak_allocated_bytes (max over ranks), peak_reserved_bytes,
// setup_allocated_bytes, memory_kind; or {"oom": true, "where": ...} and exit 3
// when the device ran out of memory (the capacity probe's signal).
#include <torch/cuda.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <fstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/log.h"
#include "core/main.h"
#include "core/options.h"
#include "dist/device_memory.h"
#include "dist/world.h"
#include "train/trainer.h"

namespace {

constexpr int kExitOom = 3;

void sync(torch::Device d) {
  if (d.is_cuda()) torch::cuda::synchronize(d.index());
}

void write_json(const std::string& path, const bora::OrderedJson& j) {
  const std::string text = j.dump(1) + "\n";
  std::fputs(text.c_str(), stdout);
  if (!path.empty()) bora::write_file_atomic(path, text);
}

}  // namespace

int main(int argc, char** argv) {
  return bora::guarded_main("gpu_step_bench", [&] {
    bora::World world(&argc, &argv);
    bora::TrainConfig config;
    int64_t warmup = 3, steps = 10;
    std::string json;
    bora::OptionTable table("gpu_step_bench", "Times bora-train's step and reports the device's peak memory.");
    config.declare(table);
    table.group("bench");
    table.add("warmup", &warmup, "untimed steps first");
    table.add("steps", &steps, "timed steps");
    table.add("json", &json, "write the figures to this JSON file (rank 0)");
    if (!table.parse(argc, argv)) return 0;
    if (config.max_steps < warmup + steps) config.max_steps = warmup + steps;
    config.eval_base = false;
    config.export_adapters = false;
    config.validate();
    torch::set_num_threads(bora::threads_per_rank(config.threads, world.local_size()));
    const torch::Device device = world.select_device(config.device);
    auto comm = bora::make_communicator(world, device);
    auto oom = [&](const char* where, const std::string& what) {
      bora::OrderedJson j = {{"oom", true}, {"where", where}, {"device", device.str()}, {"ranks", comm->size()},
                             {"message", what.substr(0, 300)}};
      const bora::DeviceMemory m = bora::device_memory(device);
      j["peak_allocated_bytes"] = m.peak_allocated;
      if (comm->rank() == 0) write_json(json, j);
      return kExitOom;
    };
    // cuBLAS, NCCL and the allocator's own paths report a full device as c10::Error
    // ("CUDA error: out of memory", "CUBLAS_STATUS_ALLOC_FAILED") too.
    auto is_oom = [](const c10::Error& e) {
      const std::string w = e.what();
      return w.find("out of memory") != std::string::npos || w.find("ALLOC_FAILED") != std::string::npos;
    };
    std::unique_ptr<bora::Trainer> trainer;
    try {
      trainer = std::make_unique<bora::Trainer>(config, table.to_ini(), *comm, device);
    } catch (const c10::OutOfMemoryError& e) {
      return oom("setup", e.what());
    } catch (const c10::Error& e) {
      if (!is_oom(e)) throw;
      return oom("setup", e.what());
    }
    sync(device);
    const int64_t setup_allocated = bora::device_memory(device).allocated;
    bora::StepStats sum;
    double seconds = 0;
    try {
      for (int64_t s = 0; s < warmup; ++s) trainer->step();
      sync(device);
      const auto t0 = std::chrono::steady_clock::now();
      for (int64_t s = 0; s < steps; ++s) {
        const bora::StepStats st = trainer->step();
        sum.sequences += st.sequences;
        sum.tokens += st.tokens;
        sum.allreduce_s += st.allreduce_s;
        sum.compute_s += st.compute_s;
        sum.data_s += st.data_s;
        sum.optimizer_s += st.optimizer_s;
        sum.seconds += st.seconds;
      }
      sync(device);
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } catch (const c10::OutOfMemoryError& e) {
      return oom("step", e.what());
    } catch (const c10::Error& e) {
      if (!is_oom(e)) throw;
      return oom("step", e.what());
    }
    const bora::DeviceMemory m = bora::device_memory(device);
    const double peak = comm->all_reduce_scalar(double(m.peak_allocated), bora::ReduceOp::Max);
    const double reserved = comm->all_reduce_scalar(double(m.peak_reserved), bora::ReduceOp::Max);
    int64_t base = 0;
    for (const auto& p : trainer->model().parameters()) base += p.numel();
    bora::OrderedJson j = {{"oom", false},
                           {"device", device.str()},
                           {"dtype", bora::name_of(bora::kModelDtypeNames, config.dtype)},
                           {"backend", comm->backend()},
                           {"ranks", comm->size()},
                           {"tasks", trainer->plan().num_tasks()},
                           {"row_size", trainer->bank().row_size()},
                           {"base_parameters", base},
                           {"batch_size", config.batch_size},
                           {"micro_batch", config.micro_batch},
                           {"warmup", warmup},
                           {"steps", steps},
                           {"seconds", seconds},
                           {"sequences", sum.sequences},
                           {"target_tokens", sum.tokens},
                           {"sequences_per_s", seconds > 0 ? double(sum.sequences) / seconds : 0.0},
                           {"step_s", steps > 0 ? seconds / double(steps) : 0.0},
                           {"steps_sum_s", sum.seconds},
                           {"allreduce_s", sum.allreduce_s},
                           {"compute_s", sum.compute_s},
                           {"data_s", sum.data_s},
                           {"optimizer_s", sum.optimizer_s},
                           {"memory_kind", m.kind},
                           {"peak_allocated_bytes", static_cast<int64_t>(peak)},
                           {"peak_reserved_bytes", static_cast<int64_t>(reserved)},
                           {"setup_allocated_bytes", setup_allocated}};
    if (comm->rank() == 0) write_json(json, j);
    return 0;
  }, bora::World::abort_job);
}
