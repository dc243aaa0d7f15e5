#include "base/cancel.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>

#include "base/error.hpp"

namespace ceso {

namespace {

volatile sig_atomic_t g_interrupted = 0;

thread_local int t_cleanup_depth = 0;
std::atomic<int> g_read_only_runs{0};
thread_local int t_read_only_phase = 0;

// Depth of DeferredInterrupts scopes. Read in the signal handler: lock-free.
std::atomic<int> g_deferred{0};
static_assert(std::atomic<int>::is_always_lock_free);

void on_signal(int) {
  if (g_interrupted && g_deferred.load() == 0) {
    static const char msg[] = "\nceso: interrupted again: exiting without cleanup\n";
    ssize_t n = ::write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)n;
    _exit(130);
  }
  g_interrupted = 1;
}

}  // namespace

void install_interrupt_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool interrupted() { return g_interrupted != 0 && t_cleanup_depth == 0 && g_deferred.load() == 0; }

bool interrupt_requested() { return g_interrupted != 0; }

void throw_if_interrupt_requested() {
  if (interrupt_requested()) throw Error("interrupted", Exit::interrupted);
}

void throw_if_interrupted() {
  if (interrupted()) throw Error("interrupted", Exit::interrupted);
}

DeferredInterrupts::DeferredInterrupts() { ++g_deferred; }
DeferredInterrupts::~DeferredInterrupts() { --g_deferred; }

ReadOnlyRun::ReadOnlyRun() { ++g_read_only_runs; }
ReadOnlyRun::~ReadOnlyRun() { --g_read_only_runs; }

ReadOnlyPhase::ReadOnlyPhase() { ++t_read_only_phase; }
ReadOnlyPhase::~ReadOnlyPhase() { --t_read_only_phase; }

bool calls_abort_on_interrupt() {
  return (g_read_only_runs.load() > 0 || t_read_only_phase > 0) && t_cleanup_depth == 0;
}

CleanupScope::CleanupScope() { ++t_cleanup_depth; }
CleanupScope::~CleanupScope() { --t_cleanup_depth; }

}  // namespace ceso
