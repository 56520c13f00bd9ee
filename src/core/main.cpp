#include "core/main.h"

#include <unistd.h>

#include <cstdio>
#include <exception>

#include "core/allocator.h"
#include "core/error.h"

namespace bora {

std::string host_name() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0 || !buf[0]) return "unknown-host";
  return buf;
}

std::string format_error_line(const std::string& program, int rank, int world, const std::string& host,
                              const std::string& what) {
  std::string line = program + ": ";
  line += world > 1 ? "rank " + std::to_string(rank) + " on host " + host + ": " : "host " + host + ": ";
  // Keep it to one line even when a library put newlines into its message.
  std::string msg = what;
  for (char& c : msg)
    if (c == '\n') c = ' ';
  return line + "error: " + msg;
}

namespace {
// Rank and world of this process for the message prefix; read from the environment
// that mpirun/srun set, since the error may come before the communicator exists.
void rank_from_env(int* rank, int* world) {
  const char* r = std::getenv("OMPI_COMM_WORLD_RANK");
  const char* w = std::getenv("OMPI_COMM_WORLD_SIZE");
  if (!r) r = std::getenv("PMIX_RANK");
  if (!r) r = std::getenv("SLURM_PROCID");
  if (!w) w = std::getenv("SLURM_NTASKS");
  *rank = r ? std::atoi(r) : 0;
  *world = w ? std::atoi(w) : 1;
}
}  // namespace

int guarded_main(const std::string& program, const std::function<int()>& body,
                 const std::function<void(int)>& on_error) {
  int code = kExitError;
  std::string what;
  tune_allocator();
  try {
    return body();
  } catch (const Error& e) {
    code = e.exit_code();
    what = e.what();
  } catch (const std::exception& e) {
    // Errors from LibTorch, HDF5 or the standard library: their messages can be
    // long; the first line is the useful one.
    what = e.what();
    size_t nl = what.find('\n');
    if (nl != std::string::npos) what.resize(nl);
  } catch (...) {
    what = "unknown exception";
  }
  int rank = 0, world = 1;
  rank_from_env(&rank, &world);
  std::string line = format_error_line(program, rank, world, host_name(), what) + "\n";
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
  if (on_error) on_error(code);
  return code;
}

}  // namespace bora
