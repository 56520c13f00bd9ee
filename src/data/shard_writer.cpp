// One shard file: root attributes, one group per task, four datasets per split
// (shard_writer.h).
#include "data/shard_writer.h"

#include <algorithm>

#include "core/error.h"

namespace bora {

void SplitSequences::add(const int32_t* ids, int64_t n, int32_t plen, int64_t doc, bool trunc) {
  tokens.insert(tokens.end(), ids, ids + n);
  offsets.push_back(static_cast<uint64_t>(tokens.size()));
  prompt_len.push_back(plen);
  doc_index.push_back(doc);
  truncated += trunc ? 1 : 0;
}

SplitCounts SplitSequences::counts() const {
  SplitCounts c;
  c.sequences = size();
  c.tokens = static_cast<int64_t>(tokens.size());
  c.target_tokens = c.tokens;
  for (int32_t p : prompt_len) c.target_tokens -= p;
  c.truncated = truncated;
  return c;
}

int64_t TaskSequences::documents() const {
  int64_t n = 0;
  for (const SplitSequences& s : splits) n += s.size();
  return n;
}

namespace {

H5Id plist(hid_t cls, const std::string& origin) {
  return H5_ID(IoError, H5Pcreate(cls), origin, ": H5Pcreate");
}

// Link creation: names are UTF-8 (task names can be any language).
H5Id utf8_lcpl(const std::string& origin) {
  H5Id lcpl = plist(H5P_LINK_CREATE, origin);
  H5_OK(IoError, H5Pset_char_encoding(lcpl.get(), H5T_CSET_UTF8), origin, ": link encoding");
  return lcpl;
}

// Group creation without modification times: the file must not depend on the clock.
H5Id untimed_gcpl(const std::string& origin) {
  H5Id gcpl = plist(H5P_GROUP_CREATE, origin);
  H5_OK(IoError, H5Pset_obj_track_times(gcpl.get(), 0), origin, ": track times");
  return gcpl;
}

H5Id create_group(hid_t parent, const std::string& name, const std::string& origin) {
  H5Id lcpl = utf8_lcpl(origin), gcpl = untimed_gcpl(origin);
  return H5_ID(IoError, H5Gcreate2(parent, name.c_str(), lcpl.get(), gcpl.get(), H5P_DEFAULT), origin,
               ": cannot create group '", name, "'");
}

}  // namespace

ShardWriter::ShardWriter(const std::string& path, const ShardHeader& header,
                         const ShardWriteOptions& options)
    : path_(path), header_(header), options_(options), dtype_(token_dtype_for_vocab(header.vocab_size)) {
  BORA_CHECK(options.deflate_level >= 0 && options.deflate_level <= 9, ConfigError,
             "compression level must be 0..9, got ", options.deflate_level);
  BORA_CHECK(options.chunk_tokens >= 1 && options.chunk_tokens <= (int64_t(1) << 28), ConfigError,
             "chunk_tokens must be in 1..2^28, got ", options.chunk_tokens);
  BORA_CHECK(header.max_len >= 2, ConfigError, "max_len must be >= 2, got ", header.max_len);
  auto lock = hdf5_lock();
  hdf5_quiet();
  // The file-creation list also creates the root group: no timestamps there either.
  H5Id fcpl = plist(H5P_FILE_CREATE, path);
  H5_OK(IoError, H5Pset_obj_track_times(fcpl.get(), 0), path, ": track times");
  // H5F_ACC_EXCL: never overwrite; data_prep writes into a fresh temporary folder.
  file_ = H5_ID(IoError, H5Fcreate(path.c_str(), H5F_ACC_EXCL, fcpl.get(), H5P_DEFAULT),
                "cannot create shard '", path, "'");
  tasks_group_ = create_group(file_.get(), kTasksGroup, path);
}

ShardWriter::~ShardWriter() {
  tasks_group_.reset();
  file_.reset();
}

H5Id ShardWriter::create_dataset(hid_t group, const char* name, hid_t file_type, int64_t n,
                                 const std::string& origin) {
  hsize_t dims[1] = {static_cast<hsize_t>(n)};
  H5Id space = H5_ID(IoError, H5Screate_simple(1, dims, nullptr), origin, ": dataspace");
  H5Id dcpl = plist(H5P_DATASET_CREATE, origin);
  H5_OK(IoError, H5Pset_obj_track_times(dcpl.get(), 0), origin, ": track times");
  if (n > 0) {
    hsize_t chunk[1] = {static_cast<hsize_t>(std::min<int64_t>(n, options_.chunk_tokens))};
    H5_OK(IoError, H5Pset_chunk(dcpl.get(), 1, chunk), origin, ": chunk");
    if (options_.deflate_level > 0)
      H5_OK(IoError, H5Pset_deflate(dcpl.get(), static_cast<unsigned>(options_.deflate_level)), origin,
            ": deflate");
    H5_OK(IoError, H5Pset_fletcher32(dcpl.get()), origin, ": fletcher32");
  }
  H5Id lcpl = utf8_lcpl(origin);
  return H5_ID(IoError, H5Dcreate2(group, name, file_type, space.get(), lcpl.get(), dcpl.get(), H5P_DEFAULT),
               origin, ": cannot create dataset '", name, "'");
}

void ShardWriter::write_split(hid_t task_group, const SplitSequences& s, Split split,
                              const std::string& origin_in) {
  std::string origin = origin_in + " " + split_name(split);
  const int64_t n = s.size();
  const int64_t ntok = static_cast<int64_t>(s.tokens.size());
  // Always-on checks: the reader relies on every one of these.
  BORA_CHECK(static_cast<int64_t>(s.offsets.size()) == n + 1 && s.offsets[0] == 0 &&
                 s.offsets[n] == static_cast<uint64_t>(ntok) &&
                 static_cast<int64_t>(s.doc_index.size()) == n,
             InternalError, origin, ": inconsistent sequence arrays");
  for (int64_t i = 0; i < n; ++i) {
    int64_t len = static_cast<int64_t>(s.offsets[i + 1]) - static_cast<int64_t>(s.offsets[i]);
    BORA_CHECK(len >= 2 && len <= header_.max_len && s.prompt_len[i] >= 1 && s.prompt_len[i] < len,
               InternalError, origin, ": sequence ", i, " has length ", len, " and prompt_len ",
               s.prompt_len[i], " (max_len ", header_.max_len, ")");
  }
  for (int32_t id : s.tokens)
    BORA_CHECK(id >= 0 && id < header_.vocab_size, InternalError, origin, ": token id ", id,
               " outside the vocabulary of ", header_.vocab_size);

  H5Id g = create_group(task_group, split_name(split), origin);
  SplitCounts c = s.counts();
  write_attr(g.get(), "num_sequences", c.sequences, origin);
  write_attr(g.get(), "num_tokens", c.tokens, origin);
  write_attr(g.get(), "num_target_tokens", c.target_tokens, origin);
  write_attr(g.get(), "num_truncated", c.truncated, origin);

  // tokens: converted to the file dtype here (ids are checked above), so HDF5 never
  // converts, and clips, anything.
  {
    hid_t ftype = dtype_ == TokenDtype::UInt16 ? H5T_STD_U16LE : H5T_STD_I32LE;
    H5Id d = create_dataset(g.get(), kTokensDataset, ftype, ntok, origin);
    if (ntok > 0) {
      if (dtype_ == TokenDtype::UInt16) {
        std::vector<uint16_t> u(s.tokens.begin(), s.tokens.end());
        H5_OK(IoError, H5Dwrite(d.get(), H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, u.data()),
              "cannot write ", origin, " tokens");
      } else {
        H5_OK(IoError,
              H5Dwrite(d.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, s.tokens.data()),
              "cannot write ", origin, " tokens");
      }
    }
  }
  {
    H5Id d = create_dataset(g.get(), kOffsetsDataset, H5T_STD_U64LE, n + 1, origin);
    H5_OK(IoError, H5Dwrite(d.get(), H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, s.offsets.data()),
          "cannot write ", origin, " offsets");
  }
  {
    H5Id d = create_dataset(g.get(), kPromptLenDataset, H5T_STD_I32LE, n, origin);
    if (n > 0)
      H5_OK(IoError,
            H5Dwrite(d.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, s.prompt_len.data()),
            "cannot write ", origin, " prompt_len");
  }
  {
    H5Id d = create_dataset(g.get(), kDocIndexDataset, H5T_STD_I64LE, n, origin);
    if (n > 0)
      H5_OK(IoError,
            H5Dwrite(d.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, s.doc_index.data()),
            "cannot write ", origin, " doc_index");
  }
}

void ShardWriter::add_task(const TaskSequences& t, int64_t task_index) {
  BORA_CHECK(file_.valid(), InternalError, path_, ": add_task after close");
  std::string problem = task_name_problem(t.name);
  BORA_CHECK(problem.empty(), DataError, "invalid task name '", t.name, "': ", problem);
  std::string origin = cat(path_, ": task '", t.name, "'");
  auto lock = hdf5_lock();
  hdf5_quiet();
  H5Id g = create_group(tasks_group_.get(), t.name, origin);
  write_attr(g.get(), "name", t.name, origin);
  write_attr(g.get(), "source_name", t.source_name, origin);
  write_attr(g.get(), "task_index", task_index, origin);
  write_attr(g.get(), "rows", t.rows, origin);
  write_attr(g.get(), "documents", t.documents(), origin);
  for (Split s : kAllSplits) write_split(g.get(), t.splits[static_cast<int>(s)], s, origin);
  ++num_tasks_;
}

void ShardWriter::close() {
  if (!file_.valid()) return;
  auto lock = hdf5_lock();
  hdf5_quiet();
  hid_t root = file_.get();
  write_attr(root, "magic", std::string(kDatasetMagic), path_);
  write_attr(root, "format_version", kDatasetFormatVersion, path_);
  write_attr(root, "created_by", header_.created_by, path_);
  write_attr(root, "shard_index", header_.shard_index, path_);
  write_attr(root, "num_tasks", num_tasks_, path_);
  write_attr(root, "tokenizer_identity", header_.tokenizer_identity, path_);
  write_attr(root, "vocab_size", header_.vocab_size, path_);
  write_attr(root, "bos_id", static_cast<int64_t>(header_.bos_id), path_);
  write_attr(root, "eos_id", static_cast<int64_t>(header_.eos_id), path_);
  write_attr(root, "max_len", header_.max_len, path_);
  write_attr(root, "token_dtype", std::string(token_dtype_name(dtype_)), path_);
  write_attr(root, "chunk_tokens", options_.chunk_tokens, path_);
  BORA_CHECK(tasks_group_.close(), IoError, "cannot close '", path_, "': ", hdf5_error_text());
  BORA_CHECK(H5Fflush(root, H5F_SCOPE_LOCAL) >= 0, IoError, "cannot flush '", path_, "': ",
             hdf5_error_text());
  BORA_CHECK(file_.close(), IoError, "cannot close '", path_, "': ", hdf5_error_text());
}

}  // namespace bora
