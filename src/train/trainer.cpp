#include "train/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <optional>

#include "adapters/load.h"
#include "bora/prior.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/options.h"
#include "core/progress.h"
#include "core/stop_request.h"
#include "model/staging.h"
#include "model/tokenizer.h"
#include "train/results.h"

namespace bora {
namespace {

// CPU seconds of this process, all threads together (user + system).
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// The scalars after the head (|Theta| elements) of the step's all-reduce buffer, in
// float64; each is summed over ranks, so the flags are counts (> 0: some rank raised
// it). The first six are accumulated on the device during the step, the last four
// are known on the host; each group is contiguous, so that the host's four travel in
// one copy.
enum StepScalar : int64_t {
  kLikelihood,     // sum_d w_d NLL_d over this rank's tasks
  kNllSum,         // sum of the target tokens' NLLs
  kBadLossRows,    // rows whose NLL is not finite
  kPrior,          // R over this rank's tasks
  kBadPrior,       // 1 when that R is not finite
  kRowsGradSq,     // ||gradient of the rows||^2 (grad_clip only)
  kTokens,         // target tokens
  kSequences,
  kStop,           // some rank got SIGTERM/SIGUSR1
  kCheckpointDue,  // rank 0's clock says checkpoint_minutes have passed
  kStepScalars
};

// bora-train's option table over a default configuration: every option's default
// and the keys marked resume_safe() where they are declared.
struct DefaultOptions {
  TrainConfig config;
  OptionTable table{"bora-train", ""};
  DefaultOptions() { config.declare(table); }
};

// Fault injection for the distributed tests (docs/distributed.md): the named rank
// throws at the named step, as a crashing rank would.
void inject_test_failure(int rank, int64_t next_step) {
  const char* f = std::getenv("BORA_TEST_FAIL_AT");
  if (!f) return;
  int at_rank = -1;
  long long at = -1;
  if (std::sscanf(f, "%d:%lld", &at_rank, &at) == 2 && at_rank == rank && at == next_step)
    BORA_THROW(InternalError, "injected failure at step ", at, " (BORA_TEST_FAIL_AT=", f, ")");
}

}  // namespace

// What the likelihood pass of a step leaves for the rest of it.
struct Trainer::Likelihood {
  std::vector<std::vector<RowRef>> chunks;  // the micro-batches
  std::vector<torch::Tensor> chunk_nll;     // per-row NLL sums, read only to name a non-finite task
  int64_t tokens = 0;                       // this rank's target tokens in the global minibatch
};

Trainer::Trainer(TrainConfig config, std::string resolved_ini, Communicator& comm, torch::Device device)
    : cfg_(std::move(config)), resolved_ini_(std::move(resolved_ini)), comm_(comm) {
  cfg_.validate();
  // The lock first: a folder another job writes in is refused before anything in
  // it is touched (config.ini, metrics.jsonl, checkpoints).
  run_ = std::make_unique<RunFolder>(cfg_.run_dir, comm_.rank() == 0, cfg_.lock);
  const Manifest manifest = Manifest::read(cfg_.data);
  manifest_hash_ = hex64(hash64(read_file(cfg_.data + "/manifest.json")));  // the dataset's identity in checkpoints
  plan_ = std::make_unique<TaskPlan>(manifest, cfg_.data, cfg_.tasks, cfg_.bora.likelihood_weight, comm_.size(), comm_.rank(),
                                     cfg_.bora.unified());
  if (comm_.rank() == 0) {
    const std::string table = plan_->partition_table();
    BORA_INFO(table.substr(0, table.size() - 1));
  }
  const int64_t per_epoch = plan_->steps_per_epoch(cfg_.batch_size);
  total_steps_ = cfg_.max_steps > 0 ? cfg_.max_steps : cfg_.epochs * per_epoch;
  eval_every_ = cfg_.eval_every > 0 ? cfg_.eval_every : per_epoch;
  if (cfg_.prune.on()) {
    // Settings that cannot work end here, before the model loads: a first rung
    // past the run's end, a sweep folder whose board is of another dataset or
    // rung spacing. Rank 0 alone reads and writes the board; its verdicts reach
    // the other ranks through all_reduce_scalar.
    cfg_.prune.check_rungs(eval_every_, total_steps_);
    // The sweep folder is the run folder's parent; the run is its folder's name.
    std::filesystem::path dir = std::filesystem::path(cfg_.run_dir).lexically_normal();
    if (!dir.has_filename()) dir = dir.parent_path();
    board_name_ = dir.filename().string();
    double pruned = 0;
    if (comm_.rank() == 0) {
      const std::string sweep = dir.has_parent_path() ? dir.parent_path().string() : ".";
      board_ = std::make_unique<Leaderboard>(sweep, BoardIdentity{manifest_hash_, eval_every_}, cfg_.lock);
      pruned = static_cast<double>(board_->pruned_at(board_name_));  // checks the board's identity
    }
    pruned_rung_ = static_cast<int64_t>(comm_.all_reduce_scalar(pruned, ReduceOp::Max));
  }
  load_model_and_data(device);
  init_adapters();
  make_sampler();
  checkpointer_ = std::make_unique<Checkpointer>(cfg_.checkpoint, cfg_.run_dir, comm_);
  checkpointer_->set_commit_guard([this](const std::string& action) { run_->verify_lock(action); });
  resume();
  // Only now: a refused resume must not overwrite the configuration of the run.
  run_->write_text("config.ini", resolved_ini_);
}

Trainer::~Trainer() = default;

void Trainer::load_model_and_data(torch::Device device) {
  // float16 on the CPU: few CPU kernels have fast (or any) half paths, and its 5-bit
  // exponent is what loss scaling exists for on GPUs; bfloat16 is the CPU's half.
  BORA_CHECK(cfg_.dtype != torch::kFloat16 || device.is_cuda(), ConfigError,
             "dtype = float16 needs a CUDA device (this run is on ", device.str(), "); use dtype = bfloat16 on the CPU");
  LoadOptions lo;
  lo.dtype = cfg_.dtype;
  lo.device = device;
  Stopwatch watch;
  model_ = load_causal_lm(cfg_.model, lo);

  reader_ = std::make_unique<DatasetReader>(cfg_.data, plan_->local_names());
  Tokenizer tok = Tokenizer::from_folder(cfg_.tokenizer.empty() ? cfg_.model : cfg_.tokenizer);
  reader_->check_tokenizer(tok.identity_hex(), model_->shape().vocab_size);
  BORA_CHECK(cfg_.batch_size <= plan_->total_train_documents(), ConfigError, "batch_size ", cfg_.batch_size,
             " is larger than the training split (", plan_->total_train_documents(), " sequences in ",
             plan_->num_tasks(), " tasks)");
  BORA_INFO("loaded ", cfg_.model, " (", model_->shape().num_layers, " layers, hidden ", model_->shape().hidden_size,
            ", ", c10::toString(lo.dtype), " on ", device.str(), ") and ", plan_->num_local(), " of ",
            plan_->num_tasks(), " tasks in ", watch.seconds(), " s");
  const int64_t pad_id = model_->shape().pad_token_id;
  builder_ = std::make_unique<BatchBuilder>(*reader_, pad_id, device);
  evaluator_ = std::make_unique<Evaluator>(*model_, *reader_, plan_->local_manifest_tasks(), plan_->local_bank_rows(),
                                           cfg_.eval_batch, pad_id);
}

void Trainer::init_adapters() {
  torch::NoGradGuard no_grad;
  const AdapterSpec spec = AdapterSpec::resolve(cfg_.adapter, model_->shape());
  const torch::Device device = model_->device();
  bank_ = std::make_unique<AdapterBank>(spec, model_->shape(), plan_->num_bank_rows(), device);
  const torch::Tensor start =
      cfg_.init_adapter.empty() ? bank_->preset_row() : import_row(spec, *model_, cfg_.init_adapter).to(device);
  if (cfg_.bora.unified()) {
    bank_->rows()[0].copy_(start);
  } else {
    // The reference initialisation: Theta gets the preset's init (or init_adapter's), every theta_d
    // = Theta + N(0, init_noise^2), with noise seeded by (seed, task name): a task
    // starts the same whichever rank owns it and whichever other tasks share the run.
    theta_ = start.clone();
    for (int64_t slot = 0; slot < plan_->num_local(); ++slot) {
      const std::string& name = plan_->name(plan_->task_of_slot(slot));
      auto gen = at::detail::createCPUGenerator(hash64(name.data(), name.size(), static_cast<uint64_t>(cfg_.seed)));
      torch::Tensor noise = torch::randn({bank_->row_size()}, gen, torch::kFloat32) * cfg_.bora.init_noise;
      bank_->rows()[plan_->bank_row(slot)].copy_(theta_ + noise.to(device));
    }
  }
  rows_opt_ = std::make_unique<AdamW>(bank_->rows(), cfg_.optim.adamw());
  if (cfg_.bora.theta_by_adam()) theta_opt_ = std::make_unique<AdamW>(theta_, cfg_.optim.adamw());
}

void Trainer::make_sampler() {
  const int64_t per_epoch = plan_->steps_per_epoch(cfg_.batch_size);
  if (cfg_.sampler == SamplerKind::Global) {
    sampler_ = std::make_unique<GlobalSampler>(plan_->train_documents(), cfg_.batch_size,
                                               static_cast<uint64_t>(cfg_.seed));
  } else {
    // balanced: this rank's own share of every batch, from its own tasks only.
    const int64_t share = cfg_.batch_size / comm_.size() + (comm_.rank() < cfg_.batch_size % comm_.size());
    BORA_CHECK(share > 0, ConfigError, "sampler = balanced needs batch_size >= ranks");
    sampler_ = std::make_unique<GlobalSampler>(plan_->local_train_documents(), share,
                                               static_cast<uint64_t>(cfg_.seed) + 7919ULL * (comm_.rank() + 1));
  }
  if (comm_.rank() == 0)
    BORA_INFO("adapter ", bank_->spec().describe(), ": ", bank_->row_size(), " trainable parameters per task; tau = ",
              cfg_.bora.tau, ", lr = ", cfg_.effective_lr(), ", ", total_steps_, " steps (", per_epoch, " per epoch)");
}

std::vector<RowRef> Trainer::local_rows(int64_t step) {
  std::vector<RowRef> rows;
  for (const SeqRef& ref : sampler_->batch(step)) {
    // The global sampler names run tasks; the balanced one names slots.
    const int64_t task = cfg_.sampler == SamplerKind::Global ? ref.task : plan_->task_of_slot(ref.task);
    const int64_t slot = plan_->slot_of_task(task);
    if (slot < 0) continue;
    rows.push_back({plan_->manifest_task(task), ref.index, plan_->bank_row(slot), slot});
  }
  // Group by task (keeping the drawn order inside a task): the bank then runs one
  // segment per task.
  std::stable_sort(rows.begin(), rows.end(), [](const RowRef& a, const RowRef& b) { return a.slot < b.slot; });
  return rows;
}

// One optimizer step (see the header comment for its shape). No host
// synchronisation until the step's scalars are read, once, after its all-reduce:
// the losses, sums and non-finite flags are accumulated on the device straight into
// the all-reduce buffer, batches are copied without waiting, and the model is told
// the padding side and target positions (batch.h). On CUDA the host thus runs ahead
// queuing kernels, and the times below are the host's.
StepStats Trainer::step() {
  inject_test_failure(comm_.rank(), state_.step + 1);
  StepStats st;
  const double cpu0 = process_cpu_seconds();
  Stopwatch total, watch;
  const bool unified = cfg_.bora.unified();
  const bool mean_update = !unified && cfg_.bora.theta_update == ThetaUpdate::Mean;
  const int64_t P = bank_->row_size();
  // [ head (Theta's gradient, the shared adapter's, or sum_d theta_d) | the step's scalars ]
  torch::Tensor buffer =
      torch::zeros({P + kStepScalars}, torch::TensorOptions(torch::kFloat64).device(model_->device()));
  torch::Tensor head = buffer.narrow(0, 0, P);

  // 1. sum_d w_d NLL_d over this rank's rows of the global minibatch, and its gradient.
  const std::vector<RowRef> rows = local_rows(state_.step);
  st.data_s += watch.seconds();
  const Likelihood lik = likelihood(rows, buffer, st);

  // 2. The prior R over this rank's tasks, in closed form, and the flags of the step.
  watch.reset();
  torch::NoGradGuard no_grad;
  add_prior(buffer);
  if (unified) head.copy_(bank_->grad_rows()[0]);
  st.local_sequences = st.sequences;  // before the all-reduce replaces it by the global count
  share_host_scalars(buffer, lik.tokens, st.sequences);
  st.compute_s += watch.seconds();

  // 3. THE all-reduce of the step, then the one read of its scalars (mean mode
  //    reduces after the rows' update instead). The global ||rows' gradient||^2 for
  //    grad_clip: in mean mode the buffer is reduced after the step, so it takes a
  //    scalar collective.
  const bool clip = cfg_.optim.grad_clip > 0;
  const double mean_rows_sq =
      clip && mean_update ? comm_.all_reduce_scalar(buffer[P + kRowsGradSq].item<double>(), ReduceOp::Sum) : 0;
  if (!mean_update) {
    read_scalars(buffer, st, lik);
    if (unified) bank_->grad_rows()[0].copy_(head);
  }

  // 4. AdamW on the rows, and on Theta (identically on every rank).
  watch.reset();
  st.lr = cfg_.lr_at(state_.step, total_steps_);
  torch::Tensor theta_grad = theta_opt_ ? head.to(torch::kFloat32) : torch::Tensor();
  if (clip)
    clip_gradients(unified       ? bank_->grad_rows().to(torch::kFloat64).pow(2).sum()  // the reduced gradient
                   : mean_update ? torch::full({}, mean_rows_sq, buffer.options())
                                 : buffer[P + kRowsGradSq],  // reduced in place
                   theta_grad);
  // Non-centred: AdamW moves delta_d = theta_d - Theta, whose gradient is theta_d's, so
  // the rows take their usual step and then follow Theta: theta_d += Theta_new -
  // Theta_old (1 - lr wd), the last factor because AdamW decayed theta_d, not delta_d.
  const torch::Tensor theta_before = cfg_.bora.noncentered() ? theta_.clone() : torch::Tensor();
  rows_opt_->step(bank_->grad_rows(), st.lr);
  if (theta_opt_) theta_opt_->step(theta_grad, st.lr);
  if (theta_before.defined())
    bank_->rows().add_(theta_ - theta_before * (1.0 - st.lr * cfg_.optim.weight_decay));
  bank_->zero_grad();
  st.optimizer_s += watch.seconds();
  if (mean_update) {
    // Theta <- the mean of all theta_d, after the step: sum over local rows, reduce.
    head.copy_(bank_->rows().to(torch::kFloat64).sum(0));
    read_scalars(buffer, st, lik);
    theta_.copy_(head / double(plan_->num_tasks()));
  }
  ++state_.step;
  if (cfg_.replica_check_every > 0 && state_.step % cfg_.replica_check_every == 0 && comm_.size() > 1)
    check_replicas();
  st.step = state_.step;
  st.seconds = total.seconds();
  st.cpu_s = process_cpu_seconds() - cpu0;
  state_.train_tokens += st.tokens;
  return st;
}

Trainer::Likelihood Trainer::likelihood(const std::vector<RowRef>& rows, torch::Tensor& buffer, StepStats& st) {
  Stopwatch watch;
  Likelihood l;
  // Target tokens of each local task in the global minibatch: NLL_d's denominator.
  std::vector<int64_t> task_tokens(static_cast<size_t>(plan_->num_local()), 0);
  for (const auto& r : rows)
    task_tokens[static_cast<size_t>(r.slot)] +=
        reader_->length(r.task, Split::Train, r.index) - reader_->prompt_len(r.task, Split::Train, r.index);
  for (int64_t n : task_tokens) l.tokens += n;
  l.chunks = pack_by_task(rows, cfg_.micro_batch);
  torch::Tensor sums = buffer.narrow(0, buffer.size(0) - kStepScalars + kLikelihood, 3);
  st.data_s += watch.seconds();

  for (const auto& chunk : l.chunks) {
    watch.reset();
    MicroBatch mb = builder_->build(chunk, Split::Train);
    // Row b carries w_d / T_d of its task: the chunk's weighted sum is its part of sum_d w_d NLL_d.
    std::vector<float> w(chunk.size());
    for (size_t b = 0; b < chunk.size(); ++b) {
      const int64_t slot = chunk[b].slot;
      w[b] = static_cast<float>(plan_->weight(plan_->task_of_slot(slot)) /
                                double(std::max<int64_t>(1, task_tokens[static_cast<size_t>(slot)])));
    }
    torch::Tensor row_weight = to_device_async(torch::tensor(w), model_->device());
    st.data_s += watch.seconds();

    watch.reset();
    auto adapter = bank_->bind(mb.bank_rows, /*training=*/true);
    torch::Tensor per_row = target_nll(*model_, mb.ids, mb.attention_mask, mb.targets, adapter.get()).sum(1);
    torch::Tensor loss = (per_row * row_weight).sum();
    backward(loss);
    {
      // [likelihood, NLL sum, non-finite rows] += this micro-batch's, in float64 (a
      // float32 value widened exactly, then summed as a host double would be).
      torch::NoGradGuard no_grad;
      const torch::Tensor nll = per_row.detach();
      sums.add_(torch::stack({loss.detach(), nll.sum(), torch::isfinite(nll).logical_not().sum().to(torch::kFloat32)})
                    .to(torch::kFloat64));
      l.chunk_nll.push_back(nll);
    }
    st.sequences += static_cast<int64_t>(chunk.size());
    st.compute_s += watch.seconds();
  }
  return l;
}

void Trainer::add_prior(torch::Tensor& buffer) {
  const int64_t P = bank_->row_size();
  // Non-centred, Theta's gradient is sum_d of the likelihood gradients: taken before
  // the prior's gradient joins the rows'.
  if (cfg_.bora.noncentered())
    buffer.narrow(0, 0, P).copy_(bank_->grad_rows().sum(0, /*keepdim=*/false, torch::kFloat64));
  if (!cfg_.bora.unified() && cfg_.bora.tau > 0) {
    PriorTerms terms = prior_terms(cfg_.bora.prior, cfg_.bora.tau, bank_->rows(), theta_, bank_->layout());
    bank_->grad_rows().add_(terms.grad_rows);
    buffer.narrow(0, P + kPrior, 2)
        .copy_(torch::stack({terms.value, torch::isfinite(terms.value).logical_not().to(torch::kFloat64)}));
    if (cfg_.bora.theta_update == ThetaUpdate::Adam) buffer.narrow(0, 0, P).copy_(terms.grad_theta);
  }
  if (cfg_.optim.grad_clip > 0 && !cfg_.bora.unified())
    buffer.narrow(0, P + kRowsGradSq, 1).copy_(bank_->grad_rows().to(torch::kFloat64).pow(2).sum());
}

void Trainer::share_host_scalars(torch::Tensor& buffer, int64_t tokens, int64_t sequences) {
  // The stop and checkpoint-time flags ride in the same all-reduce: every rank
  // learns that some rank got a signal (or that rank 0's clock says it is time)
  // at the same step, without a collective of their own.
  const bool time_due = comm_.rank() == 0 && checkpointer_->due_by_time();
  const double known[] = {double(tokens), double(sequences), stop_requested() ? 1.0 : 0.0, time_due ? 1.0 : 0.0};
  static_assert(sizeof known / sizeof known[0] == kStepScalars - kTokens, "the host's scalars end the buffer");
  const torch::Device device = buffer.device();
  torch::Tensor host = torch::empty({kStepScalars - kTokens}, staging_options(device, torch::kFloat64));
  std::memcpy(host.data_ptr<double>(), known, sizeof known);
  buffer.narrow(0, buffer.size(0) - kStepScalars + kTokens, kStepScalars - kTokens)
      .copy_(host, /*non_blocking=*/device.is_cuda());
}

void Trainer::read_scalars(torch::Tensor& buffer, StepStats& st, const Likelihood& l) {
  // The all-reduce (in place), the step's one host read, and the verdict on
  // non-finite values before the state they spoil can reach a checkpoint.
  Stopwatch watch;
  comm_.all_reduce_sum(buffer);
  const torch::Tensor s = buffer.narrow(0, buffer.size(0) - kStepScalars, kStepScalars).cpu();
  st.allreduce_s += watch.seconds();
  const double* a = s.data_ptr<double>();
  st.loss = a[kLikelihood] + a[kPrior];
  st.prior = a[kPrior];
  st.nll = a[kTokens] > 0 ? a[kNllSum] / a[kTokens] : NAN;
  st.tokens = static_cast<int64_t>(a[kTokens]);
  st.sequences = static_cast<int64_t>(a[kSequences]);
  st.stop = a[kStop] > 0;
  st.checkpoint_due = a[kCheckpointDue] > 0;
  if (a[kBadLossRows] > 0) throw_non_finite_loss(l);
  BORA_CHECK(a[kBadPrior] == 0, NumericError, "non-finite prior at step ", state_.step + 1, " (tau = ", cfg_.bora.tau,
             "; last good checkpoint: ", last_checkpoint_.empty() ? "none" : last_checkpoint_, ")");
}

void Trainer::clip_gradients(const torch::Tensor& rows_sq, torch::Tensor& theta_grad) {
  // The factor clip / (norm + 1e-6) when the norm exceeds grad_clip, else exactly 1,
  // decided on the device: multiplying by 1 changes no bit, and no host read.
  torch::Tensor sq = rows_sq;
  if (theta_grad.defined()) sq = sq + theta_grad.to(torch::kFloat64).pow(2).sum();
  const torch::Tensor norm = sq.sqrt();
  const torch::Tensor clip = torch::full({}, cfg_.optim.grad_clip, norm.options());
  const torch::Tensor f = torch::where(norm > clip, clip / (norm + 1e-6), torch::ones_like(norm)).to(torch::kFloat32);
  bank_->grad_rows().mul_(f);
  if (theta_grad.defined()) theta_grad.mul_(f);
}

void Trainer::throw_non_finite_loss(const Likelihood& l) {
  // Every rank knows from the all-reduced count that some row is not finite; the
  // ranks that own one name their first such task, and all of them throw the same
  // line, naming the first task in rank order (a collective on the failure path only).
  std::string mine;
  for (size_t c = 0; c < l.chunks.size() && mine.empty(); ++c) {
    torch::Tensor bad = torch::isfinite(l.chunk_nll[c]).logical_not().cpu();
    for (size_t b = 0; b < l.chunks[c].size(); ++b)
      if (bad[static_cast<int64_t>(b)].item<bool>()) {
        mine = plan_->name(plan_->task_of_slot(l.chunks[c][b].slot));
        break;
      }
  }
  std::string task = "?";
  for (const std::string& name : comm_.all_gather_bytes(mine))
    if (!name.empty()) {
      task = name;
      break;
    }
  BORA_THROW(NumericError, "non-finite loss at step ", state_.step + 1, " in task '", task,
             "' (last good checkpoint: ", last_checkpoint_.empty() ? "none" : last_checkpoint_, ")");
}

void Trainer::check_replicas() {
  torch::Tensor replicated = cfg_.bora.unified() ? bank_->rows()[0] : theta_;
  torch::Tensor cpu = replicated.to(torch::kCPU).contiguous();
  const uint64_t h = hash64(cpu.data_ptr(), cpu.nbytes());
  const std::vector<std::string> all = comm_.all_gather_bytes(std::string(reinterpret_cast<const char*>(&h), 8));
  for (size_t r = 0; r < all.size(); ++r)
    BORA_CHECK(all[r] == all[0], DistError, "replicas of ", cfg_.bora.unified() ? "the shared adapter" : "Theta",
               " differ at step ", state_.step, ": rank ", r, " has checksum ",
               hex64(*reinterpret_cast<const uint64_t*>(all[r].data())), ", rank 0 has ",
               hex64(*reinterpret_cast<const uint64_t*>(all[0].data())));
}

EvalSummary Trainer::evaluate(Split split) {
  std::vector<TaskEval> local = evaluator_->run(bank_.get(), split);
  return summarize(gather_task_evals(comm_, plan_->local_tasks(), local, plan_->num_tasks()));
}

void Trainer::log_step(const StepStats& s) {
  const double tps = s.seconds > 0 ? double(s.tokens) / s.seconds : 0;
  OrderedJson j = {{"step", s.step},          {"epoch", double(s.step) / double(plan_->steps_per_epoch(cfg_.batch_size))},
                   {"loss", s.loss},          {"nll", s.nll},
                   {"prior", s.prior},        {"lr", s.lr},
                   {"tokens", s.tokens},      {"sequences", s.sequences},
                   {"tokens_per_s", tps},     {"step_s", s.seconds},
                   {"compute_s", s.compute_s}, {"allreduce_s", s.allreduce_s},
                   {"data_s", s.data_s},      {"optimizer_s", s.optimizer_s},
                   {"cpu_s", s.cpu_s}};
  run_->append_metrics(j);
}

void Trainer::evaluate_and_track() {
  EvalSummary val = evaluate(Split::Validation);
  EarlyStop& early = state_.early;
  OrderedJson j = {{"eval", "validation"}, {"step", state_.step}};
  j.update(summary_json(val));
  run_->append_metrics(j);
  if (comm_.rank() == 0)
    BORA_INFO("step ", state_.step, ": validation perplexity ", val.macro_ppl(), " (macro), ", val.micro_ppl(),
              " (micro)");
  early.history.emplace_back(state_.step, val.macro_nll);
  if (val.macro_nll < early.best_nll) {
    torch::NoGradGuard g;
    early.best_nll = val.macro_nll;
    early.best_step = state_.step;
    early.bad_evals = 0;
    early.best_rows = bank_->rows().clone();
    early.best_theta = theta_.defined() ? theta_.clone() : torch::Tensor();
    state_.best_val = std::move(val);
  } else {
    ++early.bad_evals;
    early.stopped = early.exhausted(cfg_.patience);
    if (early.stopped && comm_.rank() == 0)
      BORA_INFO("early stopping at step ", state_.step, ": no better validation NLL in ", cfg_.patience,
                " evaluations (best at step ", early.best_step, ")");
  }
}

bool Trainer::pruned_at(int64_t step) {
  if (!cfg_.prune.on() || step % eval_every_ != 0) return false;
  const int64_t rung = step / eval_every_;
  double stop = 0;
  if (comm_.rank() == 0) {
    // The best so far, the figure the sweep picks its winner by: a run that is
    // overfitting is judged by what it reached, not by its last evaluation.
    const double ppl = std::exp(state_.early.best_nll);
    const RungVerdict v = board_->report(board_name_, cfg_.bora.tau, comm_.size(), rung, step, ppl, cfg_.prune);
    if (v.judged)
      BORA_INFO("rung ", rung, " (step ", step, "): best validation perplexity ", ppl, " is ", v.place, " of the ",
                v.reached, " runs here; the best ", v.kept, v.keep ? " go on" : " go on: pruned");
    // A run that ends here anyway ends as what it is: early-stopped, or complete.
    if (!v.keep && !state_.early.stopped && step < total_steps_) stop = 1;
  }
  if (comm_.all_reduce_scalar(stop, ReduceOp::Max) == 0) return false;
  pruned_rung_ = rung;
  return true;
}

bool Trainer::run() {
  install_stop_signal_handlers();
  BORA_CHECK(pruned_rung_ == 0 || state_.step > 0, ConfigError, "the sweep's leaderboard says ", board_name_,
             " was pruned at rung ", pruned_rung_, " but ", cfg_.run_dir,
             " has no checkpoint to resume: start it afresh in a new folder, or with prune = none");
  if (pruned_rung_ > 0 && comm_.rank() == 0)
    BORA_INFO("this run was pruned at rung ", pruned_rung_, " (", board_->path(),
              "): not trained further; resume it with prune = none to train it to its end");
  if (state_.step == 0 && pruned_rung_ == 0) {
    if (cfg_.eval_base) {
      state_.base_val = summarize(gather_task_evals(comm_, plan_->local_tasks(),
                                                    evaluator_->run(nullptr, Split::Validation), plan_->num_tasks()));
      OrderedJson j = {{"eval", "base_validation"}, {"step", 0}};
      j.update(summary_json(state_.base_val));
      run_->append_metrics(j);
      if (comm_.rank() == 0) BORA_INFO("base model: validation perplexity ", state_.base_val.macro_ppl(), " (macro)");
    }
    evaluate_and_track();
  }
  Progress bar("train", total_steps_, " steps", comm_.rank() == 0);
  bar.set(state_.step);
  // BORA_PROFILE=<file>: LibTorch's autograd profiler records step BORA_PROFILE_STEP
  // (1-based, default 2) into <file>, a chrome://tracing JSON (bench/bench_peer.sh reads it).
  const char* profile_path = std::getenv("BORA_PROFILE");
  const char* profile_at = std::getenv("BORA_PROFILE_STEP");
  const int64_t profile_step = profile_at && *profile_at ? std::atoll(profile_at) : 2;
  while (state_.step < total_steps_ && !state_.early.stopped && pruned_rung_ == 0) {
    std::optional<torch::autograd::profiler::RecordProfile> profile;
    if (profile_path && *profile_path && state_.step + 1 == profile_step) profile.emplace(std::string(profile_path));
    StepStats s = step();
    profile.reset();
    state_.train_seconds += s.seconds;
    const int64_t done = state_.step;
    if (done % cfg_.log_every == 0 || done == total_steps_) log_step(s);
    bar.set_note(cat("loss ", s.nll, " nll/tok"));
    bar.set(done);
    if (done % eval_every_ == 0 || done == total_steps_) {
      evaluate_and_track();
      if (pruned_at(done) && comm_.rank() == 0)
        BORA_INFO("pruned at rung ", pruned_rung_, " (step ", done, "): checkpoint, results, and out; resume with "
                  "prune = none to train it to its end");
    }
    if (s.stop || s.checkpoint_due || checkpointer_->due_by_steps(done)) save_checkpoint();
    if (s.stop) {
      bar.finish();
      if (comm_.rank() == 0)
        BORA_INFO("stopping at step ", done, " for SIGTERM/SIGUSR1: checkpoint ", last_checkpoint_,
                  " is complete; exit code 75 asks the job script to requeue (resume = auto continues)");
      return false;
    }
  }
  bar.finish();
  if (last_checkpoint_step_ != state_.step) save_checkpoint();  // the end of training
  finish();
  return true;
}

std::string Trainer::save_checkpoint() {
  torch::NoGradGuard no_grad;
  Stopwatch watch;
  CheckpointPayload p;
  // The rows of this rank's tasks, and (rank 0) Theta or the shared adapter: the
  // names come from the table that resume() reads back through.
  for (const StateTensor& t : state_tensors(*plan_, cfg_.bora.unified(), tensors(), comm_.rank() == 0)) {
    if (t.task.empty()) {
      p.shared.emplace_back(t.key, t.tensor);
    } else {
      if (p.tasks.empty() || p.tasks.back().first != t.task) p.tasks.emplace_back(t.task, NamedTensors{});
      p.tasks.back().second.emplace_back(t.key, t.tensor);
    }
  }
  state_.rank_seconds = rank_seconds_before_ + life_.seconds() * comm_.size();
  if (comm_.rank() == 0) p.meta = checkpoint_meta();
  {
    at::Generator cpu = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(cpu.mutex());
    p.rng.emplace_back("cpu", cpu.get_state());
  }
  if (model_->device().is_cuda()) {
    at::Generator gpu = at::globalContext().defaultGenerator(model_->device());
    std::lock_guard<std::mutex> lock(gpu.mutex());
    p.rng.emplace_back("cuda", gpu.get_state());
  }
  checkpointer_->protect_step(state_.early.best_step);
  last_checkpoint_ = checkpointer_->save(state_.step, p);
  last_checkpoint_step_ = state_.step;
  if (comm_.rank() == 0)
    BORA_INFO("checkpoint at step ", state_.step, ": ", last_checkpoint_, " (", watch.seconds(), " s)");
  return last_checkpoint_;
}

OrderedJson Trainer::checkpoint_meta() const {
  const std::map<std::string, std::string> config = parse_resolved_ini(resolved_ini_);
  const std::set<std::string> safe = DefaultOptions().table.resume_safe_keys();
  std::string defining;
  for (const auto& [k, v] : config)
    if (!safe.count(k)) defining += k + "=" + v + "\n";
  OrderedJson meta = {
      {"format", "bora-checkpoint"},
      {"version", kCheckpointFormatVersion},
      {"step", state_.step},
      {"total_steps", total_steps_},
      {"world_size", comm_.size()},
      {"tasks", plan_->names()},
      {"row_size", bank_->row_size()},
      // The sampler and the schedule are pure functions of (seed, step): their
      // state is the step; these fields say so for a reader of the file.
      {"sampler", {{"kind", name_of(kSamplerNames, cfg_.sampler)}, {"seed", cfg_.seed}, {"next_step", state_.step}}},
      {"lr_schedule",
       {{"kind", name_of(kLrScheduleNames, cfg_.optim.schedule)}, {"next_lr", cfg_.lr_at(state_.step, total_steps_)}}},
      {"adamw_steps", {{"rows", rows_opt_->steps()}, {"theta", theta_opt_ ? theta_opt_->steps() : 0}}}};
  state_.to_meta(meta);
  meta["config_hash"] = hex64(hash64(defining));
  meta["manifest_hash"] = manifest_hash_;
  meta["config"] = config;
  return meta;
}

void Trainer::check_resumable(const Json& meta) const {
  const auto saved = meta.at("config").get<std::map<std::string, std::string>>();
  // Every option's default stands in for keys that checkpoints of an older bora lack.
  const DefaultOptions defaults;
  const std::vector<std::string> diff = run_defining_differences(saved, parse_resolved_ini(resolved_ini_),
                                                                 defaults.table);
  if (!diff.empty()) {
    std::string list, safe;
    for (const auto& d : diff) list += (list.empty() ? "" : "; ") + d;
    for (const auto& k : defaults.table.resume_safe_keys()) safe += (safe.empty() ? "" : ", ") + k;
    BORA_THROW(ConfigError, "cannot resume: the configuration differs from the checkpoint's in run-defining keys (",
               list, "); only ", safe, " may change");
  }
  const int64_t saved_total = meta.value("total_steps", total_steps_);
  BORA_CHECK(saved_total == total_steps_ || cfg_.optim.schedule == LrSchedule::Constant, ConfigError,
             "cannot resume with another budget (", saved_total, " -> ", total_steps_, " steps): the ",
             name_of(kLrScheduleNames, cfg_.optim.schedule), " schedule depends on the total number of steps");
  BORA_CHECK(total_steps_ >= meta.value("step", int64_t(0)), ConfigError, "cannot resume: the checkpoint is at step ",
             meta.value("step", int64_t(0)), ", beyond this run's budget of ", total_steps_, " steps");
  BORA_CHECK(meta.at("tasks").get<std::vector<std::string>>() == plan_->names(), ConfigError,
             "cannot resume: the checkpoint's tasks differ from this run's (the dataset changed?)");
  BORA_CHECK(meta.value("manifest_hash", std::string()) == manifest_hash_,
             ConfigError, "cannot resume: the dataset ", cfg_.data, " is not the one the checkpoint was trained on "
             "(its manifest.json differs)");
  BORA_CHECK(meta.value("row_size", int64_t(-1)) == bank_->row_size(), CheckpointError, "cannot resume: the checkpoint's "
             "adapters have ", meta.value("row_size", int64_t(-1)), " parameters per task, this run's ", bank_->row_size());
  BORA_CHECK(cfg_.sampler != SamplerKind::Balanced || meta.value("world_size", 0) == comm_.size(), ConfigError,
             "cannot resume a sampler = balanced run on ", comm_.size(), " ranks: it was saved on ",
             meta.value("world_size", 0), " and its batches depend on the partition");
}

void Trainer::resume() {
  torch::NoGradGuard no_grad;
  state_.early.best_rows = torch::empty_like(bank_->rows());
  state_.early.best_theta = theta_.defined() ? torch::empty_like(theta_) : torch::Tensor();
  std::map<std::string, torch::Tensor> rng;
  // Each tensor this rank needs is read once, straight into the rows, moments and
  // best copies (a checkpoint that fails verification is overwritten by the next
  // candidate).
  auto load = [&](const OpenedCheckpoint& ck) {
    std::map<std::string, torch::Tensor> wanted;
    for (const StateTensor& t : state_tensors(*plan_, cfg_.bora.unified(), tensors(), /*with_shared=*/true))
      wanted[t.stored_name()] = t.tensor;
    // The generator states, on the same world size only (rank r's stream then
    // continues where rank r left it); the read adds them as new tensors.
    const std::string rng_prefix = checkpoint_rng_prefix(comm_.rank());
    if (ck.meta.value("world_size", 0) == comm_.size())
      for (const std::string& name : ck.names_with_prefix(rng_prefix)) wanted[name] = torch::Tensor();
    rng.clear();
    Checkpointer::read_tensors(ck, wanted);
    for (const auto& [name, t] : wanted)
      if (name.rfind(rng_prefix, 0) == 0) rng[name.substr(rng_prefix.size())] = t;
  };
  std::optional<OpenedCheckpoint> ck =
      checkpointer_->open_for_resume([this](const Json& m) { check_resumable(m); }, load);
  if (!ck) {
    state_.early.best_rows = torch::Tensor();
    state_.early.best_theta = torch::Tensor();
    return;
  }
  const Json& m = ck->meta;
  rows_opt_->set_steps(m.at("adamw_steps").at("rows").get<int64_t>());
  if (theta_opt_) theta_opt_->set_steps(m.at("adamw_steps").at("theta").get<int64_t>());
  state_.from_meta(m);
  rank_seconds_before_ = state_.rank_seconds;
  // patience is resume-safe: the stop is re-decided under the current value, so raising
  // it (or 0, off) continues an early-stopped run exactly as if it had been set from
  // the start.
  state_.early.stopped = state_.early.exhausted(cfg_.patience);
  if (rng.count("cpu")) {
    at::Generator cpu = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(cpu.mutex());
    cpu.set_state(rng.at("cpu"));
  }
  if (model_->device().is_cuda() && rng.count("cuda")) {
    at::Generator gpu = at::globalContext().defaultGenerator(model_->device());
    std::lock_guard<std::mutex> lock(gpu.mutex());
    gpu.set_state(rng.at("cuda"));
  }
  if (rng.empty() && cfg_.adapter.dropout > 0 && comm_.rank() == 0)
    BORA_WARN("resuming on ", comm_.size(), " ranks a run saved on ", m.value("world_size", 0),
              ": adapter dropout draws new random masks from here on");
  resumed_from_ = ck->dir;
  last_checkpoint_ = ck->dir;
  last_checkpoint_step_ = state_.step;
  run_->append_metrics(
      OrderedJson{{"event", "resume"}, {"step", state_.step}, {"checkpoint", ck->dir}, {"ranks", comm_.size()}});
}

void Trainer::finish() {
  // The best adapters are the final adapters.
  {
    torch::NoGradGuard g;
    bank_->rows().copy_(state_.early.best_rows);
    if (theta_.defined()) theta_.copy_(state_.early.best_theta);
  }
  RunOutcome outcome;
  outcome.test = evaluate(Split::Test);
  OrderedJson j = {{"eval", "test"}, {"step", state_.early.best_step}};
  j.update(summary_json(outcome.test));
  run_->append_metrics(j);
  std::vector<double> by_slot;
  torch::Tensor d = theta_.defined() ? distance_to_theta(bank_->rows(), theta_).cpu() : torch::Tensor();
  for (int64_t slot = 0; slot < plan_->num_local(); ++slot)
    by_slot.push_back(d.defined() ? d[plan_->bank_row(slot)].item<double>() : 0.0);
  outcome.distances = plan_->gather_by_task(comm_, by_slot);
  outcome.convergence = assess_convergence(state_.early.history, state_.early.stopped, cfg_.patience,
                                           cfg_.converge_tol);
  if (pruned_rung_ > 0) {
    outcome.convergence.converged = false;
    outcome.convergence.reason = cat("pruned at rung ", pruned_rung_, " (step ", pruned_rung_ * eval_every_, ") by ASHA, eta = ",
                                     cfg_.prune.eta, ": resume with prune = none to train it to its end");
  }
  outcome.pruned_rung = pruned_rung_;
  outcome.pruned_step = pruned_rung_ * eval_every_;
  outcome.total_steps = total_steps_;
  outcome.adapter = bank_->spec().describe();
  state_.rank_seconds = rank_seconds_before_ + life_.seconds() * comm_.size();
  write_results(*run_, cfg_, *plan_, state_, outcome);
  if (cfg_.export_adapters) export_adapters(comm_, *run_, *plan_, *bank_, *model_, theta_, cfg_.model);
  if (comm_.rank() == 0) {
    BORA_INFO("done: best step ", state_.early.best_step, ", validation perplexity ", state_.best_val.macro_ppl(),
              ", test perplexity ", outcome.test.macro_ppl(), "; results in ", run_->path("results.md"));
    if (!outcome.convergence.converged && pruned_rung_ == 0)
      BORA_WARN("not converged: ", outcome.convergence.reason, ". Its results are those of an unfinished run: raise ",
                cfg_.max_steps > 0 ? cat("max_steps (now ", cfg_.max_steps, ")") : cat("epochs (now ", cfg_.epochs, ")"),
                " and run again with resume = auto to continue from the last checkpoint "
                "(launch/sweep.sh --until_converged does this for a sweep)");
  }
}

}  // namespace bora
