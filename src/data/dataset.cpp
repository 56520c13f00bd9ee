// DatasetReader: open-time checks of shards against the manifest, and sequence reads
// through an LRU of decompressed chunks (dataset.h).
#include "data/dataset.h"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "data/chunk_cache.h"
#include "data/hdf5_util.h"

namespace bora {

namespace {

// One split of one opened task: the tokens dataset stays open; the small per-sequence
// arrays are in memory.
struct SplitData {
  H5Id tokens;
  int64_t num_tokens = 0;
  int64_t chunk = 1;  // elements per chunk of `tokens`
  std::vector<uint64_t> offsets;
  std::vector<int32_t> prompt_len;
  H5Id group;                      // for the lazily read doc_index
  std::vector<int64_t> doc_index;  // empty until doc_index() is first called
};

struct OpenTask {
  int64_t index = 0;  // in the manifest
  std::string origin;  // "<shard path>: task '<name>'" for messages
  std::array<SplitData, kNumSplits> splits;
};

H5Id open_readonly(const std::string& path) {
  H5Id fapl = H5_ID(FormatError, H5Pcreate(H5P_FILE_ACCESS), path, ": H5Pcreate");
#if H5_VERSION_GE(1, 10, 7)
  // Shards are immutable once renamed into place: no locks, which also keeps
  // Lustre/NFS mounts without flock support working.
  H5Pset_file_locking(fapl.get(), 0, 1);
#endif
  return H5_ID(FormatError, H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()), "cannot open shard '",
               path, "' as HDF5");
}

template <class T>
std::vector<T> read_all(hid_t group, const char* name, hid_t mem_type, int64_t expect,
                        const std::string& origin) {
  std::string o = cat(origin, " ", name);
  H5Id d = H5_ID(FormatError, H5Dopen2(group, name, H5P_DEFAULT), o, ": cannot open dataset");
  int64_t n = dataset_length(d.get(), o);
  BORA_CHECK(n == expect, FormatError, o, ": ", n, " elements, expected ", expect);
  std::vector<T> v(static_cast<size_t>(n));
  if (n > 0)
    H5_OK(FormatError, H5Dread(d.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), o,
          ": cannot read (the shard is corrupt)");
  return v;
}

std::string file_size_problem(const std::string& path, int64_t expect) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return cat("cannot open: ", std::strerror(errno));
  if (static_cast<int64_t>(st.st_size) != expect)
    return cat("the file has ", st.st_size, " bytes but the manifest says ", expect,
               " (truncated or altered after writing)");
  return "";
}

}  // namespace

struct DatasetReader::Impl {
  std::string dir;
  Manifest manifest;
  ReaderOptions options;
  int64_t elem_bytes = 2;
  hid_t mem_type = H5T_NATIVE_UINT16;
  std::vector<H5Id> files;         // the opened shards
  std::vector<int> slot;           // manifest task index -> index into `tasks`, or -1
  std::vector<OpenTask> tasks;
  std::vector<int64_t> open_list;  // manifest indices of opened tasks
  ChunkCache cache;

  explicit Impl(const ReaderOptions& o) : options(o), cache(o.cache_bytes) {}

  void open_shard(size_t shard_pos, const std::vector<int64_t>& wanted);
  void open_task(hid_t file, const std::string& path, int64_t index);
  OpenTask& task(int64_t t);
  SplitData& split(int64_t t, Split s);
  const uint8_t* chunk(int64_t t, Split s, int64_t c, int64_t* first, int64_t* count);
  void copy_tokens(int64_t t, Split s, int64_t begin, int64_t end, int32_t* out);
};

