// The dataset reader: what it serves, which shards it opens, its bounded cache, and
// every way a dataset can be wrong (truncated or altered shards, a manifest that does
// not match its shards, a model with another tokenizer).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <random>

#include "core/json.h"
#include "data/dataset.h"
#include "data/hdf5_util.h"
#include "data_test_util.h"

namespace bora {
namespace {

using test::expect_error;
using test::fresh_dir;

struct Built {
  std::string dir;
  std::vector<TaskSequences> tasks;
};

// Three tasks, one per shard, with a chunk of 256 tokens (many chunks per split).
Built build(int64_t vocab = 50000, int64_t max_len = 100, int tasks_per_shard = 1) {
  Built b;
  b.dir = fresh_dir() + "/ds";
  std::mt19937_64 rng(1);
  DatasetWriteOptions o;
  o.shard.chunk_tokens = 256;
  o.tasks_per_shard = tasks_per_shard;
  DatasetWriter w(b.dir, test::synthetic_info(vocab, max_len), o);
  for (const char* name : {"alpha", "beta", "gamma"}) {
    b.tasks.push_back(test::synthetic_task(name, {40, 20, 10}, vocab, max_len, rng));
    w.add_task(b.tasks.back());
  }
  w.finish();
  return b;
}

void expect_same(DatasetReader& r, const Built& b) {
  for (size_t t = 0; t < b.tasks.size(); ++t) {
    int64_t ti = r.task_index(b.tasks[t].name);
    for (Split s : kAllSplits) {
      const SplitSequences& want = b.tasks[t].splits[static_cast<int>(s)];
      ASSERT_EQ(r.size(ti, s), want.size());
      Sequence seq;
      for (int64_t i = 0; i < want.size(); ++i) {
        r.read(ti, s, i, &seq);
        std::vector<int32_t> w(want.tokens.begin() + want.offsets[i], want.tokens.begin() + want.offsets[i + 1]);
        ASSERT_EQ(seq.tokens, w) << b.tasks[t].name << " " << split_name(s) << " " << i;
        ASSERT_EQ(seq.prompt_len, want.prompt_len[i]);
        ASSERT_EQ(r.length(ti, s, i), static_cast<int64_t>(w.size()));
      }
    }
  }
}

TEST(Reader, ServesWhatWasWritten) {
  Built b = build();
  DatasetReader r(b.dir, {});
  EXPECT_EQ(r.open_tasks(), (std::vector<int64_t>{0, 1, 2}));
  expect_same(r, b);
  const Manifest& m = r.manifest();
  EXPECT_EQ(m.shards.size(), 3u);
  EXPECT_EQ(m.tasks[1].shard, "shard-00001.h5");
  EXPECT_EQ(m.tasks[1].split(Split::Train).sequences, 40);
  EXPECT_EQ(m.tasks[1].split(Split::Train).target_tokens, b.tasks[1].splits[0].counts().target_tokens);
  // read_range is the same sequences, packed.
  std::vector<int32_t> tokens, plens;
  std::vector<int64_t> offsets;
  r.read_range(2, Split::Train, 5, 17, &tokens, &offsets, &plens);
  ASSERT_EQ(offsets.size(), 13u);
  Sequence s;
  for (int64_t i = 5; i < 17; ++i) {
    r.read(2, Split::Train, i, &s);
    EXPECT_EQ(std::vector<int32_t>(tokens.begin() + offsets[i - 5], tokens.begin() + offsets[i - 4]), s.tokens);
    EXPECT_EQ(plens[i - 5], s.prompt_len);
    EXPECT_EQ(r.doc_index(2, Split::Train, i), i);
  }
  expect_error<DataError>([&] { r.read(0, Split::Test, 10, &s); }, {"sequence 10 out of range", "'alpha' test has 10"});
  expect_error<DataError>([&] { r.task_index("delta"); }, {"task 'delta' is not in dataset", "alpha, beta, gamma"});
}

TEST(Reader, Int32TokensAboveUint16) {
  Built b = build(/*vocab=*/200000);
  DatasetReader r(b.dir, {"beta"});
  EXPECT_EQ(r.manifest().token_dtype, TokenDtype::Int32);
  int64_t big = 0;
  for (int32_t id : b.tasks[1].splits[0].tokens) big += id >= 65536;
  EXPECT_GT(big, 100);
  Sequence s;
  const SplitSequences& want = b.tasks[1].splits[0];
  for (int64_t i = 0; i < want.size(); ++i) {
    r.read(1, Split::Train, i, &s);
    ASSERT_TRUE(std::equal(s.tokens.begin(), s.tokens.end(), want.tokens.begin() + want.offsets[i]));
  }
}

TEST(Reader, OpensOnlyTheShardsOfItsTasks) {
  Built b = build();
  // Destroy the shards of alpha and gamma: a reader of beta never touches them.
  test::write_text(b.dir + "/shard-00000.h5", "garbage");
  test::fs::remove(b.dir + "/shard-00002.h5");
  DatasetReader r(b.dir, {"beta"});
  EXPECT_EQ(r.open_tasks(), (std::vector<int64_t>{1}));
  EXPECT_TRUE(r.is_open(1));
  EXPECT_FALSE(r.is_open(0));
  // It still knows every task's counts, from the manifest.
  EXPECT_EQ(r.manifest().tasks[0].split(Split::Train).sequences, 40);
  Sequence s;
  r.read(1, Split::Validation, 3, &s);
  EXPECT_EQ(s.prompt_len, b.tasks[1].splits[1].prompt_len[3]);
  expect_error<DataError>([&] { r.read(0, Split::Train, 0, &s); }, {"'alpha' is not opened", "shard-00000.h5"});
  expect_error<FormatError>([&] { DatasetReader(b.dir, {"alpha"}); }, {"shard-00000.h5", "truncated or altered"});
}

TEST(Reader, CacheIsBounded) {
  Built b = build(50000, 100, /*tasks_per_shard=*/0);
  ReaderOptions o;
  o.cache_bytes = 3 * 256 * 2;  // three chunks of 256 uint16 tokens
  DatasetReader r(b.dir, {}, o);
  EXPECT_EQ(r.manifest().shards.size(), 1u);
  std::mt19937_64 rng(3);
  Sequence s;
  for (int k = 0; k < 2000; ++k) {
    int64_t t = static_cast<int64_t>(rng() % 3);
    Split sp = kAllSplits[rng() % 3];
    int64_t i = static_cast<int64_t>(rng() % static_cast<uint64_t>(r.size(t, sp)));
    r.read(t, sp, i, &s);
    const SplitSequences& want = b.tasks[t].splits[static_cast<int>(sp)];
    ASSERT_TRUE(std::equal(s.tokens.begin(), s.tokens.end(), want.tokens.begin() + want.offsets[i]));
    ASSERT_LE(r.cache_stats().bytes, o.cache_bytes);
  }
  auto st = r.cache_stats();
  EXPECT_GT(st.misses, 100);
  EXPECT_GT(st.hits, 100);
  // A bound below one chunk still works, holding exactly one.
  ReaderOptions tiny;
  tiny.cache_bytes = 1;
  DatasetReader r2(b.dir, {}, tiny);
  expect_same(r2, b);
  EXPECT_EQ(r2.cache_stats().chunks, 1);
}

// The file offset of a tokens chunk, from HDF5's chunk index.
int64_t chunk_address(const std::string& path, const std::string& dset, int64_t* size, hsize_t first = 256) {
  auto lock = hdf5_lock();
  H5Id f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  H5Id d(H5Dopen2(f.get(), dset.c_str(), H5P_DEFAULT));
  hsize_t offset[1] = {first};  // the chunk holding element `first`
  unsigned mask = 0;
  haddr_t addr = 0;
  hsize_t bytes = 0;
  EXPECT_GE(H5Dget_chunk_info_by_coord(d.get(), offset, &mask, &addr, &bytes), 0);
  *size = static_cast<int64_t>(bytes);
  return static_cast<int64_t>(addr);
}

void flip_byte(const std::string& path, int64_t at) {
  int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  unsigned char c = 0;
  ASSERT_EQ(::pread(fd, &c, 1, at), 1);
  c ^= 0x5A;
  ASSERT_EQ(::pwrite(fd, &c, 1, at), 1);
  ::close(fd);
}

TEST(Reader, FlippedByteInADataChunkFailsItsChecksum) {
  Built b = build();
  std::string shard = b.dir + "/shard-00001.h5";
  int64_t size = 0;
  int64_t addr = chunk_address(shard, "/tasks/beta/train/tokens", &size);
  ASSERT_GT(addr, 0);
  ASSERT_GT(size, 16);
  flip_byte(shard, addr + size / 2);
  // Same size, so open succeeds; the chunk's Fletcher32 fails at its first read.
  DatasetReader r(b.dir, {"beta"});
  Sequence s;
  r.read(1, Split::Train, 0, &s);  // chunk 0 is intact
  const SplitSequences& want = b.tasks[1].splits[0];
  int64_t in_chunk1 = 0;
  while (static_cast<int64_t>(want.offsets[in_chunk1 + 1]) <= 256) ++in_chunk1;
  expect_error<FormatError>([&] { r.read(1, Split::Train, in_chunk1, &s); },
                            {shard, "task 'beta' train tokens", "cannot read chunk 1", "corrupt"});
  // With verify_hash the whole-file hash catches it at open.
  ReaderOptions o;
  o.verify_hash = true;
  expect_error<FormatError>([&] { DatasetReader(b.dir, {"beta"}, o); }, {shard, "altered"});
  DatasetReader fine(b.dir, {"alpha"}, o);  // other shards still verify

  // A flipped byte in offsets (read whole at open) fails the open.
  std::string shard2 = b.dir + "/shard-00002.h5";
  int64_t addr2 = chunk_address(shard2, "/tasks/gamma/validation/offsets", &size, 0);
  flip_byte(shard2, addr2 + size / 2);
  expect_error<FormatError>([&] { DatasetReader(b.dir, {"gamma"}); },
                            {shard2, "task 'gamma' validation offsets", "corrupt"});
}

TEST(Reader, TruncatedShardFailsAtOpen) {
  Built b = build();
  std::string shard = b.dir + "/shard-00002.h5";
  int64_t n = static_cast<int64_t>(test::fs::file_size(shard));
  test::fs::resize_file(shard, static_cast<uintmax_t>(n - 100));
  expect_error<FormatError>([&] { DatasetReader(b.dir, {"gamma"}); },
                            {shard, std::to_string(n - 100) + " bytes", "manifest says " + std::to_string(n), "truncated"});
}

// Rewrites manifest.json through `edit`.
void edit_manifest(const std::string& dir, const std::function<void(Json&)>& edit) {
  Json j = read_json_file(dir + "/manifest.json");
  edit(j);
  write_json_file_atomic(dir + "/manifest.json", j);
}

TEST(Reader, ManifestThatDoesNotMatchItsShards) {
  Built b = build();
  // Consistent manifest, wrong counts: one train document more than the shard has.
  edit_manifest(b.dir, [](Json& j) {
    Json& t = j["tasks"][0];
    t["documents"] = t["documents"].get<int64_t>() + 1;
    t["rows"] = t["rows"].get<int64_t>() + 1;
    t["train"]["sequences"] = t["train"]["sequences"].get<int64_t>() + 1;
  });
  expect_error<FormatError>([&] { DatasetReader(b.dir, {"alpha"}); },
                            {"shard-00000.h5: task 'alpha'", "manifest says 71"});
  DatasetReader(b.dir, {"beta"});  // the other tasks are fine

  Built c = build();
  edit_manifest(c.dir, [](Json& j) { j["tokenizer"]["identity"] = "ffffffffffffffff"; });
  expect_error<FormatError>([&] { DatasetReader(c.dir, {"gamma"}); },
                            {"shard-00002.h5", "tokenizer_identity", "ffffffffffffffff"});

  Built d = build();
  edit_manifest(d.dir, [](Json& j) { std::swap(j["tasks"][0]["shard"], j["tasks"][1]["shard"]); });
  expect_error<FormatError>([&] { DatasetReader(d.dir, {}); }, {"task 'alpha'", "shard-00001.h5"});

  Built e = build();
  edit_manifest(e.dir, [](Json& j) { j["format_version"] = 99; });
  expect_error<FormatError>([&] { DatasetReader(e.dir, {}); }, {"manifest.json", "format version 99"});

  Built f = build();
  edit_manifest(f.dir, [](Json& j) { j["tasks"][2]["test"]["target_tokens"] = 1; });
  expect_error<FormatError>([&] { DatasetReader(f.dir, {}); }, {"task 'gamma' test", "inconsistent counts"});
}

TEST(Reader, TokenizerCheck) {
  Built b = build();
  DatasetReader r(b.dir, {"alpha"});
  r.check_tokenizer("0123456789abcdef", 50000);
  r.check_tokenizer("0123456789abcdef", 50272);  // a larger embedding is fine
  expect_error<DataError>([&] { r.check_tokenizer("fedcba9876543210", 50000); },
                          {"0123456789abcdef", "fedcba9876543210", b.dir});
  expect_error<DataError>([&] { r.check_tokenizer("0123456789abcdef", 40000); },
                          {"token ids up to 49999", "only 40000"});
}

TEST(Reader, EmptySplitsAndTrailingSlash) {
  std::string dir = fresh_dir() + "/ds/";  // a trailing slash names the same folder
  std::mt19937_64 rng(5);
  DatasetWriter w(dir, test::synthetic_info(1000, 16), DatasetWriteOptions());
  TaskSequences t = test::synthetic_task("only", {3, 0, 0}, 1000, 16, rng);
  w.add_task(t);
  Manifest m = w.finish();
  EXPECT_EQ(m.tasks[0].split(Split::Validation).sequences, 0);
  EXPECT_TRUE(test::fs::exists(dir + "manifest.json"));
  EXPECT_FALSE(test::fs::exists(dir + ".tmp." + std::to_string(::getpid())));
  DatasetReader r(dir, {"only"});
  EXPECT_EQ(r.size(0, Split::Train), 3);
  EXPECT_EQ(r.size(0, Split::Validation), 0);
  EXPECT_EQ(r.size(0, Split::Test), 0);
  std::vector<int32_t> tok, plen;
  std::vector<int64_t> off;
  r.read_range(0, Split::Test, 0, 0, &tok, &off, &plen);
  EXPECT_TRUE(tok.empty());
  EXPECT_EQ(off, std::vector<int64_t>{0});
  Sequence s;
  r.read(0, Split::Train, 2, &s);
  EXPECT_EQ(s.tokens.size(), t.splits[0].offsets[3] - t.splits[0].offsets[2]);
}

TEST(Reader, MissingManifestIsAnIoError) {
  std::string dir = fresh_dir();
  expect_error<IoError>([&] { DatasetReader(dir, {}); }, {dir + "/manifest.json"});
}

}  // namespace
}  // namespace bora
