// A dataset folder written under a temporary name and renamed when complete
// (dataset_writer.h).
#include "data/dataset_writer.h"

#include <unistd.h>

#include <filesystem>

#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"

namespace fs = std::filesystem;

namespace bora {
namespace {
// "data/ton/" -> "data/ton": the temporary sibling must be "data/ton.tmp.<pid>",
// not a folder inside the output.
std::string without_trailing_slash(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}
}  // namespace

void DatasetWriter::check_output(const std::string& out_in, bool overwrite) {
  const std::string out = without_trailing_slash(out_in);
  std::error_code ec;
  if (!fs::exists(out, ec)) return;
  BORA_CHECK(overwrite, ConfigError, "output folder '", out, "' exists; pass --overwrite to replace it");
  // Never delete what data_prep did not make: only a dataset folder (or an empty one).
  bool is_dataset = fs::exists(fs::path(out) / kManifestFile, ec);
  bool is_empty = fs::is_directory(out, ec) && fs::is_empty(out, ec);
  BORA_CHECK(is_dataset || is_empty, ConfigError, "'", out,
             "' exists and is not a bora dataset (no manifest.json); refusing to overwrite it");
}

DatasetWriter::DatasetWriter(const std::string& out, const Manifest& info,
                             const DatasetWriteOptions& options)
    : out_(without_trailing_slash(out)), tmp_(temp_path_for(out_)), options_(options), m_(info) {
  BORA_CHECK(!out.empty(), ConfigError, "empty output folder name");
  check_output(out_, options.overwrite);
  m_.tasks.clear();
  m_.shards.clear();
  m_.format_version = kDatasetFormatVersion;
  m_.token_dtype = token_dtype_for_vocab(m_.vocab_size);
  m_.chunk_tokens = options.shard.chunk_tokens;
  header_.created_by = m_.created_by;
  header_.tokenizer_identity = m_.tokenizer_identity;
  header_.vocab_size = m_.vocab_size;
  header_.bos_id = m_.bos_id;
  header_.eos_id = m_.eos_id;
  header_.max_len = m_.max_len;
  std::error_code ec;
  fs::remove_all(tmp_, ec);  // left by an earlier process that had our pid
  make_dirs(tmp_);
}

DatasetWriter::~DatasetWriter() {
  if (!done_) {
    shard_.reset();
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }
}

void DatasetWriter::close_shard() {
  if (!shard_) return;
  shard_->close();
  shard_.reset();
  std::string path = tmp_ + "/" + shard_info_.file;
  fsync_path(path);
  auto map = MappedFile::open(path);
  shard_info_.bytes = static_cast<int64_t>(map->size());
  shard_info_.xxh3 = hex64(hash64(map->data(), map->size()));
  m_.shards.push_back(std::move(shard_info_));
  shard_info_ = ShardInfo();
}

void DatasetWriter::add_task(const TaskSequences& t) {
  BORA_CHECK(!done_, InternalError, "add_task after finish");
  BORA_CHECK(m_.tasks.empty() || m_.tasks.back().name < t.name, InternalError, "task '", t.name,
             "' added out of name order (after '", m_.tasks.back().name, "')");
  int64_t bytes = 0;
  for (const SplitSequences& s : t.splits)
    bytes += static_cast<int64_t>(s.tokens.size()) * token_dtype_bytes(m_.token_dtype);
  if (shard_) {
    bool full = (options_.tasks_per_shard > 0 &&
                 static_cast<int64_t>(shard_info_.tasks.size()) >= options_.tasks_per_shard) ||
                (options_.shard_mb > 0 && static_cast<double>(shard_bytes_ + bytes) > options_.shard_mb * 1e6);
    if (full) close_shard();
  }
  if (!shard_) {
    header_.shard_index = static_cast<int64_t>(m_.shards.size());
    shard_info_.file = shard_file_name(header_.shard_index);
    shard_ = std::make_unique<ShardWriter>(tmp_ + "/" + shard_info_.file, header_, options_.shard);
    shard_bytes_ = 0;
  }
  shard_->add_task(t, static_cast<int64_t>(m_.tasks.size()));
  shard_bytes_ += bytes;
  shard_info_.tasks.push_back(t.name);
  TaskInfo ti;
  ti.name = t.name;
  ti.source_name = t.source_name;
  ti.shard = shard_info_.file;
  ti.rows = t.rows;
  ti.documents = t.documents();
  for (int s = 0; s < kNumSplits; ++s) ti.splits[s] = t.splits[s].counts();
  m_.tasks.push_back(std::move(ti));
}

Manifest DatasetWriter::finish() {
  BORA_CHECK(!done_, InternalError, "finish called twice");
  BORA_CHECK(!m_.tasks.empty(), DataError, "no task to write to '", out_, "'");
  close_shard();
  m_.write(tmp_);
  fsync_path(tmp_);
  // Publish. With overwrite, the old dataset is moved aside first (a folder cannot be
  // renamed over a non-empty one), then deleted.
  check_output(out_, options_.overwrite);
  std::error_code ec;
  if (fs::exists(out_, ec)) {
    std::string old = out_ + ".old." + std::to_string(::getpid());
    rename_durable(out_, old);
    rename_durable(tmp_, out_);
    fs::remove_all(old, ec);
  } else {
    rename_durable(tmp_, out_);
  }
  done_ = true;
  return m_;
}

}  // namespace bora
