// The one error path of every tool: main() is a thin wrapper around guarded_main,
// which runs the tool's body, catches every exception exactly once, prints it as
// one line ("bora-train: rank 1 on host n07: error: <message> [src/file.cpp:42]";
// "bora-train: host n07: error: ..." for a single process) and returns the error's
// exit code. The host is named because in a job of many nodes "rank 1" alone does
// not say where to look (its disk, its GPU, its log). `on_error` runs after the message is printed; distributed
// tools pass one that calls MPI_Abort so that peers never wait in a collective.
// It first tunes malloc for training loops (core/allocator.h).
#pragma once

#include <functional>
#include <string>

namespace bora {

int guarded_main(const std::string& program, const std::function<int()>& body,
                 const std::function<void(int exit_code)>& on_error = nullptr);

// Formats the one-line error message exactly as guarded_main prints it.
std::string format_error_line(const std::string& program, int rank, int world, const std::string& host,
                              const std::string& what);

// This host's name (gethostname), "unknown-host" when it has none.
std::string host_name();

// Exit codes of the tools (also in README, "Using bora").
constexpr int kExitOk = 0;
constexpr int kExitError = 1;
// A checkpoint was written because SIGTERM/SIGUSR1 asked the run to stop (Slurm
// preemption or time limit): the job scripts requeue on this code. 75 = EX_TEMPFAIL.
constexpr int kExitPreempted = 75;

}  // namespace bora