void DatasetReader::Impl::open_shard(size_t shard_pos, const std::vector<int64_t>& wanted) {
  const ShardInfo& info = manifest.shards[shard_pos];
  std::string path = dir + "/" + info.file;
  std::string problem = file_size_problem(path, info.bytes);
  BORA_CHECK(problem.empty(), FormatError, "shard '", path, "': ", problem);
  if (options.verify_hash) {
    auto map = MappedFile::open(path);
    std::string h = hex64(hash64(map->data(), map->size()));
    BORA_CHECK(h == info.xxh3, FormatError, "shard '", path, "': XXH3 ", h, " but the manifest says ",
               info.xxh3, " (the file was altered after writing)");
  }
  auto lock = hdf5_lock();
  hdf5_quiet();
  H5Id file = open_readonly(path);
  hid_t root = file.get();
  std::string magic = read_attr_string(root, "magic", path);
  BORA_CHECK(magic == kDatasetMagic, FormatError, path, ": magic '", magic, "', expected '",
             kDatasetMagic, "' (not a bora shard)");
  int64_t version = read_attr_int(root, "format_version", path);
  BORA_CHECK(version == kDatasetFormatVersion, FormatError, path, ": format version ", version,
             ", this build reads ", kDatasetFormatVersion);
  auto same_int = [&](const char* key, int64_t want) {
    int64_t got = read_attr_int(root, key, path);
    BORA_CHECK(got == want, FormatError, path, ": attribute ", key, " = ", got,
               " but the manifest says ", want, " (shard and manifest do not belong together)");
  };
  auto same_str = [&](const char* key, const std::string& want) {
    std::string got = read_attr_string(root, key, path);
    BORA_CHECK(got == want, FormatError, path, ": attribute ", key, " = '", got,
               "' but the manifest says '", want, "' (shard and manifest do not belong together)");
  };
  same_int("shard_index", static_cast<int64_t>(shard_pos));
  same_int("num_tasks", static_cast<int64_t>(info.tasks.size()));
  same_str("tokenizer_identity", manifest.tokenizer_identity);
  same_int("vocab_size", manifest.vocab_size);
  same_int("bos_id", manifest.bos_id);
  same_int("eos_id", manifest.eos_id);
  same_int("max_len", manifest.max_len);
  same_int("chunk_tokens", manifest.chunk_tokens);
  same_str("token_dtype", token_dtype_name(manifest.token_dtype));
  for (int64_t t : wanted) open_task(root, path, t);
  files.push_back(std::move(file));
}

