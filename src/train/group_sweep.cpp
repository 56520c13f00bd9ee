#include "train/group_sweep.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/options.h"

namespace bora {

GroupLayout group_layout(const std::vector<std::string>& taus, int groups, int world_rank, int world_size) {
  for (const auto& t : taus) {
    const double v = parse_double("group_taus", t);
    BORA_CHECK(v >= 0, ConfigError, "group_taus: tau must be >= 0 (or inf), got ", t);
  }
  const int n = static_cast<int>(taus.size());
  GroupLayout g;
  g.groups = groups > 0 ? groups : n;
  BORA_CHECK(g.groups <= n, ConfigError, "groups = ", g.groups, " but group_taus has only ", n,
             " taus: a group would have nothing to train");
  BORA_CHECK(world_size % g.groups == 0, ConfigError, "group_taus has ", n, " taus", groups > 0 ? " in " : "",
             groups > 0 ? std::to_string(groups) + " groups" : "", " but the world has ", world_size,
             " ranks: the ranks must divide evenly into the groups (run ", g.groups, ", ", 2 * g.groups,
             ", ... ranks)");
  g.ranks_per_group = world_size / g.groups;
  g.group = world_rank / g.ranks_per_group;
  return g;
}

TauQueue::TauQueue(Communicator& world, std::string sweep_dir, std::vector<std::string> taus, int first,
                   bool skip_pruned)
    : sweep_dir_(std::move(sweep_dir)), taus_(std::move(taus)), first_(first), skip_pruned_(skip_pruned) {
  std::string id;
  if (world.rank() == 0) {
    std::random_device rd;
    const auto now = std::chrono::system_clock::now().time_since_epoch().count();
    char buf[64];
    std::snprintf(buf, sizeof buf, "%lld-%08x", static_cast<long long>(now / 1000000), unsigned(rd()));
    id = buf;
  }
  claims_ = sweep_dir_ + "/.claims/" + world.all_gather_bytes(id)[0];
}

int TauQueue::claim() {
  make_dirs(claims_);
  const int n = static_cast<int>(taus_.size());
  for (int k = 0; k < n; ++k) {
    const int i = k == 0 ? first_ : (k <= first_ ? k - 1 : k);  // the group's own tau, then the list in order
    const std::string run = sweep_dir_ + "/tau_" + taus_[size_t(i)];
    if (skip_pruned_ && std::filesystem::exists(run + "/results.json")) {
      const Json r = read_json_file(run + "/results.json");
      if (r.contains("pruned") && r["pruned"].is_object()) continue;
    }
    const std::string mark = claims_ + "/tau_" + taus_[size_t(i)];
    const int fd = ::open(mark.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::close(fd);
      return i;
    }
    BORA_CHECK(errno == EEXIST, IoError, "cannot create the claim ", mark, ": ", std::strerror(errno));
  }
  return -1;
}

}  // namespace bora
