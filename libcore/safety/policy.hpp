// The gate every mutation goes through (docs/design.md "Safety"; docs/audit.md).
//
//   ceso::Gate gate = ceso::tool_gate(args.has("dry-run"),   // cli/tool.hpp: from the frame
//                                     [&](const ceso::ordered_json& plan) { out.emit(plan); });
//   ceso::Mutation m{endpoint, vm.name, vm.id, "CreateSnapshot_Task", {{"name", name}}};
//   if (gate.perform(m, [&] { snapshot = create_snapshot(…); })) record["changed"] = true;
//
// perform() applies, in this order:
//   --dry-run                 emit a `plan` record, run nothing, audit nothing, return false
//                             (also under restricted mode: a plan changes nothing; the plan
//                             then says "refused" and why)
//   CESO_MODE=restricted      unless the promotion presented (--promotion FILE,
//                             CESO_PROMOTION; promotion.hpp) covers the change:
//                             audit "refused", throw Error(Exit::policy) naming
//                             what the promotion lacks; when it covers it, go on
//                             as below with the promotion's id in the record
//   otherwise                 run the action, audit "ok" or "error" (+ its message), rethrow
//                             the action's exception unchanged, return true
// A failure to write the audit record never masks what the action did: the
// action's own result stands (true, or its exception), and the failure goes
// to the AuditFailureHandler and is counted in audit_failures().
//
// A Gate may be shared by the threads of a tool running jobs in parallel.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "base/records.hpp"
#include "safety/audit.hpp"
#include "safety/promotion.hpp"

namespace ceso {

enum class Mode { standard, restricted };
std::string_view to_string(Mode mode);
// The metrics' actor label of a mode: restricted → "agent", standard → "human".
std::string_view actor_of(Mode mode);

// From CESO_MODE: unset or empty → standard. Any other value than
// "standard" or "restricted" throws Error(Exit::usage) naming the variable.
Mode policy_mode();

// Changes (made or attempted, not refused) whose audit record could not be
// written, over every Gate of the process. run_tool turns a success or a
// partial success into exit 1 when this is not 0, so the rule holds in every
// tool without each tool checking.
size_t unaudited_changes();

// One change to a host, as it is audited and planned.
struct Mutation {
  std::string endpoint;   // "esxi1.lab:443"
  std::string vm;         // VM name; empty for an operation on the host itself
  std::string vm_id;      // managed object id: "vm-42"
  std::string operation;  // vSphere method: "CreateSnapshot_Task"
  ordered_json params = ordered_json::object();  // what is sent; redacted in plans and audit
  // How the change is made, audited when set: "api" (the vSphere API) or
  // "ssh" (the host's own clients over SSH, free ESXi; vm/writer.hpp).
  std::string transport = {};
};

struct GateSettings {
  std::string tool;  // "ceso-snap"
  bool dry_run = false;
  Mode mode = Mode::standard;
  std::string audit_log;       // path of the log
  std::string correlation_id;  // written into every audit record
  // Restricted mode: the promotion token file presented (empty: none), what
  // checks it (config `promotion:`), and the clock skew allowed.
  std::string promotion_file;
  std::string promotion_key;  // the operator's public key (PEM)
  std::string promotion_key_source;
  std::string promotion_revoked;  // revoked token ids
  int64_t promotion_skew = kPromotionSkew;

  // Reads CESO_MODE, CESO_AUDIT_LOG / XDG_STATE_HOME / HOME,
  // CESO_CORRELATION_ID, and in restricted mode the promotion: the run's
  // --promotion (set_promotion_option) or CESO_PROMOTION, CESO_PROMOTION_SKEW
  // (0 to 60 seconds), the config file's `promotion:` (promotion_files);
  // throws Error(Exit::usage) for a bad value.
  static GateSettings from_environment(std::string tool, bool dry_run);
};

// The run's --promotion FILE (run_tool sets it from the option); wins over
// CESO_PROMOTION. A value that is a token rather than a file name is refused
// (Error(usage)): a token on the command line shows in ps.
void set_promotion_option(std::string file);

// How often promotion `id` was used: its records in the audit log at `log`
// whose result is not "refused". 0 when the log does not exist. Throws
// Error when the log cannot be read.
int64_t count_promotion_uses(const std::string& log, const std::string& id);

// A promotion as a Gate holds it after loading and verifying it.
struct GatePromotion {
  std::string file;
  std::optional<PromotionClaims> claims;  // set when it verified
  std::string problem;                    // why it cannot be used at all
};

class Gate {
 public:
  using PlanSink = std::function<void(const ordered_json& plan)>;
  // Told (with a complete message) when an audit record could not be written,
  // and once when one was written onto a tail its anchor could not vouch for
  // (AuditLog::append's warning; not counted as a failure).
  // Tools pass [](const std::string& m) { ceso::warn(m); }. Must not throw;
  // calls are serialized.
  using AuditFailureHandler = std::function<void(const std::string& message)>;

  // Settings from the environment (GateSettings::from_environment). Unless
  // in dry-run or restricted mode, also checks the audit log can be written,
  // so a tool fails before its first change rather than after it. An empty
  // `plan` sink writes plan records to stdout (write_record).
  Gate(std::string tool, bool dry_run, AuditFailureHandler on_audit_failure, PlanSink plan = {});
  explicit Gate(GateSettings settings, AuditFailureHandler on_audit_failure = {},
                PlanSink plan = {});

  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;

  // Runs `action`, which makes the change, under the policy and audits it;
  // see the top of this file. True when the action ran and succeeded, false
  // in dry-run.
  bool perform(const Mutation& mutation, const std::function<void()>& action);

  // The plan record for a mutation (params redacted).
  ordered_json plan_record(const Mutation& mutation) const;

  bool dry_run() const { return settings_.dry_run; }
  Mode mode() const { return settings_.mode; }
  // Who runs the changes, for metrics: "agent" in restricted mode, else "human".
  std::string_view actor() const { return actor_of(settings_.mode); }
  const GateSettings& settings() const { return settings_; }
  const AuditLog& audit_log() const { return log_; }
  // The promotion presented in restricted mode, if any.
  const std::optional<GatePromotion>& promotion() const { return promotion_; }
  // Audit records that could not be written so far by this Gate. Tools do
  // not judge it: run_tool's unaudited_epilogue applies the rule for all.
  size_t audit_failures() const { return audit_failures_.load(); }

 private:
  std::string refusal(const Mutation& mutation) const;
  // Restricted mode: why the promotion does not cover `mutation` (empty when
  // it does), the uses so far aside.
  std::string promotion_gap(const Mutation& mutation) const;
  // Why the promotion's max_uses forbids one more use (empty when it does
  // not); call with the uses lock held.
  std::string uses_gap() const;
  void audit(const Mutation& mutation, const AuditRecord& record);

  GateSettings settings_;
  AuditLog log_;
  AuditFailureHandler on_audit_failure_;
  PlanSink plan_;
  std::mutex hooks_mutex_;  // one plan line / one failure report at a time
  std::atomic<size_t> audit_failures_{0};
  std::atomic<bool> tail_warned_{false};           // the unverified-tail warning was shown
  std::optional<GatePromotion> promotion_;         // restricted mode with a promotion file
  mutable std::atomic<bool> log_verified_{false};  // checked before counting uses
};

}  // namespace ceso
