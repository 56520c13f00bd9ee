#include "train/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/cuda.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <set>

#include "adapters/export.h"
#include "adapters/load.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/options.h"
#include "core/progress.h"
#include "dist/partition.h"
#include "model/safetensors.h"
#include "model/staging.h"
#include "model/tokenizer.h"

namespace bora {
namespace {

// Every rank's (run task -> value) pairs, assembled on every rank.
std::vector<double> gather_task_values(Communicator& comm, const std::vector<int64_t>& local_tasks,
                                       const std::vector<double>& values, int64_t num_tasks) {
  std::string mine(local_tasks.size() * 16, '\0');
  for (size_t i = 0; i < local_tasks.size(); ++i) {
    std::memcpy(mine.data() + 16 * i, &local_tasks[i], 8);
    std::memcpy(mine.data() + 16 * i + 8, &values[i], 8);
  }
  std::vector<double> all(static_cast<size_t>(num_tasks), NAN);
  for (const auto& part : comm.all_gather_bytes(mine))
    for (size_t off = 0; off + 16 <= part.size(); off += 16) {
      int64_t t;
      double v;
      std::memcpy(&t, part.data() + off, 8);
      std::memcpy(&v, part.data() + off + 8, 8);
      BORA_CHECK(t >= 0 && t < num_tasks, DistError, "gathered value names task ", t);
      all[static_cast<size_t>(t)] = v;
    }
  return all;
}

// CPU seconds of this process, all threads together (user + system).
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

torch::Device pick_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name == "cuda") {
    BORA_CHECK(torch::cuda::is_available(), ConfigError, "device = cuda but no CUDA device is available");
    return torch::Device(torch::kCUDA);
  }
  return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
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

// Per-task evaluation sums for checkpoints (the summary is recomputed on load).
OrderedJson eval_sums_json(const EvalSummary& s) {
  OrderedJson a = OrderedJson::array();
  for (const auto& t : s.tasks) a.push_back(OrderedJson{{"nll_sum", t.nll_sum}, {"tokens", t.tokens}});
  return a;
}

EvalSummary eval_sums_from_json(const Json& a) {
  std::vector<TaskEval> tasks;
  for (const auto& e : a) tasks.push_back({e.at("nll_sum").get<double>(), e.at("tokens").get<int64_t>()});
  return tasks.empty() ? EvalSummary{} : summarize(std::move(tasks));
}

OrderedJson summary_json(const EvalSummary& s) {
  return OrderedJson{{"macro_ppl", s.macro_ppl()}, {"micro_ppl", s.micro_ppl()},
                     {"macro_nll", s.macro_nll}, {"micro_nll", s.micro_nll}};
}

}  // namespace

Trainer::Trainer(TrainConfig config, std::string resolved_ini, Communicator& comm)
    : cfg_(std::move(config)), resolved_ini_(std::move(resolved_ini)), comm_(comm) {
  cfg_.validate();
  // The lock first: a folder another job writes in is refused before anything in
  // it is touched (config.ini, metrics.jsonl, checkpoints).
  run_ = std::make_unique<RunFolder>(cfg_.run_dir, comm_.rank() == 0, cfg_.lock);
  prior_kind_ = parse_prior(cfg_.bora.prior);
  setup_tasks();
  setup_model_and_data();
  init_adapters();
  checkpointer_ = std::make_unique<Checkpointer>(cfg_.checkpoint, cfg_.run_dir, comm_);
  checkpointer_->set_commit_guard([this](const std::string& action) { run_->verify_lock(action); });
  resume();
  // Only now: a refused resume must not overwrite the configuration of the run.
  run_->write_text("config.ini", resolved_ini_);
}

Trainer::~Trainer() = default;

void Trainer::setup_tasks() {
  Manifest m = Manifest::read(cfg_.data);
  manifest_hash_ = hex64(hash64(read_file(cfg_.data + "/manifest.json")));  // the dataset's identity in checkpoints
  std::set<std::string> wanted(cfg_.tasks.begin(), cfg_.tasks.end());
  BORA_CHECK(wanted.size() == cfg_.tasks.size(), ConfigError, "tasks lists a task twice");
  for (const auto& name : cfg_.tasks)
    BORA_CHECK(m.find_task(name) >= 0, DataError, "task '", name, "' named in tasks is not in the dataset ",
               cfg_.data);
  for (size_t i = 0; i < m.tasks.size(); ++i) {
    const TaskInfo& t = m.tasks[i];
    if (!wanted.empty() && !wanted.count(t.name)) continue;
    BORA_CHECK(t.split(Split::Train).sequences > 0, DataError, "task '", t.name, "' has no training sequences");
    task_names_.push_back(t.name);
    manifest_index_.push_back(static_cast<int64_t>(i));
    train_docs_.push_back(t.split(Split::Train).sequences);
    train_targets_.push_back(t.split(Split::Train).target_tokens);
  }
  BORA_CHECK(!task_names_.empty(), DataError, "the dataset ", cfg_.data, " has no tasks");
  for (size_t t = 0; t < task_names_.size(); ++t) {
    const std::string& w = cfg_.bora.likelihood_weight;
    weight_.push_back(w == "documents" ? double(train_docs_[t]) : w == "tokens" ? double(train_targets_[t]) : 1.0);
  }
  owner_ = partition_tasks(train_targets_, comm_.size());
  local_of_.assign(task_names_.size(), -1);
  for (size_t t = 0; t < task_names_.size(); ++t)
    if (owner_[t] == comm_.rank()) {
      local_of_[t] = static_cast<int64_t>(local_.size());
      local_.push_back(static_cast<int64_t>(t));
    }
  if (comm_.rank() == 0) {
    std::string table = partition_table(owner_, train_targets_, task_names_, comm_.size());
    BORA_INFO(table.substr(0, table.size() - 1));
  }
}