void DatasetReader::Impl::open_task(hid_t file, const std::string& path, int64_t index) {
  const TaskInfo& info = manifest.tasks[index];
  OpenTask ot;
  ot.index = index;
  ot.origin = cat(path, ": task '", info.name, "'");
  const std::string& o = ot.origin;
  std::string gpath = std::string("/") + kTasksGroup + "/" + info.name;
  BORA_CHECK(H5Lexists(file, kTasksGroup, H5P_DEFAULT) > 0 &&
                 H5Lexists(file, gpath.c_str(), H5P_DEFAULT) > 0,
             FormatError, o, ": group '", gpath, "' is missing (shard and manifest do not match)");
  H5Id g = H5_ID(FormatError, H5Gopen2(file, gpath.c_str(), H5P_DEFAULT), o, ": cannot open group");
  std::string name = read_attr_string(g.get(), "name", o);
  BORA_CHECK(name == info.name, FormatError, o, ": group names task '", name, "'");
  int64_t tidx = read_attr_int(g.get(), "task_index", o);
  BORA_CHECK(tidx == index, FormatError, o, ": task_index ", tidx, " but the manifest lists it at ",
             index);
  int64_t docs = read_attr_int(g.get(), "documents", o);
  BORA_CHECK(docs == info.documents, FormatError, o, ": ", docs, " documents but the manifest says ",
             info.documents);
  hid_t want_type = manifest.token_dtype == TokenDtype::UInt16 ? H5T_STD_U16LE : H5T_STD_I32LE;
  for (Split s : kAllSplits) {
    const SplitCounts& want = info.split(s);
    std::string so = cat(o, " ", split_name(s));
    SplitData& sd = ot.splits[static_cast<int>(s)];
    sd.group = H5_ID(FormatError, H5Gopen2(g.get(), split_name(s), H5P_DEFAULT), so,
                     ": cannot open group");
    hid_t sg = sd.group.get();
    auto same = [&](const char* key, int64_t w) {
      int64_t got = read_attr_int(sg, key, so);
      BORA_CHECK(got == w, FormatError, so, ": ", key, " = ", got, " but the manifest says ", w);
    };
    same("num_sequences", want.sequences);
    same("num_tokens", want.tokens);
    same("num_target_tokens", want.target_tokens);
    same("num_truncated", want.truncated);
    const int64_t n = want.sequences;
    sd.offsets = read_all<uint64_t>(sg, kOffsetsDataset, H5T_NATIVE_UINT64, n + 1, so);
    sd.prompt_len = read_all<int32_t>(sg, kPromptLenDataset, H5T_NATIVE_INT32, n, so);
    // The reader trusts these arrays on every read: check them once, here.
    BORA_CHECK(sd.offsets[0] == 0 && sd.offsets[n] == static_cast<uint64_t>(want.tokens), FormatError,
               so, ": offsets run from ", sd.offsets[0], " to ", sd.offsets[n], ", expected 0 to ",
               want.tokens);
    int64_t targets = 0;
    for (int64_t i = 0; i < n; ++i) {
      int64_t len = static_cast<int64_t>(sd.offsets[i + 1] - sd.offsets[i]);
      BORA_CHECK(sd.offsets[i + 1] > sd.offsets[i] && len >= 2 && len <= manifest.max_len &&
                     sd.prompt_len[i] >= 1 && sd.prompt_len[i] < len,
                 FormatError, so, ": sequence ", i, " has length ",
                 static_cast<int64_t>(sd.offsets[i + 1]) - static_cast<int64_t>(sd.offsets[i]),
                 " and prompt_len ", sd.prompt_len[i], " (max_len ", manifest.max_len, ")");
      targets += len - sd.prompt_len[i];
    }
    BORA_CHECK(targets == want.target_tokens, FormatError, so, ": ", targets,
               " target tokens but the manifest says ", want.target_tokens);
    // HDF5's own chunk cache is off: the reader caches decompressed chunks itself,
    // and caching twice would double the memory bound.
    H5Id dapl = H5_ID(FormatError, H5Pcreate(H5P_DATASET_ACCESS), so, ": H5Pcreate");
    H5_OK(FormatError, H5Pset_chunk_cache(dapl.get(), H5D_CHUNK_CACHE_NSLOTS_DEFAULT, 0, 1.0), so,
          ": chunk cache");
    sd.tokens = H5_ID(FormatError, H5Dopen2(sg, kTokensDataset, dapl.get()), so,
                      ": cannot open dataset tokens");
    sd.num_tokens = dataset_length(sd.tokens.get(), so + " tokens");
    BORA_CHECK(sd.num_tokens == want.tokens, FormatError, so, ": tokens has ", sd.num_tokens,
               " elements but the manifest says ", want.tokens);
    H5Id ftype = H5_ID(FormatError, H5Dget_type(sd.tokens.get()), so, ": tokens type");
    BORA_CHECK(H5Tequal(ftype.get(), want_type) > 0, FormatError, so,
               ": tokens dataset is not of type ", token_dtype_name(manifest.token_dtype));
    if (sd.num_tokens > 0) {
      H5Id dcpl = H5_ID(FormatError, H5Dget_create_plist(sd.tokens.get()), so, ": tokens layout");
      hsize_t chunk = 0;
      BORA_CHECK(H5Pget_layout(dcpl.get()) == H5D_CHUNKED && H5Pget_chunk(dcpl.get(), 1, &chunk) == 1,
                 FormatError, so, ": tokens dataset is not chunked");
      BORA_CHECK(static_cast<int64_t>(chunk) == std::min(sd.num_tokens, manifest.chunk_tokens),
                 FormatError, so, ": tokens chunk of ", chunk, " elements, expected ",
                 std::min(sd.num_tokens, manifest.chunk_tokens));
      sd.chunk = static_cast<int64_t>(chunk);
    }
  }
  slot[index] = static_cast<int>(tasks.size());
  tasks.push_back(std::move(ot));
}

OpenTask& DatasetReader::Impl::task(int64_t t) {
  BORA_CHECK(t >= 0 && t < static_cast<int64_t>(slot.size()), DataError, "task index ", t,
             " out of range (the dataset has ", slot.size(), " tasks)");
  BORA_CHECK(slot[t] >= 0, DataError, "task '", manifest.tasks[t].name,
             "' is not opened by this reader (it is in shard '", manifest.tasks[t].shard, "')");
  return tasks[slot[t]];
}

SplitData& DatasetReader::Impl::split(int64_t t, Split s) {
  return task(t).splits[static_cast<int>(s)];
}

