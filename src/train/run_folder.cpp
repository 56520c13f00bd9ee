#include "train/run_folder.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "core/fs.h"
#include "core/options.h"

namespace bora {

RunFolder::RunFolder(std::string dir, bool writer, RunLockOptions lock) : dir_(std::move(dir)), writer_(writer) {
  if (!writer_) return;
  lock_ = std::make_unique<RunLock>(dir_, lock);  // creates the folder; refuses a folder in use
  const std::string m = path("metrics.jsonl");
  metrics_ = std::fopen(m.c_str(), "a");
  BORA_CHECK(metrics_, IoError, "cannot open '", m, "' for writing: ", std::strerror(errno));
}

RunFolder::~RunFolder() {
  if (metrics_) std::fclose(metrics_);
}

void RunFolder::verify_lock(const std::string& action) const {
  if (lock_) lock_->verify(action);
}

void RunFolder::write_text(const std::string& name, const std::string& text) const {
  if (!writer_) return;
  verify_lock("write " + name);
  write_file_atomic(path(name), text);
}

void RunFolder::write_json(const std::string& name, const OrderedJson& j) const {
  if (!writer_) return;
  verify_lock("write " + name);
  write_file_atomic(path(name), j.dump(2) + "\n");
}

void RunFolder::append_metrics(const OrderedJson& record) {
  if (!writer_) return;
  std::string line = record.dump() + "\n";
  BORA_CHECK(std::fwrite(line.data(), 1, line.size(), metrics_) == line.size() && std::fflush(metrics_) == 0,
             IoError, "cannot write '", path("metrics.jsonl"), "': ", std::strerror(errno));
}

std::string run_option(const std::string& run_dir, const std::string& key) {
  const std::string ini = run_dir + "/config.ini";
  BORA_CHECK(std::filesystem::is_directory(run_dir), ConfigError, "run folder '", run_dir, "' does not exist");
  BORA_CHECK(std::filesystem::exists(ini), ConfigError, "'", run_dir, "' is not a bora-train run folder (no config.ini)");
  // Read without an option table, so that options of other tools or versions cannot fail it.
  std::optional<std::string> found;  // the last one wins, as in parse_ini
  for (const auto& [k, value] : read_ini(read_file(ini), ini))
    if (k == key) found = value;
  BORA_CHECK(found, ConfigError, ini, ": no '", key, "' option");
  return *found;
}

std::string run_adapter_dir(const std::string& run_dir, const std::string& task) {
  namespace fs = std::filesystem;
  BORA_CHECK(fs::is_directory(run_dir), ConfigError, "run folder '", run_dir, "' does not exist");
  const std::string shared = run_dir + "/adapters/shared";
  if (fs::is_directory(shared)) return shared;
  const std::string dir = run_dir + "/adapters/" + task;
  if (!task.empty() && task.find('/') == std::string::npos && fs::is_directory(dir)) return dir;
  std::vector<std::string> names;
  if (fs::is_directory(run_dir + "/adapters"))
    for (const auto& e : fs::directory_iterator(run_dir + "/adapters")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  std::string tasks;
  for (const auto& n : names) tasks += (tasks.empty() ? "" : ", ") + n;
  BORA_THROW(ConfigError, "run '", run_dir, "' has no adapter for task '", task, "' (",
             tasks.empty() ? "it has no adapters/ folder" : "its tasks: " + tasks, ")");
}

}  // namespace bora
