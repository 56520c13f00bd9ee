// Internal HDF5 helpers of data/: an owning handle (hid_t closed exactly once),
// errors that carry HDF5's own reason ("Data error detected by Fletcher32 checksum")
// as a bora error naming the file, and typed attribute access.
//
// Thread safety: HDF5 is entered only under hdf5_lock(), a process-wide recursive
// mutex. Debian's libhdf5 is built thread-safe (it has its own global lock), but a
// build without --enable-threadsafe is not, and bora must not depend on how the
// library was configured. Only open, close and chunk misses enter HDF5, so the
// lock is never hot.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <mutex>
#include <string>

#include "core/error.h"

namespace bora {

std::unique_lock<std::recursive_mutex> hdf5_lock();

// Turns off HDF5's automatic printing of error stacks (for the calling thread in
// thread-safe builds): bora reports HDF5 failures itself, as one line.
void hdf5_quiet();

// The reason HDF5 gave for the last failure on this thread: the innermost messages
// of its error stack, e.g. "can't read data; Data error detected by Fletcher32
// checksum". Clears the stack.
std::string hdf5_error_text();

// An owning hid_t. Closed with H5Oclose/H5Fclose/H5Sclose/... chosen by the id's type.
class H5Id {
 public:
  H5Id() = default;
  explicit H5Id(hid_t id) : id_(id) {}
  ~H5Id() { reset(); }
  H5Id(H5Id&& o) noexcept : id_(o.id_) { o.id_ = -1; }
  H5Id& operator=(H5Id&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      o.id_ = -1;
    }
    return *this;
  }
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  // Closes now and reports a failure (a file close flushes: a full disk shows here).
  // Returns false when HDF5 refused to close the object.
  bool close();
  void reset();

 private:
  hid_t id_ = -1;
};

// Throws Err(context + ": " + hdf5 reason) when `id` < 0; returns the owning handle.
template <class Err>
H5Id h5_checked(hid_t id, const std::string& context, const char* file, int line) {
  if (id < 0) throw Err(context + ": " + hdf5_error_text(), file, line);
  return H5Id(id);
}
template <class Err>
void h5_checked_status(herr_t status, const std::string& context, const char* file, int line) {
  if (status < 0) throw Err(context + ": " + hdf5_error_text(), file, line);
}

// H5_ID(IoError, H5Fcreate(...), "cannot create ", path) -> H5Id, or throws.
#define H5_ID(Type, call, ...) ::bora::h5_checked<::bora::Type>((call), ::bora::cat(__VA_ARGS__), __FILE__, __LINE__)
#define H5_OK(Type, call, ...) \
  ::bora::h5_checked_status<::bora::Type>((call), ::bora::cat(__VA_ARGS__), __FILE__, __LINE__)

// ---- attributes (scalar) -----------------------------------------------------
// Strings are variable-length UTF-8 (h5py reads them as str); integers are int64 LE.
void write_attr(hid_t obj, const char* name, const std::string& value, const std::string& origin);
void write_attr(hid_t obj, const char* name, int64_t value, const std::string& origin);
bool has_attr(hid_t obj, const char* name);
// FormatError naming `origin` and the attribute when absent or of another type.
std::string read_attr_string(hid_t obj, const char* name, const std::string& origin);
int64_t read_attr_int(hid_t obj, const char* name, const std::string& origin);

// Number of elements of a 1-D dataset (FormatError when it is not 1-D).
int64_t dataset_length(hid_t dset, const std::string& origin);

}  // namespace bora