// Chunk c of a split's tokens, from the cache or read (and checksummed) from the file.
// Sets *first to its first token's position and *count to its length.
const uint8_t* DatasetReader::Impl::chunk(int64_t t, Split s, int64_t c, int64_t* first,
                                          int64_t* count) {
  SplitData& sd = split(t, s);
  *first = c * sd.chunk;
  *count = std::min(sd.chunk, sd.num_tokens - *first);
  uint64_t key = (static_cast<uint64_t>(slot[t]) * kNumSplits + static_cast<uint64_t>(s)) << 40 |
                 static_cast<uint64_t>(c);
  if (const std::vector<uint8_t>* hit = cache.find(key)) return hit->data();
  std::vector<uint8_t> buf = cache.take_spare();
  buf.resize(static_cast<size_t>(*count * elem_bytes));
  {
    auto lock = hdf5_lock();
    hdf5_quiet();
    std::string o = cat(task(t).origin, " ", split_name(s), " tokens");
    H5Id fspace = H5_ID(FormatError, H5Dget_space(sd.tokens.get()), o, ": dataspace");
    hsize_t start[1] = {static_cast<hsize_t>(*first)}, cnt[1] = {static_cast<hsize_t>(*count)};
    H5_OK(FormatError, H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start, nullptr, cnt, nullptr),
          o, ": select");
    H5Id mspace = H5_ID(FormatError, H5Screate_simple(1, cnt, nullptr), o, ": dataspace");
    H5_OK(FormatError, H5Dread(sd.tokens.get(), mem_type, mspace.get(), fspace.get(), H5P_DEFAULT, buf.data()),
          o, ": cannot read chunk ", c, " (the shard is corrupt)");
  }
  return cache.insert(key, std::move(buf))->data();
}

void DatasetReader::Impl::copy_tokens(int64_t t, Split s, int64_t begin, int64_t end, int32_t* out) {
  SplitData& sd = split(t, s);
  while (begin < end) {
    int64_t first = 0, count = 0;
    const uint8_t* p = chunk(t, s, begin / sd.chunk, &first, &count);
    int64_t stop = std::min(end, first + count);
    int64_t n = stop - begin;
    if (elem_bytes == 2) {
      const uint16_t* src = reinterpret_cast<const uint16_t*>(p) + (begin - first);
      for (int64_t k = 0; k < n; ++k) out[k] = src[k];
    } else {
      std::memcpy(out, p + (begin - first) * 4, static_cast<size_t>(n) * 4);
    }
    out += n;
    begin = stop;
  }
}

DatasetReader::DatasetReader(const std::string& dir, const std::vector<std::string>& names,
                             const ReaderOptions& options)
    : impl_(std::make_unique<Impl>(options)) {
  Impl& m = *impl_;
  m.dir = dir;
  m.manifest = Manifest::read(dir);
  m.elem_bytes = token_dtype_bytes(m.manifest.token_dtype);
  m.mem_type = m.manifest.token_dtype == TokenDtype::UInt16 ? H5T_NATIVE_UINT16 : H5T_NATIVE_INT32;
  m.slot.assign(m.manifest.tasks.size(), -1);
  std::set<int64_t> wanted;
  if (names.empty()) {
    for (size_t i = 0; i < m.manifest.tasks.size(); ++i) wanted.insert(static_cast<int64_t>(i));
  } else {
    for (const std::string& n : names) wanted.insert(task_index(n));
  }
  std::map<std::string, size_t> shard_pos;
  for (size_t i = 0; i < m.manifest.shards.size(); ++i) shard_pos[m.manifest.shards[i].file] = i;
  std::map<size_t, std::vector<int64_t>> by_shard;
  for (int64_t t : wanted) by_shard[shard_pos.at(m.manifest.tasks[t].shard)].push_back(t);
  for (auto& [pos, ts] : by_shard) m.open_shard(pos, ts);
  m.open_list.assign(wanted.begin(), wanted.end());
}

DatasetReader::~DatasetReader() = default;
DatasetReader::DatasetReader(DatasetReader&&) noexcept = default;
DatasetReader& DatasetReader::operator=(DatasetReader&&) noexcept = default;

const std::string& DatasetReader::dir() const { return impl_->dir; }
const Manifest& DatasetReader::manifest() const { return impl_->manifest; }
const std::vector<int64_t>& DatasetReader::open_tasks() const { return impl_->open_list; }

int64_t DatasetReader::task_index(const std::string& name) const {
  const Manifest& m = impl_->manifest;
  int64_t t = m.find_task(name);
  if (t < 0) {
    std::string some;
    for (size_t i = 0; i < m.tasks.size() && i < 5; ++i) some += (i ? ", " : "") + m.tasks[i].name;
    if (m.tasks.size() > 5) some += ", ...";
    BORA_THROW(DataError, "task '", name, "' is not in dataset '", impl_->dir, "' (", m.tasks.size(),
               " tasks: ", some, ")");
  }
  return t;
}

