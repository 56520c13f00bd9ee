// Atomic writes, memory maps, hashes.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/json.h"

namespace bora {
namespace {

TEST(Fs, AtomicWriteReplacesAndLeavesNoTemp) {
  std::string dir = testing::TempDir() + "/fs_atomic";
  make_dirs(dir);
  std::string p = dir + "/f.txt";
  write_file_atomic(p, "old");
  write_file_atomic(p, "new contents");
  EXPECT_EQ(read_file(p), "new contents");
  int n = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) n += e.is_regular_file();
  EXPECT_EQ(n, 1);
}

TEST(Fs, WriteIntoReadOnlyFolderFailsAndKeepsOld) {
  if (geteuid() == 0) GTEST_SKIP() << "root ignores folder permissions";
  std::string dir = testing::TempDir() + "/fs_ro";
  make_dirs(dir);
  write_file_atomic(dir + "/f", "old");
  chmod(dir.c_str(), 0555);
  EXPECT_THROW(write_file_atomic(dir + "/f", "new"), IoError);
  chmod(dir.c_str(), 0755);
  EXPECT_EQ(read_file(dir + "/f"), "old");
}

TEST(Fs, ErrorsNameThePath) {
  try {
    read_file("/nonexistent/bora/file");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/bora/file"), std::string::npos);
  }
  EXPECT_THROW(MappedFile::open("/nonexistent"), IoError);
}

TEST(Fs, MappedFileSeesBytes) {
  std::string p = testing::TempDir() + "/mapped.bin";
  write_file_atomic(p, std::string("\x01\x02\x03", 3));
  auto m = MappedFile::open(p);
  ASSERT_EQ(m->size(), 3u);
  EXPECT_EQ(m->data()[2], 3);
}

TEST(Hash, StreamingEqualsOneShotAndDiffers) {
  std::string s(100000, 'x');
  s[500] = 'y';
  Hasher h;
  h.update(s.data(), 777).update(s.data() + 777, s.size() - 777);
  EXPECT_EQ(h.digest(), hash64(s));
  EXPECT_NE(hash64(s), hash64(std::string(100000, 'x')));
  EXPECT_EQ(hex64(0x1234), "0000000000001234");
}

TEST(Json, BadJsonNamesFileAndByte) {
  std::string p = testing::TempDir() + "/bad.json";
  write_file_atomic(p, "{\"a\": 1,, }");
  try {
    read_json_file(p);
    FAIL();
  } catch (const FormatError& e) {
    std::string w = e.what();
    EXPECT_NE(w.find("bad.json"), std::string::npos) << w;
    EXPECT_NE(w.find("byte"), std::string::npos) << w;
  }
  write_file_atomic(p, "{\"a\": 1e999}");
  EXPECT_THROW(read_json_file(p), FormatError);
  Json j = Json::parse("{\"a\": \"x\"}");
  EXPECT_THROW(json_get<int>(j, "a", "f.json"), FormatError);
  EXPECT_THROW(json_get<int>(j, "b", "f.json"), FormatError);
}

}  // namespace
}  // namespace bora
