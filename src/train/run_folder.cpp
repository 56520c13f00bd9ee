#include "train/run_folder.h"

#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/fs.h"

namespace bora {

RunFolder::RunFolder(std::string dir, bool writer) : dir_(std::move(dir)), writer_(writer) {
  if (!writer_) return;
  make_dirs(dir_);
  const std::string m = path("metrics.jsonl");
  metrics_ = std::fopen(m.c_str(), "a");
  BORA_CHECK(metrics_, IoError, "cannot open '", m, "' for writing: ", std::strerror(errno));
}

RunFolder::~RunFolder() {
  if (metrics_) std::fclose(metrics_);
}

void RunFolder::write_text(const std::string& name, const std::string& text) const {
  if (writer_) write_file_atomic(path(name), text);
}

void RunFolder::write_json(const std::string& name, const OrderedJson& j) const {
  if (writer_) write_file_atomic(path(name), j.dump(2) + "\n");
}

void RunFolder::append_metrics(const OrderedJson& record) {
  if (!writer_) return;
  std::string line = record.dump() + "\n";
  BORA_CHECK(std::fwrite(line.data(), 1, line.size(), metrics_) == line.size() && std::fflush(metrics_) == 0,
             IoError, "cannot write '", path("metrics.jsonl"), "': ", std::strerror(errno));
}

}  // namespace bora
