#include "safety/policy.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <exception>

#include "base/error.hpp"
#include "base/metrics.hpp"

namespace ceso {

namespace {

// Every Gate of the process counts here too: run_tool's epilogue applies the
// one rule (a change without its audit record is exit 1) for every tool.
std::atomic<size_t> g_unaudited_changes{0};

ordered_json string_or_null(const std::string& s) {
  return s.empty() ? ordered_json() : ordered_json(s);
}

// "CreateSnapshot_Task on 'web01' at 'esxi1:443'"
std::string describe(const Mutation& m) {
  std::string text = m.operation.empty() ? std::string("a change") : m.operation;
  if (!m.vm.empty()) text += " on " + quote(m.vm);
  if (!m.endpoint.empty()) text += (m.vm.empty() ? " on " : " at ") + quote(m.endpoint);
  return text;
}

// Plan records go to stdout; when its reader has gone (`| head -1`), stop
// quietly like Output::emit does.
void write_plan_to_stdout(const ordered_json& plan) {
  if (!write_record(plan)) _exit(0);
}

}  // namespace

size_t unaudited_changes() { return g_unaudited_changes.load(); }

std::string_view actor_of(Mode mode) { return mode == Mode::restricted ? "agent" : "human"; }

std::string_view to_string(Mode mode) {
  return mode == Mode::restricted ? "restricted" : "standard";
}

Mode policy_mode() {
  const char* env = std::getenv("CESO_MODE");
  if (!env || !*env) return Mode::standard;
  std::string_view value(env);
  if (value == "standard") return Mode::standard;
  if (value == "restricted") return Mode::restricted;
  usage_error("CESO_MODE must be 'standard' or 'restricted', not " + quote(value));
}

GateSettings GateSettings::from_environment(std::string tool, bool dry_run) {
  GateSettings s;
  s.tool = std::move(tool);
  s.dry_run = dry_run;
  s.mode = policy_mode();
  s.audit_log = default_audit_log_path();
  s.correlation_id = ceso::correlation_id();
  return s;
}

Gate::Gate(std::string tool, bool dry_run, AuditFailureHandler on_audit_failure, PlanSink plan)
    : Gate(GateSettings::from_environment(std::move(tool), dry_run), std::move(on_audit_failure),
           std::move(plan)) {
  if (!settings_.dry_run && settings_.mode == Mode::standard) log_.check_writable();
}

Gate::Gate(GateSettings settings, AuditFailureHandler on_audit_failure, PlanSink plan)
    : settings_(std::move(settings)),
      log_(settings_.audit_log),
      on_audit_failure_(std::move(on_audit_failure)),
      plan_(plan ? std::move(plan) : PlanSink(write_plan_to_stdout)) {
  if (settings_.correlation_id.empty()) settings_.correlation_id = ceso::correlation_id();
}

ordered_json Gate::plan_record(const Mutation& m) const {
  ordered_json plan = ordered_json::object();
  plan["type"] = "plan";
  plan["tool"] = settings_.tool;
  plan["endpoint"] = string_or_null(m.endpoint);
  plan["vm"] = string_or_null(m.vm);
  plan["vm_id"] = string_or_null(m.vm_id);
  plan["operation"] = m.operation;
  // Plans go to the user's own terminal or pipe, which may end up in a CI
  // log: secrets are redacted here too.
  plan["params"] = redact(m.params);
  if (settings_.mode == Mode::restricted) plan["refused"] = refusal(m);
  return plan;
}

std::string Gate::refusal(const Mutation& m) const {
  return describe(m) +
         " refused: restricted mode (CESO_MODE=restricted) makes no changes; --dry-run shows the "
         "plan; ask someone allowed to change this host to run it, or unset CESO_MODE if you "
         "are allowed to";
}

bool Gate::perform(const Mutation& m, const std::function<void()>& action) {
  if (settings_.dry_run) {
    ordered_json plan = plan_record(m);
    std::lock_guard<std::mutex> lock(hooks_mutex_);
    plan_(plan);
    return false;
  }

  AuditRecord record;
  record.time = utc_timestamp(std::chrono::system_clock::now());
  record.tool = settings_.tool;
  record.endpoint = m.endpoint;
  record.vm = m.vm;
  record.vm_id = m.vm_id;
  record.operation = m.operation;
  record.params = m.params;  // AuditLog::append redacts
  record.correlation_id = settings_.correlation_id;

  if (settings_.mode == Mode::restricted) {
    std::string message = refusal(m);
    record.result = AuditResult::refused;
    record.error = message;
    audit(m, record);
    metrics::record_change(m.operation, "refused", actor(), 0);
    metrics::record_refusal(actor());
    throw Error(std::move(message), Exit::policy);
  }

  const auto start = std::chrono::steady_clock::now();
  auto elapsed_ms = [&start] {
    return static_cast<int64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - start)
                                    .count());
  };
  auto seconds = [&start] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  try {
    action();
  } catch (...) {
    record.duration_ms = elapsed_ms();
    record.result = AuditResult::error;
    try {
      throw;
    } catch (const std::exception& e) {
      record.error = e.what();
    } catch (...) {
      record.error = "unknown error";
    }
    audit(m, record);
    metrics::record_change(m.operation, "error", actor(), seconds());
    throw;  // unchanged: the caller sees the action's own error and exit code
  }
  record.duration_ms = elapsed_ms();
  record.result = AuditResult::ok;
  audit(m, record);
  metrics::record_change(m.operation, "ok", actor(), seconds());
  return true;
}

void Gate::audit(const Mutation& m, const AuditRecord& record) {
  std::string reason;
  try {
    std::string warning = log_.append(record);
    // Written, onto a tail the anchor could not vouch for: say so once per run.
    if (!warning.empty() && on_audit_failure_ && !tail_warned_.exchange(true)) {
      std::lock_guard<std::mutex> lock(hooks_mutex_);
      on_audit_failure_(warning);
    }
    return;
  } catch (const std::exception& e) {
    reason = e.what();
  }
  ++audit_failures_;
  if (record.result != AuditResult::refused) ++g_unaudited_changes;
  if (!on_audit_failure_) return;
  std::lock_guard<std::mutex> lock(hooks_mutex_);
  on_audit_failure_("the audit log misses " + describe(m) +
                    " (result: " + std::string(to_string(record.result)) + "): " + reason);
}

}  // namespace ceso