void Trainer::setup_model_and_data() {
  const torch::Device device = pick_device(cfg_.device);
  LoadOptions lo;
  // float16 on the CPU: few CPU kernels have fast (or any) half paths, and its 5-bit
  // exponent is what loss scaling exists for on GPUs; bfloat16 is the CPU's half.
  BORA_CHECK(cfg_.dtype != "float16" || device.is_cuda(), ConfigError,
             "dtype = float16 needs a CUDA device (this run is on ", device.str(), "); use dtype = bfloat16 on the CPU");
  lo.dtype = cfg_.dtype == "bfloat16" ? torch::kBFloat16 : cfg_.dtype == "float16" ? torch::kFloat16 : torch::kFloat32;
  lo.device = device;
  Stopwatch watch;
  model_ = load_causal_lm(cfg_.model, lo);
  Json model_cfg = read_json_file(cfg_.model + "/config.json");
  pad_id_ = model_cfg.value("pad_token_id", int64_t(1));

  std::vector<std::string> mine;
  for (int64_t t : local_) mine.push_back(task_names_[static_cast<size_t>(t)]);
  reader_ = std::make_unique<DatasetReader>(cfg_.data, mine);
  Tokenizer tok = Tokenizer::from_folder(cfg_.tokenizer.empty() ? cfg_.model : cfg_.tokenizer);
  reader_->check_tokenizer(tok.identity_hex(), model_->shape().vocab_size);

  int64_t total_train = 0;
  for (int64_t n : train_docs_) total_train += n;
  BORA_CHECK(cfg_.batch_size <= total_train, ConfigError, "batch_size ", cfg_.batch_size,
             " is larger than the training split (", total_train, " sequences in ", task_names_.size(), " tasks)");
  BORA_INFO("loaded ", cfg_.model, " (", model_->shape().num_layers, " layers, hidden ", model_->shape().hidden_size,
            ", ", c10::toString(lo.dtype), " on ", device.str(), ") and ", local_.size(), " of ", task_names_.size(),
            " tasks in ", watch.seconds(), " s");

  std::vector<int64_t> manifest_local, bank_rows;
  for (size_t i = 0; i < local_.size(); ++i) {
    manifest_local.push_back(manifest_index_[static_cast<size_t>(local_[i])]);
    bank_rows.push_back(cfg_.bora.unified() ? 0 : static_cast<int64_t>(i));
  }
  builder_ = std::make_unique<BatchBuilder>(*reader_, pad_id_, device);
  evaluator_ = std::make_unique<Evaluator>(*model_, *reader_, manifest_local, bank_rows, cfg_.eval_batch, pad_id_);
}

void Trainer::init_adapters() {
  torch::NoGradGuard no_grad;
  const AdapterSpec spec = AdapterSpec::resolve(cfg_.adapter, model_->shape());
  const torch::Device device = model_->device();
  const bool unified = cfg_.bora.unified();
  bank_ = std::make_unique<AdapterBank>(spec, model_->shape(), unified ? 1 : int64_t(local_.size()), device);
  const torch::Tensor start =
      cfg_.init_adapter.empty() ? bank_->preset_row() : import_row(spec, *model_, cfg_.init_adapter).to(device);
  if (unified) bank_->rows()[0].copy_(start);
  if (!unified) {
    // The reference initialisation: Theta gets the preset's init (or init_adapter's), every theta_d
    // = Theta + N(0, init_noise^2), with noise seeded by (seed, task name): a task
    // starts the same whichever rank owns it and whichever other tasks share the run.
    theta_ = start.clone();
    for (size_t i = 0; i < local_.size(); ++i) {
      const std::string& name = task_names_[static_cast<size_t>(local_[i])];
      auto gen = at::detail::createCPUGenerator(hash64(name.data(), name.size(), static_cast<uint64_t>(cfg_.seed)));
      torch::Tensor noise = torch::randn({bank_->row_size()}, gen, torch::kFloat32) * cfg_.bora.init_noise;
      bank_->rows()[static_cast<int64_t>(i)].copy_(theta_ + noise.to(device));
    }
  }
  AdamWOptions ao{cfg_.beta1, cfg_.beta2, cfg_.eps, cfg_.weight_decay};
  rows_opt_ = std::make_unique<AdamW>(bank_->rows(), ao);
  if (!unified && cfg_.bora.theta_update == "adam") theta_opt_ = std::make_unique<AdamW>(theta_, ao);

  GlobalSampler global(train_docs_, cfg_.batch_size, static_cast<uint64_t>(cfg_.seed));
  total_steps_ = cfg_.max_steps > 0 ? cfg_.max_steps : cfg_.epochs * global.steps_per_epoch();
  if (cfg_.sampler == "global") {
    sampler_ = std::make_unique<GlobalSampler>(std::move(global));
  } else {
    // balanced: this rank's own share of every batch, from its own tasks only.
    std::vector<int64_t> sizes;
    for (int64_t t : local_) sizes.push_back(train_docs_[static_cast<size_t>(t)]);
    const int64_t share = cfg_.batch_size / comm_.size() + (comm_.rank() < cfg_.batch_size % comm_.size());
    BORA_CHECK(share > 0, ConfigError, "sampler = balanced needs batch_size >= ranks");
    sampler_ = std::make_unique<GlobalSampler>(sizes, share,
                                               static_cast<uint64_t>(cfg_.seed) + 7919ULL * (comm_.rank() + 1));
  }
  if (comm_.rank() == 0)
    BORA_INFO("adapter ", spec.describe(), ": ", bank_->row_size(), " trainable parameters per task; tau = ",
              cfg_.bora.tau, ", lr = ", cfg_.effective_lr(), ", ", total_steps_, " steps (",
              global_steps_per_epoch(), " per epoch)");
}

