#include "core/fs.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace bora {
namespace {

std::string errno_text() { return std::strerror(errno); }

}  // namespace

UniqueFd::~UniqueFd() {
  if (fd >= 0) ::close(fd);
}

std::string read_file(const std::string& path) {
  UniqueFd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  BORA_CHECK(f.fd >= 0, IoError, "cannot open '", path, "': ", errno_text());
  struct stat st {};
  BORA_CHECK(::fstat(f.fd, &st) == 0, IoError, "cannot stat '", path, "': ", errno_text());
  BORA_CHECK(!S_ISDIR(st.st_mode), IoError, "'", path, "' is a folder, not a file");
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::read(f.fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    BORA_CHECK(n >= 0, IoError, "cannot read '", path, "': ", errno_text());
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  return out;
}

std::string temp_path_for(const std::string& path) {
  return path + ".tmp." + std::to_string(::getpid());
}

void fsync_path(const std::string& path) {
  UniqueFd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  BORA_CHECK(f.fd >= 0, IoError, "cannot open '", path, "' to sync: ", errno_text());
  // Some file systems refuse fsync on folders (EINVAL); the rename is still atomic.
  BORA_CHECK(::fsync(f.fd) == 0 || errno == EINVAL, IoError, "cannot sync '", path, "': ",
             errno_text());
}

void rename_durable(const std::string& from, const std::string& to) {
  BORA_CHECK(::rename(from.c_str(), to.c_str()) == 0, IoError, "cannot rename '", from, "' to '",
             to, "': ", errno_text());
  std::string parent = std::filesystem::path(to).parent_path().string();
  fsync_path(parent.empty() ? "." : parent);
}

void write_file_synced(const std::string& path, std::string_view data) {
  UniqueFd f;
  f.fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  BORA_CHECK(f.fd >= 0, IoError, "cannot create '", path, "': ", errno_text());
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(f.fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      std::string why = errno_text();
      ::unlink(path.c_str());
      BORA_THROW(IoError, "cannot write '", path, "': ", why);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(f.fd) != 0) {
    std::string why = errno_text();
    ::unlink(path.c_str());
    BORA_THROW(IoError, "cannot sync '", path, "': ", why);
  }
}

void write_file_atomic(const std::string& path, std::string_view data) {
  const std::string tmp = temp_path_for(path);
  write_file_synced(tmp, data);
  rename_durable(tmp, path);
}

void make_dirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  BORA_CHECK(!ec, IoError, "cannot create folder '", path, "': ", ec.message());
}

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  UniqueFd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  BORA_CHECK(f.fd >= 0, IoError, "cannot open '", path, "': ", errno_text());
  struct stat st {};
  BORA_CHECK(::fstat(f.fd, &st) == 0, IoError, "cannot stat '", path, "': ", errno_text());
  BORA_CHECK(!S_ISDIR(st.st_mode), IoError, "'", path, "' is a folder, not a file");
  std::shared_ptr<MappedFile> m(new MappedFile());
  m->path_ = path;
  m->size_ = static_cast<uint64_t>(st.st_size);
  if (m->size_ > 0) {
    // MAP_PRIVATE + PROT_WRITE: copy-on-write, so a stray in-place op on a tensor
    // that views the map can never reach the file on disk.
    // (Not MAP_POPULATE: on a private writable map it pre-faults every page as a
    // copy-on-write copy, i.e. a second full copy of the file in memory.)
    void* p = ::mmap(nullptr, m->size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, f.fd, 0);
    BORA_CHECK(p != MAP_FAILED, IoError, "cannot map '", path, "': ", errno_text());
    m->data_ = static_cast<uint8_t*>(p);
  }
  return m;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(data_, size_);
}

void MappedFile::advise_sequential() const {
  if (data_) ::madvise(data_, size_, MADV_SEQUENTIAL | MADV_WILLNEED);
}

}  // namespace bora
