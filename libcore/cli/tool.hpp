// The shape every tool shares: parse → run → turn errors into exit codes.
//
//   int main(int argc, char** argv) { return ceso::run_tool(kSpec, argc, argv, run); }
//
// run_tool handles --help, --version, --dump-options, SIGPIPE/EPIPE, SIGINT and
// SIGTERM (sets interrupted()), catches ceso::Error and prints it once as
// "ceso-TOOL: message", and applies the audit rule (unaudited_epilogue).
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/cancel.hpp"
#include "base/error.hpp"
#include "base/log.hpp"
#include "base/records.hpp"
#include "cli/options.hpp"
#include "safety/policy.hpp"
#include "vm/vm.hpp"

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
  // Emit results that are all at hand (a sorted listing): in record mode
  // written in writes of about 64 KiB, each holding whole records.
  void emit_all(const std::vector<ordered_json>& records);
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

// Batched lookups (for_each_vm): at most this many targets per batch, the
// ones that arrived within the window after the batch's first; a target whose
// lookup is older than kLookupMaxAge when its turn comes is looked up again.
// What arrived at once is looked up in up to kLookupsInFlight batches at the
// same time, each on its own connection.
inline constexpr size_t kLookupBatch = 100;
inline constexpr size_t kLookupsInFlight = 4;
inline constexpr int kLookupWindowMs = 20;
inline constexpr std::chrono::seconds kLookupMaxAge{5};

// What for_each_vm reads with each VM's identity, and how.
struct VmLookup {
  size_t jobs = 1;                 // -j N: targets acted on at once
  std::vector<std::string> paths;  // read with the identity: FoundVm::props
  std::vector<std::string> accept_types = {"vm"};
  std::vector<vim::ValueFilter> filters;  // what of the paths' values is built (none: all)
};

// for_each_target_parallel for the tools that act on VMs (docs/architecture.md
// "Round trips"): the targets are found in batches (VmLocator::locate_batch:
// one RetrievePropertiesEx for the records of up to kLookupBatch targets,
// their identity checked in the same answer, `paths` read with it), then fn
// is called for each with its VM, the client being the worker's own. Records
// still flow: a batch is what arrived within kLookupWindowMs, so a slow
// producer's records are acted on one by one as they come. A target that
// matches no VM fails alone, as with locate().
Exit for_each_vm(const Args& args, Outcome& outcome, const VmLookup& lookup,
                 const std::function<void(const Target&, FoundVm&, size_t worker)>& fn);

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

// The name of an exit status in metrics ("ok", "partial", "policy", …).
std::string_view exit_name(Exit code);

// run_tool also records the run's metrics and, when a metrics directory is
// configured, adds them to its ceso.prom (base/metrics.hpp, docs/metrics.md).
int run_tool(const ToolSpec& spec, int argc, char** argv,
             const std::function<Exit(const Args&)>& run);

}  // namespace ceso