int64_t Trainer::global_steps_per_epoch() const {
  int64_t total = 0;
  for (int64_t n : train_docs_) total += n;
  return (total + cfg_.batch_size - 1) / cfg_.batch_size;
}

torch::Tensor Trainer::task_row(int64_t local_index) const {
  return bank_->rows()[cfg_.bora.unified() ? 0 : local_index];
}

std::vector<RowRef> Trainer::local_rows(int64_t step) {
  std::vector<RowRef> rows;
  const bool unified = cfg_.bora.unified();
  for (const SeqRef& ref : sampler_->batch(step)) {
    // The global sampler names run tasks; the balanced one names local tasks.
    int64_t task = cfg_.sampler == "global" ? ref.task : local_[static_cast<size_t>(ref.task)];
    int64_t local = local_of_[static_cast<size_t>(task)];
    if (local < 0) continue;
    rows.push_back({manifest_index_[static_cast<size_t>(task)], ref.index, unified ? 0 : local, local});
  }
  // Group by task (keeping the drawn order inside a task): the bank then runs one
  // segment per task.
  std::stable_sort(rows.begin(), rows.end(), [](const RowRef& a, const RowRef& b) { return a.slot < b.slot; });
  return rows;
}

void Trainer::check_replicas() {
  torch::Tensor replicated = cfg_.bora.unified() ? bank_->rows()[0] : theta_;
  torch::Tensor cpu = replicated.to(torch::kCPU).contiguous();
  const uint64_t h = hash64(cpu.data_ptr(), cpu.nbytes());
  const std::vector<std::string> all = comm_.all_gather_bytes(std::string(reinterpret_cast<const char*>(&h), 8));
  for (size_t r = 0; r < all.size(); ++r)
    BORA_CHECK(all[r] == all[0], DistError, "replicas of ", cfg_.bora.unified() ? "the shared adapter" : "Theta",
               " differ at step ", step_, ": rank ", r, " has checksum ",
               hex64(*reinterpret_cast<const uint64_t*>(all[r].data())), ", rank 0 has ",
               hex64(*reinterpret_cast<const uint64_t*>(all[0].data())));
}