bool DatasetReader::is_open(int64_t t) const {
  return t >= 0 && t < static_cast<int64_t>(impl_->slot.size()) && impl_->slot[t] >= 0;
}

void DatasetReader::check_tokenizer(const std::string& identity_hex, int64_t model_vocab_size) const {
  const Manifest& m = impl_->manifest;
  BORA_CHECK(identity_hex == m.tokenizer_identity, DataError, "dataset '", impl_->dir,
             "' was made with tokenizer ", m.tokenizer_identity, " but the model's tokenizer is ",
             identity_hex, " (re-run data_prep with the model's tokenizer)");
  BORA_CHECK(m.vocab_size <= model_vocab_size, DataError, "dataset '", impl_->dir,
             "' has token ids up to ", m.vocab_size - 1, " but the model's vocabulary has only ",
             model_vocab_size, " entries");
}

int64_t DatasetReader::size(int64_t t, Split s) const {
  return static_cast<int64_t>(impl_->split(t, s).prompt_len.size());
}

int64_t DatasetReader::length(int64_t t, Split s, int64_t i) const {
  const SplitData& sd = impl_->split(t, s);
  BORA_CHECK(i >= 0 && i < static_cast<int64_t>(sd.prompt_len.size()), DataError, "sequence ", i,
             " out of range: task '", impl_->manifest.tasks[t].name, "' ", split_name(s), " has ",
             sd.prompt_len.size());
  return static_cast<int64_t>(sd.offsets[i + 1] - sd.offsets[i]);
}

int32_t DatasetReader::prompt_len(int64_t t, Split s, int64_t i) const {
  (void)length(t, s, i);  // range check
  return impl_->split(t, s).prompt_len[i];
}

void DatasetReader::read(int64_t t, Split s, int64_t i, Sequence* out) {
  int64_t len = length(t, s, i);
  const SplitData& sd = impl_->split(t, s);
  out->tokens.resize(static_cast<size_t>(len));
  out->prompt_len = sd.prompt_len[i];
  impl_->copy_tokens(t, s, static_cast<int64_t>(sd.offsets[i]), static_cast<int64_t>(sd.offsets[i + 1]),
                     out->tokens.data());
}

void DatasetReader::read_range(int64_t t, Split s, int64_t begin, int64_t end,
                               std::vector<int32_t>* tokens, std::vector<int64_t>* offsets,
                               std::vector<int32_t>* prompt_lens) {
  const SplitData& sd = impl_->split(t, s);
  int64_t n = static_cast<int64_t>(sd.prompt_len.size());
  BORA_CHECK(begin >= 0 && begin <= end && end <= n, DataError, "sequence range [", begin, ", ", end,
             ") out of range: task '", impl_->manifest.tasks[t].name, "' ", split_name(s), " has ", n);
  int64_t b = static_cast<int64_t>(sd.offsets[begin]), e = static_cast<int64_t>(sd.offsets[end]);
  tokens->resize(static_cast<size_t>(e - b));
  offsets->resize(static_cast<size_t>(end - begin + 1));
  for (int64_t i = begin; i <= end; ++i) (*offsets)[i - begin] = static_cast<int64_t>(sd.offsets[i]) - b;
  prompt_lens->assign(sd.prompt_len.begin() + begin, sd.prompt_len.begin() + end);
  impl_->copy_tokens(t, s, b, e, tokens->data());
}

int64_t DatasetReader::doc_index(int64_t t, Split s, int64_t i) {
  (void)length(t, s, i);
  SplitData& sd = impl_->split(t, s);
  if (sd.doc_index.empty()) {
    auto lock = hdf5_lock();
    hdf5_quiet();
    std::string o = cat(impl_->task(t).origin, " ", split_name(s));
    sd.doc_index = read_all<int64_t>(sd.group.get(), kDocIndexDataset, H5T_NATIVE_INT64,
                                     static_cast<int64_t>(sd.prompt_len.size()), o);
  }
  return sd.doc_index[i];
}

DatasetReader::CacheStats DatasetReader::cache_stats() const {
  CacheStats st;
  st.hits = impl_->cache.hits();
  st.misses = impl_->cache.misses();
  st.bytes = impl_->cache.bytes();
  st.chunks = impl_->cache.chunks();
  return st;
}

}  // namespace bora
