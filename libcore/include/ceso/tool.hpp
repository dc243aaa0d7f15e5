// The shape every tool shares: parse → run → turn errors into exit codes.
//
//   int main(int argc, char** argv) { return ceso::run_tool(kSpec, argc, argv, run); }
//
// run_tool handles --help, --version, --dump-options, SIGPIPE/EPIPE, SIGINT and
// SIGTERM (sets interrupted()), catches ceso::Error and prints it once as
// "ceso-TOOL: message", and applies the audit rule (unaudited_epilogue).
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "ceso/cli.hpp"
#include "ceso/error.hpp"
#include "ceso/policy.hpp"
#include "ceso/records.hpp"

namespace ceso {

// Output of result records: NDJSON when stdout is not a terminal or --json;
// otherwise an aligned table (listings) or one short line per result.
// emit() may be called from several threads.
class Output {
 public:
  using LineFormatter = std::function<std::string(const ordered_json&)>;

  // `columns`: default table columns (dotted paths); -o overrides. A tool
  // that acts on VMs passes `line` to print one human line per result.
  Output(const Args& args, std::vector<std::string> columns, LineFormatter line = nullptr);

  // Emit one result. In record mode it is written and flushed at once.
  void emit(const ordered_json& record);
  // Print the buffered table, if any.
  void finish();
  bool records() const { return records_; }

 private:
  bool records_ = true;
  std::vector<std::string> fields_;  // from -o; empty = whole records
  std::vector<std::string> columns_;
  LineFormatter line_;
  std::vector<std::vector<std::string>> rows_;
  std::mutex mutex_;
};

// Diagnostics on stderr, prefixed with the tool's name.
void warn(std::string_view message);
// Informational message, silenced by --quiet.
void note(std::string_view message);
bool quiet();
std::string_view tool_name();

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

// Counts per-record results and derives the exit status (docs/design.md "Exit status"):
// all ok → 0; some failed → 4; all failed → their common code (or 1).
// Thread-safe: workers of a -j N run report into one Outcome.
class Outcome {
 public:
  void succeeded();
  // Reports the error on stderr (prefixed with `what`, e.g. the VM name).
  void failed(const Error& e, std::string_view what = {});
  Exit exit_code() const;
  size_t failures() const;

 private:
  mutable std::mutex mutex_;
  size_t ok_ = 0;
  size_t failed_ = 0;
  Exit first_code_ = Exit::ok;
  bool mixed_codes_ = false;
};

// What a VM tool acts on: names given as operands, or records on stdin.
struct Target {
  std::string name;     // from an operand, or the record's "name"
  ordered_json record;  // the input record (object); {} for an operand
  std::string origin;   // "<stdin>:3" or "argument 2", for messages
};

// Calls fn for every target. Operands win; with none and stdin not a
// terminal, reads records from stdin (bad lines are reported with their line
// and counted as failures with Exit::bad_input). fn's ceso::Error is
// reported and counted; processing goes on with the next target.
// `accept_types` lists record types taken from stdin (default "vm").
Exit for_each_target(const Args& args, Outcome& outcome,
                     const std::function<void(const Target&)>& fn,
                     std::vector<std::string> accept_types = {"vm"});

// The same with up to `jobs` targets in flight at once (-j N). fn runs on
// worker threads and gets its worker number (0..jobs-1), so a tool can keep
// per-worker state such as its own vim::Client (a Client is not shared
// between threads). Results are emitted as they complete. jobs <= 1 runs
// everything on the calling thread, in input order.
Exit for_each_target_parallel(const Args& args, Outcome& outcome, size_t jobs,
                              const std::function<void(const Target&, size_t worker)>& fn,
                              std::vector<std::string> accept_types = {"vm"});

// The exit status after a run that ended with `code`: a change made but not
// recorded in the audit log (unaudited_changes() > 0, policy.hpp) turns 0
// and 4 into 1 and says so on stderr; other codes stand. run_tool applies
// it to every tool, so no tool checks its Gate's audit_failures() itself.
Exit unaudited_epilogue(Exit code);

// The Gate of this run, made in one place from the frame: the tool's name
// (run_tool knows it), `dry_run` (the tool's --dry-run), audit-log failures
// reported on stderr, plan records to `plan` (a tool passes its Output's
// emit; empty: stdout). Whether every change was audited is judged once, by
// run_tool (unaudited_epilogue), never by the tool.
Gate tool_gate(bool dry_run, Gate::PlanSink plan = {});

int run_tool(const ToolSpec& spec, int argc, char** argv,
             const std::function<Exit(const Args&)>& run);

}  // namespace ceso