StepStats Trainer::step() {
  // Fault injection for the distributed tests (docs/distributed.md): the named rank
  // throws at the named step, as a crashing rank would.
  if (const char* f = std::getenv("BORA_TEST_FAIL_AT"); f && comm_.size() > 0) {
    int rank = -1;
    long long at = -1;
    if (std::sscanf(f, "%d:%lld", &rank, &at) == 2 && rank == comm_.rank() && at == step_ + 1)
      BORA_THROW(InternalError, "injected failure at step ", at, " (BORA_TEST_FAIL_AT=", f, ")");
  }
  // No host synchronisation until the step's scalars are read, once, after its
  // all-reduce: the losses, sums and non-finite flags are accumulated on the device
  // straight into the all-reduce buffer, batches are copied without waiting, and
  // the model is told the padding side and target positions (batch.h). On CUDA the
  // host thus runs ahead queuing kernels, and the times below are the host's.
  StepStats st;
  const double cpu0 = process_cpu_seconds();
  Stopwatch total, watch;
  const bool unified = cfg_.bora.unified();
  const bool mean_update = !unified && cfg_.bora.theta_update == "mean";
  const torch::Device device = model_->device();
  const std::vector<RowRef> rows = local_rows(step_);

  // Target tokens of each local task in the global minibatch: NLL_d's denominator.
  std::vector<int64_t> task_tokens(local_.size(), 0);
  for (const auto& r : rows)
    task_tokens[static_cast<size_t>(r.slot)] +=
        reader_->length(r.task, Split::Train, r.index) - reader_->prompt_len(r.task, Split::Train, r.index);
  const int64_t P = bank_->row_size();
  torch::Tensor buffer = torch::zeros({P + kStepScalars}, torch::TensorOptions(torch::kFloat64).device(device));
  torch::Tensor head = buffer.narrow(0, 0, P);
  auto scalars = [&](int64_t first, int64_t n) { return buffer.narrow(0, P + first, n); };
  const std::vector<std::vector<RowRef>> chunks = pack_by_task(rows, cfg_.micro_batch);
  std::vector<torch::Tensor> chunk_nll;  // per-row NLL sums, read only to name a non-finite task
  st.data_s += watch.seconds();

  for (const auto& chunk : chunks) {
    watch.reset();
    MicroBatch mb = builder_->build(chunk, Split::Train);
    std::vector<float> w(chunk.size());
    for (size_t b = 0; b < chunk.size(); ++b) {
      const auto slot = static_cast<size_t>(chunk[b].slot);
      w[b] = static_cast<float>(weight_[static_cast<size_t>(local_[slot])] / double(std::max<int64_t>(1, task_tokens[slot])));
    }
    torch::Tensor row_weight = to_device_async(torch::tensor(w), device);
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
      scalars(kLikelihood, 3).add_(
          torch::stack({loss.detach(), nll.sum(), torch::isfinite(nll).logical_not().sum().to(torch::kFloat32)})
              .to(torch::kFloat64));
      chunk_nll.push_back(nll);
    }
    st.sequences += static_cast<int64_t>(chunk.size());
    st.compute_s += watch.seconds();
  }

  // The prior over this rank's tasks, in closed form.
  watch.reset();
  torch::NoGradGuard no_grad;
  if (!unified && cfg_.bora.tau > 0) {
    PriorTerms terms = prior_terms(prior_kind_, cfg_.bora.tau, bank_->rows(), theta_, bank_->layout());
    bank_->grad_rows().add_(terms.grad_rows);
    scalars(kPrior, 2).copy_(torch::stack({terms.value, torch::isfinite(terms.value).logical_not().to(torch::kFloat64)}));
    if (!mean_update) head.copy_(terms.grad_theta);
  }
  if (unified) head.copy_(bank_->grad_rows()[0]);
  if (cfg_.grad_clip > 0 && !unified) scalars(kRowsGradSq, 1).copy_(bank_->grad_rows().to(torch::kFloat64).pow(2).sum());
  st.local_sequences = st.sequences;  // before the all-reduce replaces it by the global count
  // The stop and checkpoint-time flags ride in the same all-reduce: every rank
  // learns that some rank got a signal (or that rank 0's clock says it is time)
  // at the same step, without a collective of their own.
  int64_t tokens_local = 0;
  for (int64_t n : task_tokens) tokens_local += n;
  const bool time_due = comm_.rank() == 0 && checkpointer_->due_by_time();
  const double known[] = {double(tokens_local), double(st.sequences), stop_requested() ? 1.0 : 0.0, time_due ? 1.0 : 0.0};
  static_assert(sizeof known / sizeof known[0] == kStepScalars - kTokens, "the host's scalars end the buffer");
  torch::Tensor host = torch::empty({kStepScalars - kTokens}, staging_options(device, torch::kFloat64));
  std::memcpy(host.data_ptr<double>(), known, sizeof known);
  scalars(kTokens, kStepScalars - kTokens).copy_(host, /*non_blocking=*/device.is_cuda());
  st.compute_s += watch.seconds();

  // THE all-reduce of the step (mean mode reduces after the rows' update instead),
  // then the one read of the step's scalars, and the verdict on non-finite values
  // before the state they spoil can reach a checkpoint.
  std::vector<double> a;
  auto reduce_and_read = [&] {
    watch.reset();
    comm_.all_reduce_sum(buffer);
    torch::Tensor s = scalars(0, kStepScalars).cpu();
    st.allreduce_s += watch.seconds();
    a.assign(s.data_ptr<double>(), s.data_ptr<double>() + kStepScalars);
    st.loss = a[kLikelihood] + a[kPrior];
    st.prior = a[kPrior];
    st.nll = a[kTokens] > 0 ? a[kNllSum] / a[kTokens] : NAN;
    st.tokens = static_cast<int64_t>(a[kTokens]);
    st.sequences = static_cast<int64_t>(a[kSequences]);
    st.stop = a[kStop] > 0;
    st.checkpoint_due = a[kCheckpointDue] > 0;
    if (a[kBadLossRows] > 0) throw_non_finite_loss(chunks, chunk_nll);
    BORA_CHECK(a[kBadPrior] == 0, NumericError, "non-finite prior at step ", step_ + 1, " (tau = ", cfg_.bora.tau,
               "; last good checkpoint: ", last_checkpoint_.empty() ? "none" : last_checkpoint_, ")");
  };
  // The global ||rows' gradient||^2 before the all-reduce is read (grad_clip): in
  // mean mode the buffer is reduced after the step, so it takes a scalar collective.
  const double mean_rows_sq = cfg_.grad_clip > 0 && mean_update
                                  ? comm_.all_reduce_scalar(scalars(kRowsGradSq, 1).item<double>(), "sum") : 0;
  if (!mean_update) {
    reduce_and_read();
    if (unified) bank_->grad_rows()[0].copy_(head);
  }

  watch.reset();
  st.lr = cfg_.lr_at(step_, total_steps_);
  torch::Tensor theta_grad = theta_opt_ ? head.to(torch::kFloat32) : torch::Tensor();
  if (cfg_.grad_clip > 0) clip_gradients(unified ? bank_->grad_rows().to(torch::kFloat64).pow(2).sum()
                                                 : mean_update ? torch::full({}, mean_rows_sq, buffer.options())
                                                               : scalars(kRowsGradSq, 1)[0],
                                         theta_grad);
  rows_opt_->step(bank_->grad_rows(), st.lr);
  if (theta_opt_) theta_opt_->step(theta_grad, st.lr);
  bank_->zero_grad();
  st.optimizer_s += watch.seconds();
  if (mean_update) {
    // Theta <- the mean of all theta_d, after the step: sum over local rows, reduce.
    head.copy_(bank_->rows().to(torch::kFloat64).sum(0));
    reduce_and_read();
    theta_.copy_(head / double(num_tasks()));
  }
  ++step_;
  if (cfg_.replica_check_every > 0 && step_ % cfg_.replica_check_every == 0 && comm_.size() > 1) check_replicas();
  st.step = step_;
  st.seconds = total.seconds();
  st.cpu_s = process_cpu_seconds() - cpu0;
  train_tokens_ += st.tokens;
  return st;
}

void Trainer::clip_gradients(const torch::Tensor& rows_sq, torch::Tensor& theta_grad) {
  // The factor clip / (norm + 1e-6) when the norm exceeds grad_clip, else exactly 1,
  // decided on the device: multiplying by 1 changes no bit, and no host read.
  torch::Tensor sq = rows_sq;
  if (theta_grad.defined()) sq = sq + theta_grad.to(torch::kFloat64).pow(2).sum();
  const torch::Tensor norm = sq.sqrt();
  const torch::Tensor clip = torch::full({}, cfg_.grad_clip, norm.options());
  const torch::Tensor f = torch::where(norm > clip, clip / (norm + 1e-6), torch::ones_like(norm)).to(torch::kFloat32);
  bank_->grad_rows().mul_(f);
  if (theta_grad.defined()) theta_grad.mul_(f);
}

