#include "model/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "core/error.h"
#include "core/hash.h"

namespace bora {

torch::ScalarType to_torch_dtype(StDType d) {
  switch (d) {
    case StDType::BOOL: return torch::kBool;
    case StDType::U8: return torch::kUInt8;
    case StDType::I8: return torch::kInt8;
    case StDType::I16: return torch::kInt16;
    case StDType::F16: return torch::kFloat16;
    case StDType::BF16: return torch::kBFloat16;
    case StDType::I32: return torch::kInt32;
    case StDType::F32: return torch::kFloat32;
    case StDType::I64: return torch::kInt64;
    case StDType::F64: return torch::kFloat64;
    default: break;
  }
  BORA_THROW(FormatError, "safetensors dtype ", st_dtype_name(d), " has no LibTorch equivalent");
}

StDType to_st_dtype(torch::ScalarType t) {
  switch (t) {
    case torch::kBool: return StDType::BOOL;
    case torch::kUInt8: return StDType::U8;
    case torch::kInt8: return StDType::I8;
    case torch::kInt16: return StDType::I16;
    case torch::kFloat16: return StDType::F16;
    case torch::kBFloat16: return StDType::BF16;
    case torch::kInt32: return StDType::I32;
    case torch::kFloat32: return StDType::F32;
    case torch::kInt64: return StDType::I64;
    case torch::kFloat64: return StDType::F64;
    default: break;
  }
  BORA_THROW(FormatError, "LibTorch dtype ", c10::toString(t), " cannot be stored in safetensors");
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile f;
  f.map_ = MappedFile::open(path);
  f.header_ = parse_st_header(f.map_->data(), f.map_->size(), path);
  return f;
}

torch::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const StTensorInfo* info = header_.find(name);
  BORA_CHECK(info, FormatError, path(), ": no tensor '", name, "'");
  return tensor(*info);
}

torch::Tensor SafetensorsFile::tensor(const StTensorInfo& info) const {
  auto dtype = to_torch_dtype(info.dtype);
  auto opts = torch::TensorOptions().dtype(dtype).device(torch::kCPU);
  if (info.numel() == 0) return torch::empty(info.shape, opts);
  void* p = const_cast<uint8_t*>(bytes(info));
  if (reinterpret_cast<uintptr_t>(p) % static_cast<uintptr_t>(st_dtype_size(info.dtype)) != 0) {
    // Misaligned (the writer did not pad the header): copy into aligned memory.
    auto out = torch::empty(info.shape, opts);
    std::memcpy(out.data_ptr(), p, info.end - info.begin);
    return out;
  }
  std::shared_ptr<MappedFile> keep = map_;
  return torch::from_blob(p, info.shape, [keep](void*) mutable { keep.reset(); }, opts);
}

namespace {

void write_all(int fd, const void* data, size_t size, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    BORA_CHECK(n > 0, IoError, "cannot write '", path, "': ", std::strerror(errno));
    p += n;
    size -= static_cast<size_t>(n);
  }
}

}  // namespace

StDigests save_safetensors(const std::string& path, const NamedTensors& tensors,
                           const std::map<std::string, std::string>& metadata) {
  std::vector<StTensorInfo> infos;
  std::vector<torch::Tensor> cpu;
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    BORA_CHECK(seen.insert(name).second, InternalError, path, ": tensor '", name, "' saved twice");
    torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
    StTensorInfo info;
    info.name = name;
    info.dtype = to_st_dtype(c.scalar_type());
    info.shape = c.sizes().vec();
    info.begin = offset;
    info.end = offset + static_cast<uint64_t>(c.nbytes());
    offset = info.end;
    infos.push_back(std::move(info));
    cpu.push_back(std::move(c));
  }
  std::string header = build_st_header(infos, metadata);

  std::string tmp = temp_path_for(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  BORA_CHECK(fd >= 0, IoError, "cannot create '", tmp, "': ", std::strerror(errno));
  StDigests digests;  // of exactly the bytes written, at ~10 GB/s: no second read
  try {
    write_all(fd, header.data(), header.size(), tmp);
    digests.header = hash64(header.data(), header.size());
    for (const auto& c : cpu) {
      // In 1 MiB pieces, hashed while still in the cache after write(2) read them.
      Hasher digest;
      const char* p = static_cast<const char*>(c.data_ptr());
      for (size_t done = 0; done < c.nbytes(); done += 1 << 20) {
        const size_t n = std::min<size_t>(1 << 20, c.nbytes() - done);
        write_all(fd, p + done, n, tmp);
        digest.update(p + done, n);
      }
      digests.tensors.push_back(digest.digest());
    }
    BORA_CHECK(::fsync(fd) == 0, IoError, "cannot sync '", tmp, "': ", std::strerror(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  rename_durable(tmp, path);
  return digests;
}

}  // namespace bora
