// File helpers with the failure modes spelled out: every error names the path.
//
// write_file_atomic: data goes to "<path>.tmp.<pid>" in the same folder, is
// fsync'ed, then renamed over <path> and the folder fsync'ed. A crash leaves either
// the old file or the new one, never a half-written file under the final name.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace bora {

std::string read_file(const std::string& path);
void write_file_atomic(const std::string& path, std::string_view data);
// Writes and fsyncs `path` in place (no rename): the first half of an atomic write
// whose caller renames the file itself.
void write_file_synced(const std::string& path, std::string_view data);
// The temporary sibling name used by atomic writers: "<path>.tmp.<pid>".
std::string temp_path_for(const std::string& path);
// rename(2) then fsync of the parent folder; IoError on failure.
void rename_durable(const std::string& from, const std::string& to);
void fsync_path(const std::string& path);  // a file or a folder
// Creates a folder and its parents; IoError naming the path if it cannot.
void make_dirs(const std::string& path);

// A file descriptor closed when it goes out of scope (-1: none).
struct UniqueFd {
  int fd = -1;
  explicit UniqueFd(int f = -1) : fd(f) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();
};

// A read-only memory map of a whole file. Shared ownership: tensors that view the
// mapping hold a shared_ptr to it, so it lives exactly as long as they do.
class MappedFile {
 public:
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Hints the kernel to read ahead the whole range sequentially.
  void advise_sequential() const;

 private:
  MappedFile() = default;
  std::string path_;
  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace bora