void Trainer::throw_non_finite_loss(const std::vector<std::vector<RowRef>>& chunks,
                                    const std::vector<torch::Tensor>& chunk_nll) {
  // Every rank knows from the all-reduced count that some row is not finite; the
  // ranks that own one name their first such task, and all of them throw the same
  // line, naming the first task in rank order (a collective on the failure path only).
  std::string mine;
  for (size_t c = 0; c < chunks.size() && mine.empty(); ++c) {
    torch::Tensor bad = torch::isfinite(chunk_nll[c]).logical_not().cpu();
    for (size_t b = 0; b < chunks[c].size(); ++b)
      if (bad[static_cast<int64_t>(b)].item<bool>()) {
        mine = task_names_[static_cast<size_t>(local_[static_cast<size_t>(chunks[c][b].slot)])];
        break;
      }
  }
  std::string task = "?";
  for (const std::string& name : comm_.all_gather_bytes(mine))
    if (!name.empty()) {
      task = name;
      break;
    }
  BORA_THROW(NumericError, "non-finite loss at step ", step_ + 1, " in task '", task,
             "' (last good checkpoint: ", last_checkpoint_.empty() ? "none" : last_checkpoint_, ")");
}

EvalSummary Trainer::evaluate(Split split) {
  std::vector<TaskEval> local = evaluator_->run(bank_.get(), split);
  return summarize(gather_task_evals(comm_, local_, local, num_tasks()));
}

