// The data_prep pipeline (prepare.h).
#include "data_prep/prepare.h"

#include <atomic>
#include <thread>

#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/parallel.h"
#include "core/progress.h"
#include "data/sequence.h"
#include "data/dataset_writer.h"
#include "data/split.h"
#include "model/tokenizer.h"

namespace bora {
namespace {

// One document to tokenize: which task, split and place it goes to.
struct WorkItem {
  int32_t task;
  int8_t split;
  int64_t doc;  // index into the task's kept documents (input order)
  std::string_view text;
};

struct Tokenized {
  std::vector<int32_t> ids;
  bool truncated = false;
};

// Tokenizes every work item on `threads` threads. Each item's result lands in its own
// slot, so the output is the same for any thread count.
std::vector<Tokenized> tokenize_all(const std::vector<WorkItem>& items,
                                    const std::vector<std::vector<int32_t>>& prefixes,
                                    const SequenceBuilder& builder, int threads, bool progress) {
  std::vector<Tokenized> out(items.size());
  int64_t total_bytes = 0;
  for (const WorkItem& w : items) total_bytes += static_cast<int64_t>(w.text.size());
  std::atomic<int64_t> bytes_done{0};
  const int64_t n = static_cast<int64_t>(items.size());
  Progress bar("tokenize", total_bytes, "B", progress);
  // 64 items per grab: cheap atomics, fine-grained balance.
  parallel_for(n, threads, [&](int64_t i) {
    const WorkItem& w = items[static_cast<size_t>(i)];
    out[static_cast<size_t>(i)].truncated = builder.build(prefixes[w.task], w.text, &out[static_cast<size_t>(i)].ids);
    bytes_done += static_cast<int64_t>(w.text.size());
  }, /*grain=*/64, /*poll=*/[&] { bar.set(bytes_done.load()); });
  bar.set(bytes_done.load());
  bar.finish();
  return out;
}

}  // namespace

PrepResult run_data_prep(const PrepConfig& cfg, const Tokenizer& tok) {
  Stopwatch total_clock;
  cfg.validate();
  DatasetWriter::check_output(cfg.out, cfg.overwrite);  // fail before the slow part
  PrepResult result;

  // 1. Read, 2-6. select.
  Corpus corpus = read_corpus(cfg.input, cfg.corpus_options());
  result.input_bytes = corpus.bytes;
  BORA_INFO("read ", corpus.rows_read, " ", corpus.record_noun, "s from '", cfg.input, "' (",
            human_count(static_cast<double>(corpus.bytes)), "B); dropped ", corpus.rows_missing,
            " with missing values");
  std::vector<SelectedTask> tasks = select_tasks(corpus, cfg.select_options(), &result.selection);
  BORA_CHECK(!tasks.empty(), DataError, "no task is left after selection (", result.selection.tasks_in,
             " tasks in '", cfg.input, "'; see the log lines above for what dropped them)");

  // Sequence format; bos/eos from the tokenizer unless given.
  SequenceFormat sf;
  sf.prompt_template = unquote(cfg.prompt_template);
  sf.text_template = unquote(cfg.text_template);
  sf.bos_id = static_cast<int32_t>(cfg.bos_id >= 0 ? cfg.bos_id : tok.bos_id());
  sf.eos_id = static_cast<int32_t>(cfg.eos_id >= 0 ? cfg.eos_id : tok.eos_id());
  BORA_CHECK(sf.bos_id >= 0 && sf.eos_id >= 0, ConfigError,
             "the tokenizer has no bos/eos token (</s>, <|endoftext|>); set --bos_id and --eos_id");
  sf.max_len = cfg.max_len;
  SequenceBuilder builder(tok, sf);

  // Split each task and list its documents as work, in (task, split, position) order.
  const std::array<double, 3> fractions{cfg.split_fractions[0], cfg.split_fractions[1],
                                        cfg.split_fractions[2]};
  std::vector<WorkItem> items;
  std::vector<std::vector<int32_t>> prefixes;
  std::vector<int64_t> task_begin;  // index of each task's first work item
  for (size_t t = 0; t < tasks.size(); ++t) {
    const SelectedTask& st = tasks[t];
    std::vector<std::string_view> docs;
    docs.reserve(st.docs.size());
    for (const CorpusRecord* r : st.docs) docs.push_back(r->text);
    TaskSplit split = split_task(static_cast<uint64_t>(cfg.seed), st.name, docs, fractions);
    BORA_CHECK(!split.docs[0].empty(), DataError, "task '", st.name, "' has ", docs.size(),
               " documents: its train split would be empty (split_fractions ", fractions[0], ",",
               fractions[1], ",", fractions[2], ")");
    task_begin.push_back(static_cast<int64_t>(items.size()));
    for (int s = 0; s < 3; ++s) {
      for (int64_t d : split.docs[s]) {
        items.push_back(WorkItem{static_cast<int32_t>(t), static_cast<int8_t>(s), d, docs[d]});
        result.text_bytes += static_cast<int64_t>(docs[d].size());
      }
    }
    prefixes.push_back(builder.prefix(st.name));
  }

  // The output's temporary folder before the slow part: an unwritable output fails fast.
  const int64_t vocab = tok.vocab_size();
  Manifest info;
  info.created_by = "bora data_prep";
  info.tokenizer_identity = tok.identity_hex();
  info.vocab_size = vocab;
  info.bos_id = sf.bos_id;
  info.eos_id = sf.eos_id;
  info.max_len = cfg.max_len;
  info.options = cfg.content_options();
  DatasetWriteOptions wopt;
  wopt.shard.deflate_level = cfg.compression;
  wopt.shard.chunk_tokens = cfg.chunk_tokens;
  wopt.tasks_per_shard = cfg.tasks_per_shard;
  wopt.shard_mb = cfg.shard_mb;
  wopt.overwrite = cfg.overwrite;
  DatasetWriter writer(cfg.out, info, wopt);

  int threads = cfg.threads > 0 ? cfg.threads : static_cast<int>(std::thread::hardware_concurrency());
  threads = std::max(1, threads);
  result.read_seconds = total_clock.seconds();
  Stopwatch tok_clock;
  std::vector<Tokenized> tokenized = tokenize_all(items, prefixes, builder, threads, cfg.progress);
  result.tokenize_seconds = tok_clock.seconds();

  // Tasks in name order (select_tasks sorted them), each task's splits in order.
  Stopwatch write_clock;
  Progress bar("write", static_cast<int64_t>(tasks.size()), " tasks", cfg.progress);
  for (size_t t = 0; t < tasks.size(); ++t) {
    const SelectedTask& st = tasks[t];
    TaskSequences ts;
    ts.name = st.name;
    ts.source_name = st.source_name;
    ts.rows = st.rows;
    int64_t end = t + 1 < tasks.size() ? task_begin[t + 1] : static_cast<int64_t>(items.size());
    for (int64_t i = task_begin[t]; i < end; ++i) {
      Tokenized& r = tokenized[i];
      ts.splits[items[i].split].add(r.ids.data(), static_cast<int64_t>(r.ids.size()),
                                    static_cast<int32_t>(prefixes[t].size()), items[i].doc, r.truncated);
      std::vector<int32_t>().swap(r.ids);  // free as we go: peak memory ~ one copy
    }
    writer.add_task(ts);
    bar.add(1);
  }
  bar.finish();
  Manifest m = writer.finish();
  result.write_seconds = write_clock.seconds();
  for (const ShardInfo& sh : m.shards) result.output_bytes += sh.bytes;

  result.manifest = std::move(m);
  result.seconds = total_clock.seconds();
  const Manifest& mm = result.manifest;
  SplitCounts tr = mm.total(Split::Train), va = mm.total(Split::Validation), te = mm.total(Split::Test);
  BORA_INFO("wrote '", cfg.out, "': ", mm.tasks.size(), " tasks in ", mm.shards.size(), " shards (",
            human_count(static_cast<double>(result.output_bytes)), "B); sequences train/validation/test ",
            tr.sequences, "/", va.sequences, "/", te.sequences, ", tokens ", tr.tokens + va.tokens + te.tokens,
            " (", tr.target_tokens + va.target_tokens + te.target_tokens, " targets), truncated ",
            tr.truncated + va.truncated + te.truncated, "; ",
            human_count(static_cast<double>(result.input_bytes) / std::max(1e-9, result.seconds)), "B/s");
  return result;
}

}  // namespace bora
