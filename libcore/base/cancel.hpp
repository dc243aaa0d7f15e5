// Cancellation: one SIGINT/SIGTERM flag for the whole process, and the modes
// pushed and popped on it (deferred, cleanup, read-only). The frame installs
// the one handler (install_interrupt_handler, from run_tool); every layer
// polls the flag through interrupted() and never installs a handler itself.
#pragma once

namespace ceso {

// Installs the process's one SIGINT/SIGTERM handler, which sets the flag
// below. Called once, by run_tool; tests may call it too.
void install_interrupt_handler();

// True once SIGINT or SIGTERM arrived. Long operations poll it and throw
// Error(Exit::interrupted) after cleaning up. A SOAP call in flight is not
// cut (a request the host received is carried out: its result must be known
// to be undone) unless the tool is read-only (ReadOnlyRun); a task being
// waited for is asked to cancel and waited for.
// A second signal exits at once (130), without cleanup, unless interrupts
// are deferred (DeferredInterrupts). There is one handler (run_tool's) and
// one flag; modes are pushed and popped on it, never a second handler.
bool interrupted();
void throw_if_interrupted();

// The deferred mode of the one SIGINT/SIGTERM handler, for as long as one is
// alive (process-wide: -j workers too; scopes nest, push and pop). A signal
// sets the same flag, but interrupted() stays false, so calls and task waits
// run on unhindered, and a second signal does not exit: the tool stops at its
// own checkpoints (interrupt_requested()) and always finishes its cleanup
// (ceso-backup: removing its snapshot, powering the VM back on, the restore's
// rollback), then exits 130.
class DeferredInterrupts {
 public:
  DeferredInterrupts();
  ~DeferredInterrupts();
  DeferredInterrupts(const DeferredInterrupts&) = delete;
  DeferredInterrupts& operator=(const DeferredInterrupts&) = delete;
};
// True once SIGINT or SIGTERM arrived, whatever the mode or scope: the
// checkpoints of a deferred run (and its cancel callbacks) ask this.
bool interrupt_requested();
void throw_if_interrupt_requested();

// While one is alive, interrupted() is false on this thread: the rollback
// after an interruption runs its calls and waits for its tasks to the end.
class CleanupScope {
 public:
  CleanupScope();
  ~CleanupScope();
  CleanupScope(const CleanupScope&) = delete;
  CleanupScope& operator=(const CleanupScope&) = delete;
};

// A read-only tool, or a read-only verb of one, for as long as it is alive
// (process-wide, so -j workers see it too): nothing it does has to be
// undone, so a SOAP call in flight is cut at the first SIGINT/SIGTERM
// instead of being answered first, and a host that stops answering does not
// hold Ctrl-C (exit 130 at once). Tools that change things never create
// one: their calls run to the end so their results are known to be undone.
class ReadOnlyRun {
 public:
  ReadOnlyRun();
  ~ReadOnlyRun();
  ReadOnlyRun(const ReadOnlyRun&) = delete;
  ReadOnlyRun& operator=(const ReadOnlyRun&) = delete;
};
// The same for one thread's read-only phase of a tool that changes things
// (ceso-mkvm finding its source before its first change): other threads of
// a -j run are not affected.
class ReadOnlyPhase {
 public:
  ReadOnlyPhase();
  ~ReadOnlyPhase();
  ReadOnlyPhase(const ReadOnlyPhase&) = delete;
  ReadOnlyPhase& operator=(const ReadOnlyPhase&) = delete;
};
// True while a ReadOnlyRun (or this thread's ReadOnlyPhase) is alive and
// this thread is not cleaning up:
// the HTTP layer then aborts a call in flight once interrupted().
bool calls_abort_on_interrupt();

}  // namespace ceso