void Trainer::log_step(const StepStats& s) {
  const double tps = s.seconds > 0 ? double(s.tokens) / s.seconds : 0;
  OrderedJson j = {{"step", s.step},          {"epoch", double(s.step) / double(global_steps_per_epoch())},
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
  OrderedJson j = {{"eval", "validation"}, {"step", step_}};
  j.update(summary_json(val));
  run_->append_metrics(j);
  if (comm_.rank() == 0)
    BORA_INFO("step ", step_, ": validation perplexity ", val.macro_ppl(), " (macro), ", val.micro_ppl(), " (micro)");
  early_.history.emplace_back(step_, val.macro_nll);
  if (val.macro_nll < early_.best_nll) {
    torch::NoGradGuard g;
    early_.best_nll = val.macro_nll;
    early_.best_step = step_;
    early_.bad_evals = 0;
    early_.best_rows = bank_->rows().clone();
    early_.best_theta = theta_.defined() ? theta_.clone() : torch::Tensor();
    best_val_ = std::move(val);
  } else if (cfg_.patience > 0 && ++early_.bad_evals >= cfg_.patience) {
    early_.stopped = true;
    if (comm_.rank() == 0)
      BORA_INFO("early stopping at step ", step_, ": no better validation NLL in ", cfg_.patience,
                " evaluations (best at step ", early_.best_step, ")");
  }
}

bool Trainer::run() {
  install_stop_signal_handlers();
  const int64_t eval_every = cfg_.eval_every > 0 ? cfg_.eval_every : global_steps_per_epoch();
  if (step_ == 0) {
    if (cfg_.eval_base) {
      base_val_ = summarize(gather_task_evals(comm_, local_, evaluator_->run(nullptr, Split::Validation), num_tasks()));
      OrderedJson j = {{"eval", "base_validation"}, {"step", 0}};
      j.update(summary_json(base_val_));
      run_->append_metrics(j);
      if (comm_.rank() == 0) BORA_INFO("base model: validation perplexity ", base_val_.macro_ppl(), " (macro)");
    }
    evaluate_and_track();
  }
  Progress bar("train", total_steps_, " steps", comm_.rank() == 0);
  bar.set(step_);
  Stopwatch wall;
  // BORA_PROFILE=<file>: LibTorch's autograd profiler records step BORA_PROFILE_STEP
  // (1-based, default 2) into <file>, a chrome://tracing JSON (bench/bench_peer.sh reads it).
  const char* profile_path = std::getenv("BORA_PROFILE");
  const char* profile_at = std::getenv("BORA_PROFILE_STEP");
  const int64_t profile_step = profile_at && *profile_at ? std::atoll(profile_at) : 2;
  while (step_ < total_steps_ && !early_.stopped) {
    std::optional<torch::autograd::profiler::RecordProfile> profile;
    if (profile_path && *profile_path && step_ + 1 == profile_step) profile.emplace(std::string(profile_path));
    StepStats s = step();
    profile.reset();
    train_seconds_ += s.seconds;
    if (step_ % cfg_.log_every == 0 || step_ == total_steps_) log_step(s);
    bar.set_note(cat("loss ", s.nll, " nll/tok"));
    bar.set(step_);
    if (step_ % eval_every == 0 || step_ == total_steps_) evaluate_and_track();
    if (s.stop || s.checkpoint_due || checkpointer_->due_by_steps(step_)) save_checkpoint();
    if (s.stop) {
      bar.finish();
      if (comm_.rank() == 0)
        BORA_INFO("stopping at step ", step_, " for SIGTERM/SIGUSR1: checkpoint ", last_checkpoint_,
                  " is complete; exit code 75 asks the job script to requeue (resume = auto continues)");
      return false;
    }
  }
  bar.finish();
  if (last_checkpoint_step_ != step_) save_checkpoint();  // the end of training
  finish();
  return true;
}

std::string Trainer::save_checkpoint() {
  torch::NoGradGuard no_grad;
  Stopwatch watch;
  const bool unified = cfg_.bora.unified();
  // Each adapter row with its AdamW moments and early stopping's best copy.
  auto row_state = [](const torch::Tensor& theta, const AdamW* opt, int64_t row, const torch::Tensor& best) {
    NamedTensors t = {{"theta", row < 0 ? theta : theta[row]}};
    if (opt) {
      t.emplace_back("exp_avg", row < 0 ? opt->exp_avg() : opt->exp_avg()[row]);
      t.emplace_back("exp_avg_sq", row < 0 ? opt->exp_avg_sq() : opt->exp_avg_sq()[row]);
    }
    t.emplace_back("best", row < 0 ? best : best[row]);
    return t;
  };
  CheckpointPayload p;
  if (!unified)
    for (size_t i = 0; i < local_.size(); ++i)
      p.tasks.emplace_back(task_names_[static_cast<size_t>(local_[i])],
                           row_state(bank_->rows(), rows_opt_.get(), int64_t(i), early_.best_rows));
  if (comm_.rank() == 0) {
    p.shared = unified ? row_state(bank_->rows(), rows_opt_.get(), 0, early_.best_rows)
                       : row_state(theta_, theta_opt_.get(), -1, early_.best_theta);
    p.meta = checkpoint_meta();
  }
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
  checkpointer_->protect_step(early_.best_step);
  last_checkpoint_ = checkpointer_->save(step_, p);
  last_checkpoint_step_ = step_;
  if (comm_.rank() == 0) BORA_INFO("checkpoint at step ", step_, ": ", last_checkpoint_, " (", watch.seconds(), " s)");
  return last_checkpoint_;
}

OrderedJson Trainer::checkpoint_meta() const {
  const std::map<std::string, std::string> config = parse_resolved_ini(resolved_ini_);
  std::string defining;
  for (const auto& [k, v] : config)
    if (!is_resume_safe_key(k)) defining += k + "=" + v + "\n";
  auto finite_or_null = [](double v) { return std::isfinite(v) ? OrderedJson(v) : OrderedJson(nullptr); };
  OrderedJson history_json = OrderedJson::array();
  for (const auto& [step, nll] : early_.history) history_json.push_back({step, finite_or_null(nll)});
  return OrderedJson{
      {"format", "bora-checkpoint"},
      {"version", kCheckpointFormatVersion},
      {"step", step_},
      {"total_steps", total_steps_},
      {"world_size", comm_.size()},
      {"tasks", task_names_},
      {"row_size", bank_->row_size()},
      // The sampler and the schedule are pure functions of (seed, step): their
      // state is the step; these fields say so for a reader of the file.
      {"sampler", {{"kind", cfg_.sampler}, {"seed", cfg_.seed}, {"next_step", step_}}},
      {"lr_schedule", {{"kind", cfg_.lr_schedule}, {"next_lr", cfg_.lr_at(step_, total_steps_)}}},
      {"adamw_steps", {{"rows", rows_opt_->steps()}, {"theta", theta_opt_ ? theta_opt_->steps() : 0}}},
      {"early_stop",
       {{"best_nll", finite_or_null(early_.best_nll)},
        {"best_step", early_.best_step},
        {"bad_evals", early_.bad_evals},
        {"stopped", early_.stopped},
        {"history", history_json}}},
      {"base_validation", eval_sums_json(base_val_)},
      {"best_validation", eval_sums_json(best_val_)},
      {"train_seconds", train_seconds_},
      {"train_tokens", train_tokens_},
      {"config_hash", hex64(hash64(defining))},
      {"manifest_hash", manifest_hash_},
      {"config", config}};
}

void Trainer::check_resumable(const Json& meta) const {
  const auto saved = meta.at("config").get<std::map<std::string, std::string>>();
  // Every option's default, for keys that checkpoints of an older bora lack.
  TrainConfig fresh;
  OptionTable table("bora-train", "");
  fresh.declare(table);
  const std::vector<std::string> diff = run_defining_differences(saved, parse_resolved_ini(resolved_ini_), table.values());
  if (!diff.empty()) {
    std::string list;
    for (const auto& d : diff) list += (list.empty() ? "" : "; ") + d;
    BORA_THROW(ConfigError, "cannot resume: the configuration differs from the checkpoint's in run-defining keys (",
               list, "); only ", "run_dir, resume, checkpoint_*, eval_*, patience, converge_tol, epochs, max_steps, "
               "log_every, threads, device, micro_batch, replica_check_every, export_adapters, data, tokenizer, lock_* "
               "may change");
  }
  const int64_t saved_total = meta.value("total_steps", total_steps_);
  BORA_CHECK(saved_total == total_steps_ || cfg_.lr_schedule == "constant",
             ConfigError, "cannot resume with another budget (", saved_total, " -> ", total_steps_,
             " steps): the ", cfg_.lr_schedule, " schedule depends on the total number of steps");
  BORA_CHECK(total_steps_ >= meta.value("step", int64_t(0)), ConfigError, "cannot resume: the checkpoint is at step ",
             meta.value("step", int64_t(0)), ", beyond this run's budget of ", total_steps_, " steps");
  BORA_CHECK(meta.at("tasks").get<std::vector<std::string>>() == task_names_, ConfigError,
             "cannot resume: the checkpoint's tasks differ from this run's (the dataset changed?)");
  BORA_CHECK(meta.value("manifest_hash", std::string()) == manifest_hash_,
             ConfigError, "cannot resume: the dataset ", cfg_.data, " is not the one the checkpoint was trained on "
             "(its manifest.json differs)");
  BORA_CHECK(meta.value("row_size", int64_t(-1)) == bank_->row_size(), CheckpointError, "cannot resume: the checkpoint's "
             "adapters have ", meta.value("row_size", int64_t(-1)), " parameters per task, this run's ", bank_->row_size());
  BORA_CHECK(cfg_.sampler != "balanced" || meta.value("world_size", 0) == comm_.size(), ConfigError,
             "cannot resume a sampler = balanced run on ", comm_.size(), " ranks: it was saved on ",
             meta.value("world_size", 0), " and its batches depend on the partition");
}

void Trainer::resume() {
  torch::NoGradGuard no_grad;
  const bool unified = cfg_.bora.unified();
  early_.best_rows = torch::empty_like(bank_->rows());
  early_.best_theta = theta_.defined() ? torch::empty_like(theta_) : torch::Tensor();
  std::map<std::string, torch::Tensor> rng;
  // Each tensor this rank needs is read once, straight into the rows, moments and
  // best copies (a checkpoint that fails verification is overwritten by the next
  // candidate).
  auto load = [&](const OpenedCheckpoint& ck) -> std::string {
    std::map<std::string, torch::Tensor> wanted;
    // `name(key)` is the stored tensor's name ("tasks/<task>/theta", "shared/theta").
    auto add = [&](const auto& name, const torch::Tensor& theta, const AdamW* opt, int64_t row,
                   const torch::Tensor& best) {
      auto pick = [row](const torch::Tensor& t) { return row < 0 ? t : t[row]; };
      wanted[name("theta")] = pick(theta);
      wanted[name("best")] = pick(best);
      if (opt) {
        wanted[name("exp_avg")] = pick(opt->exp_avg());
        wanted[name("exp_avg_sq")] = pick(opt->exp_avg_sq());
      }
    };
    if (unified) {
      add(checkpoint_shared_tensor, bank_->rows(), rows_opt_.get(), 0, early_.best_rows);
    } else {
      for (size_t i = 0; i < local_.size(); ++i) {
        const std::string& task = task_names_[static_cast<size_t>(local_[i])];
        add([&](const std::string& key) { return checkpoint_task_tensor(task, key); }, bank_->rows(),
            rows_opt_.get(), int64_t(i), early_.best_rows);
      }
      add(checkpoint_shared_tensor, theta_, theta_opt_.get(), -1, early_.best_theta);
    }
    // The generator states, on the same world size only (rank r's stream then
    // continues where rank r left it); the read adds them as new tensors.
    const std::string rng_prefix = checkpoint_rng_prefix(comm_.rank());
    if (ck.meta.value("world_size", 0) == comm_.size())
      for (const std::string& name : ck.names_with_prefix(rng_prefix)) wanted[name] = torch::Tensor();
    std::string problem = Checkpointer::read_tensors(ck, wanted);
    rng.clear();
    if (problem.empty())
      for (const auto& [name, t] : wanted)
        if (name.rfind(rng_prefix, 0) == 0) rng[name.substr(rng_prefix.size())] = t;
    return problem;
  };
  std::optional<OpenedCheckpoint> ck =
      checkpointer_->open_for_resume([this](const Json& m) { check_resumable(m); }, load);
  if (!ck) {
    early_.best_rows = torch::Tensor();
    early_.best_theta = torch::Tensor();
    return;
  }
  const Json& m = ck->meta;
  rows_opt_->set_steps(m.at("adamw_steps").at("rows").get<int64_t>());
  if (theta_opt_) theta_opt_->set_steps(m.at("adamw_steps").at("theta").get<int64_t>());
  step_ = m.at("step").get<int64_t>();
  const Json& es = m.at("early_stop");
  early_.best_nll = es.at("best_nll").is_null() ? INFINITY : es.at("best_nll").get<double>();
  early_.best_step = es.at("best_step").get<int64_t>();
  early_.bad_evals = es.at("bad_evals").get<int64_t>();
  early_.stopped = es.at("stopped").get<bool>();
  early_.history.clear();
  for (const auto& h : es.value("history", Json::array()))  // absent in checkpoints before convergence reports
    early_.history.emplace_back(h.at(0).get<int64_t>(), h.at(1).is_null() ? INFINITY : h.at(1).get<double>());
  base_val_ = eval_sums_from_json(m.at("base_validation"));
  best_val_ = eval_sums_from_json(m.at("best_validation"));
  train_seconds_ = m.at("train_seconds").get<double>();
  train_tokens_ = m.at("train_tokens").get<int64_t>();
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
  last_checkpoint_step_ = step_;
  run_->append_metrics(OrderedJson{{"event", "resume"}, {"step", step_}, {"checkpoint", ck->dir}, {"ranks", comm_.size()}});
}

void Trainer::finish() {
  // The best adapters are the final adapters.
  {
    torch::NoGradGuard g;
    bank_->rows().copy_(early_.best_rows);
    if (theta_.defined()) theta_.copy_(early_.best_theta);
  }
  final_test_ = evaluate(Split::Test);
  OrderedJson j = {{"eval", "test"}, {"step", early_.best_step}};
  j.update(summary_json(final_test_));
  run_->append_metrics(j);
  std::vector<double> dist_local;
  torch::Tensor d = theta_.defined() ? distance_to_theta(bank_->rows(), theta_).cpu() : torch::Tensor();
  for (size_t i = 0; i < local_.size(); ++i) dist_local.push_back(d.defined() ? d[int64_t(i)].item<double>() : 0.0);
  distances_ = gather_task_values(comm_, local_, dist_local, num_tasks());
  convergence_ = assess_convergence(early_.history, early_.stopped, cfg_.patience, cfg_.converge_tol);
  write_results();
  if (cfg_.export_adapters) export_adapters();
  if (comm_.rank() == 0) {
    BORA_INFO("done: best step ", early_.best_step, ", validation perplexity ", best_val_.macro_ppl(),
              ", test perplexity ", final_test_.macro_ppl(), "; results in ", run_->path("results.md"));
    if (!convergence_.converged)
      BORA_WARN("not converged: ", convergence_.reason, ". Its results are those of an unfinished run: raise ",
                cfg_.max_steps > 0 ? cat("max_steps (now ", cfg_.max_steps, ")") : cat("epochs (now ", cfg_.epochs, ")"),
                " and run again with resume = auto to continue from the last checkpoint "
                "(launch/sweep.sh --until_converged does this for a sweep)");
  }
}

void Trainer::write_results() {
  if (comm_.rank() != 0) return;
  const double tau = cfg_.bora.tau;
  OrderedJson tasks = OrderedJson::array();
  for (size_t t = 0; t < task_names_.size(); ++t) {
    OrderedJson e = {{"name", task_names_[t]},
                     {"train_documents", train_docs_[t]},
                     {"train_target_tokens", train_targets_[t]},
                     {"validation_ppl", best_val_.tasks[t].ppl()},
                     {"test_ppl", final_test_.tasks[t].ppl()},
                     {"validation_tokens", best_val_.tasks[t].tokens},
                     {"test_tokens", final_test_.tasks[t].tokens},
                     {"distance_to_theta", distances_[t]}};
    if (!base_val_.tasks.empty()) e["base_validation_ppl"] = base_val_.tasks[t].ppl();
    tasks.push_back(e);
  }
  OrderedJson r = {{"tau", std::isinf(tau) ? OrderedJson("inf") : OrderedJson(tau)},
                   {"lr", cfg_.effective_lr()},
                   {"prior", cfg_.bora.prior},
                   {"adapter", bank_->spec().describe()},
                   {"ranks", comm_.size()},
                   {"steps", step_},
                   {"best_step", early_.best_step},
                   {"stopped_early", early_.stopped},
                   {"converged", convergence_.converged},
                   {"convergence",
                    {{"reason", convergence_.reason},
                     {"evaluations", convergence_.evaluations},
                     {"evaluations_since_best", convergence_.evals_since_best},
                     {"recent_relative_drop", std::isfinite(convergence_.recent_drop) ? OrderedJson(convergence_.recent_drop)
                                                                                      : OrderedJson(nullptr)},
                     {"patience", cfg_.patience},
                     {"tolerance", cfg_.converge_tol}}},
                   {"budget",
                    {{"epochs", cfg_.epochs},
                     {"max_steps", cfg_.max_steps},
                     {"total_steps", total_steps_},
                     {"steps_per_epoch", global_steps_per_epoch()}}},
                   {"lr_rule", cfg_.lr_per_tau > 0 ? "tau * lr_per_tau" : "constant"},
                   {"train_seconds", train_seconds_},
                   {"train_tokens", train_tokens_},
                   {"tokens_per_s", train_seconds_ > 0 ? double(train_tokens_) / train_seconds_ : 0.0},
                   {"validation", summary_json(best_val_)},
                   {"test", summary_json(final_test_)}};
  if (!base_val_.tasks.empty()) r["base_validation"] = summary_json(base_val_);
  r["tasks"] = tasks;
  run_->write_json("results.json", r);

  std::string md = cat("# BoRA results: tau = ", std::isinf(tau) ? "inf" : format_double(tau), ", lr = ",
                       format_double(cfg_.effective_lr()), "\n\n", "Adapter: ", bank_->spec().describe(),
                       ". Best step ", early_.best_step, " of ", step_, ". Perplexities at the best step.\n\n",
                       convergence_.converged ? "Converged: " : "**Not converged**: ", convergence_.reason,
                       convergence_.converged ? ".\n\n" : "; these are the figures of an unfinished run.\n\n",
                       "| task | train docs | train tokens | base val ppl | val ppl | test ppl | ‖θ_d − Θ‖ |\n",
                       "|---|---:|---:|---:|---:|---:|---:|\n");
  char buf[512];
  for (size_t t = 0; t < task_names_.size(); ++t) {
    std::snprintf(buf, sizeof buf, "| %s | %lld | %lld | %.2f | %.2f | %.2f | %.4f |\n", task_names_[t].c_str(),
                  static_cast<long long>(train_docs_[t]), static_cast<long long>(train_targets_[t]),
                  base_val_.tasks.empty() ? NAN : base_val_.tasks[t].ppl(), best_val_.tasks[t].ppl(),
                  final_test_.tasks[t].ppl(), distances_[t]);
    md += buf;
  }
  std::snprintf(buf, sizeof buf, "| **overall (macro)** | | | %.2f | %.2f | %.2f | |\n| overall (micro) | | | %.2f | %.2f | %.2f | |\n",
                base_val_.tasks.empty() ? NAN : base_val_.macro_ppl(), best_val_.macro_ppl(), final_test_.macro_ppl(),
                base_val_.tasks.empty() ? NAN : base_val_.micro_ppl(), best_val_.micro_ppl(), final_test_.micro_ppl());
  md += buf;
  run_->write_text("results.md", md);
}

void Trainer::export_adapters() {
  // Rows travel to rank 0, which alone writes the run folder.
  const bool unified = cfg_.bora.unified();
  const int64_t P = bank_->row_size();
  std::string mine;
  if (!unified || comm_.rank() == 0) {
    torch::Tensor rows = bank_->rows().to(torch::kCPU).contiguous();
    for (size_t i = 0; i < (unified ? 1 : local_.size()); ++i) {
      int64_t t = unified ? -1 : local_[i];
      mine.append(reinterpret_cast<const char*>(&t), 8);
      mine.append(reinterpret_cast<const char*>(rows[int64_t(i)].data_ptr<float>()), size_t(P) * 4);
    }
  }
  std::vector<std::string> parts = comm_.gather_bytes(mine, 0);
  if (comm_.rank() != 0) return;
  run_->verify_lock("export the adapters");
  AdapterBank out(bank_->spec(), model_->shape(), unified ? 1 : num_tasks() + 1, torch::kCPU);
  torch::NoGradGuard g;
  for (const auto& part : parts)
    for (size_t off = 0; off + 8 <= part.size(); off += 8 + size_t(P) * 4) {
      int64_t t;
      std::memcpy(&t, part.data() + off, 8);
      std::memcpy(out.rows()[t < 0 ? 0 : t].data_ptr<float>(), part.data() + off + 8, size_t(P) * 4);
    }
  const std::string base_name = peft_base_model_name(cfg_.model);
  auto write = [&](int64_t row, const std::string& dir) {
    const AdapterSpec& s = out.spec();
    if (s.preset == "lora" && !s.tied && !s.fused_qkv) export_peft(out, *model_, row, dir, base_name);
    else export_adapter(out, row, dir);
  };
  if (unified) {
    write(0, run_->path("adapters/shared"));
  } else {
    for (int64_t t = 0; t < num_tasks(); ++t) write(t, run_->path("adapters/" + task_names_[static_cast<size_t>(t)]));
    out.rows()[num_tasks()].copy_(theta_.cpu());
    export_adapter(out, num_tasks(), run_->path("theta"));
  }
}

}  // namespace bora
