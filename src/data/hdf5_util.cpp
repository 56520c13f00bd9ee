// HDF5 handles, error text and attribute helpers (hdf5_util.h).
#include "data/hdf5_util.h"

#include <vector>

namespace bora {

std::unique_lock<std::recursive_mutex> hdf5_lock() {
  // The one process-wide object of data/: HDF5 itself is process-global state.
  static std::recursive_mutex mu;
  return std::unique_lock<std::recursive_mutex>(mu);
}

void hdf5_quiet() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

namespace {
herr_t collect_error(unsigned /*n*/, const H5E_error2_t* err, void* data) {
  auto* out = static_cast<std::vector<std::string>*>(data);
  if (err->desc && *err->desc) out->push_back(err->desc);
  return 0;
}
}  // namespace

std::string hdf5_error_text() {
  std::vector<std::string> msgs;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_error, &msgs);
  H5Eclear2(H5E_DEFAULT);
  if (msgs.empty()) return "HDF5 call failed";
  // The outermost message says what failed, the innermost why; the middle is noise.
  if (msgs.size() == 1) return msgs[0];
  return msgs.front() + "; " + msgs.back();
}

void H5Id::reset() {
  if (id_ >= 0) {
    auto lock = hdf5_lock();
    hdf5_quiet();
    (void)close();
  }
}

bool H5Id::close() {
  if (id_ < 0) return true;
  auto lock = hdf5_lock();
  hid_t id = id_;
  id_ = -1;
  herr_t rc = -1;
  switch (H5Iget_type(id)) {
    case H5I_FILE: rc = H5Fclose(id); break;
    case H5I_GROUP: rc = H5Gclose(id); break;
    case H5I_DATASET: rc = H5Dclose(id); break;
    case H5I_DATASPACE: rc = H5Sclose(id); break;
    case H5I_DATATYPE: rc = H5Tclose(id); break;
    case H5I_ATTR: rc = H5Aclose(id); break;
    case H5I_GENPROP_LST: rc = H5Pclose(id); break;
    default: rc = H5Idec_ref(id); break;
  }
  return rc >= 0;
}

namespace {

H5Id utf8_string_type() {
  H5Id t = H5_ID(InternalError, H5Tcopy(H5T_C_S1), "H5Tcopy");
  H5_OK(InternalError, H5Tset_size(t.get(), H5T_VARIABLE), "H5Tset_size");
  H5_OK(InternalError, H5Tset_cset(t.get(), H5T_CSET_UTF8), "H5Tset_cset");
  return t;
}

H5Id create_attr(hid_t obj, const char* name, hid_t type, const std::string& origin) {
  H5Id space = H5_ID(IoError, H5Screate(H5S_SCALAR), origin, ": H5Screate");
  H5Id acpl = H5_ID(IoError, H5Pcreate(H5P_ATTRIBUTE_CREATE), origin, ": H5Pcreate");
  H5_OK(IoError, H5Pset_char_encoding(acpl.get(), H5T_CSET_UTF8), origin, ": attribute encoding");
  return H5_ID(IoError, H5Acreate2(obj, name, type, space.get(), acpl.get(), H5P_DEFAULT), origin,
               ": cannot create attribute '", name, "'");
}

}  // namespace

void write_attr(hid_t obj, const char* name, const std::string& value, const std::string& origin) {
  auto lock = hdf5_lock();
  H5Id type = utf8_string_type();
  H5Id attr = create_attr(obj, name, type.get(), origin);
  const char* p = value.c_str();
  H5_OK(IoError, H5Awrite(attr.get(), type.get(), &p), origin, ": cannot write attribute '", name,
        "'");
}

void write_attr(hid_t obj, const char* name, int64_t value, const std::string& origin) {
  auto lock = hdf5_lock();
  H5Id attr = create_attr(obj, name, H5T_STD_I64LE, origin);
  H5_OK(IoError, H5Awrite(attr.get(), H5T_NATIVE_INT64, &value), origin,
        ": cannot write attribute '", name, "'");
}

bool has_attr(hid_t obj, const char* name) {
  auto lock = hdf5_lock();
  return H5Aexists(obj, name) > 0;
}

std::string read_attr_string(hid_t obj, const char* name, const std::string& origin) {
  auto lock = hdf5_lock();
  BORA_CHECK(H5Aexists(obj, name) > 0, FormatError, origin, ": attribute '", name, "' is missing");
  H5Id attr = H5_ID(FormatError, H5Aopen(obj, name, H5P_DEFAULT), origin, ": attribute '", name, "'");
  H5Id ftype = H5_ID(FormatError, H5Aget_type(attr.get()), origin, ": attribute '", name, "'");
  BORA_CHECK(H5Tget_class(ftype.get()) == H5T_STRING && H5Tis_variable_str(ftype.get()) > 0,
             FormatError, origin, ": attribute '", name, "' is not a variable-length string");
  H5Id mtype = utf8_string_type();
  char* p = nullptr;
  H5_OK(FormatError, H5Aread(attr.get(), mtype.get(), &p), origin, ": cannot read attribute '", name,
        "'");
  std::string out = p ? p : "";
  if (p) H5free_memory(p);
  return out;
}

int64_t read_attr_int(hid_t obj, const char* name, const std::string& origin) {
  auto lock = hdf5_lock();
  BORA_CHECK(H5Aexists(obj, name) > 0, FormatError, origin, ": attribute '", name, "' is missing");
  H5Id attr = H5_ID(FormatError, H5Aopen(obj, name, H5P_DEFAULT), origin, ": attribute '", name, "'");
  H5Id ftype = H5_ID(FormatError, H5Aget_type(attr.get()), origin, ": attribute '", name, "'");
  BORA_CHECK(H5Tget_class(ftype.get()) == H5T_INTEGER, FormatError, origin, ": attribute '", name,
             "' is not an integer");
  int64_t v = 0;
  H5_OK(FormatError, H5Aread(attr.get(), H5T_NATIVE_INT64, &v), origin,
        ": cannot read attribute '", name, "'");
  return v;
}

int64_t dataset_length(hid_t dset, const std::string& origin) {
  auto lock = hdf5_lock();
  H5Id space = H5_ID(FormatError, H5Dget_space(dset), origin, ": dataspace");
  int rank = H5Sget_simple_extent_ndims(space.get());
  BORA_CHECK(rank == 1, FormatError, origin, ": expected a 1-D dataset, found rank ", rank);
  hsize_t n = 0;
  H5Sget_simple_extent_dims(space.get(), &n, nullptr);
  return static_cast<int64_t>(n);
}

}  // namespace bora
