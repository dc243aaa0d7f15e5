#include "safety/policy.hpp"

#include <fnmatch.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>

#include "base/error.hpp"
#include "base/file.hpp"
#include "base/metrics.hpp"
#include "base/numbers.hpp"
#include "base/time.hpp"
#include "config/config.hpp"
#include "safety/audit_query.hpp"

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

std::string g_promotion_option;  // --promotion FILE of this run

std::string checked_promotion_file(std::string value, std::string_view what) {
  if (value.rfind(kPromotionPrefix, 0) == 0)
    usage_error(std::string(what) +
                " takes the name of a file holding the token, not the token itself (a command "
                "line shows in ps)");
  return value;
}

// The tool's verb in a promotion: its name without "ceso-".
std::string tool_verb(const std::string& tool) {
  return tool.rfind("ceso-", 0) == 0 ? tool.substr(5) : tool;
}

// Loads and verifies the promotion file; problems are kept, not thrown: each
// change it was meant for is then refused (and audited) with the reason.
GatePromotion load_promotion(const GateSettings& s) {
  GatePromotion p;
  p.file = s.promotion_file;
  try {
    std::string token =
        *read_file(s.promotion_file,
                   {.what = "promotion", .max_bytes = kPromotionMaxBytes, .exit = Exit::policy});
    PromotionKey key =
        PromotionKey::load_public(s.promotion_key, "operator key (" + s.promotion_key_source + ")");
    p.claims = verify_promotion(token, key);
  } catch (const Error& e) {
    p.problem = e.what();
  }
  return p;
}

// Whether `id` is in the revocation file; a file that cannot be read or is
// damaged counts as revoking (nothing revoked must slip through).
std::string revocation_problem(const std::string& path, const std::string& id) {
  try {
    struct stat st {};
    auto text = read_file(
        path, {.what = "revocation file", .max_bytes = 16 << 20, .missing_ok = true}, &st);
    if (!text) return {};
    if ((st.st_mode & 022) != 0)
      return "cannot be checked: revocation file " + quote(path) +
             " may be written by group or others (chmod go-w)";
    for (const auto& r : parse_revocations(*text, path))
      if (r == id) return "was revoked (listed in " + quote(path) + ")";
  } catch (const Error& e) {
    return std::string("cannot be checked against revocations: ") + e.what();
  }
  return {};
}

// flock(2) on a file next to the log, held from counting a promotion's uses
// to auditing the change, so two processes cannot both take the last use.
class UsesLock {
 public:
  explicit UsesLock(const std::string& path) : fd_(open_private_file(path, O_RDWR)) {
    if (!fd_) fail("cannot open " + quote(path) + ": " + std::strerror(errno));
    while (::flock(fd_.get(), LOCK_EX) != 0)
      if (errno != EINTR) fail("cannot lock " + quote(path) + ": " + std::strerror(errno));
  }

 private:
  Fd fd_;
};

}  // namespace

int64_t count_promotion_uses(const std::string& log, const std::string& id) {
  struct stat st {};
  if (::stat(log.c_str(), &st) != 0 && errno == ENOENT) return 0;
  int64_t uses = 0;
  AuditReader reader(log);
  reader.read([&](const AuditLine& line) {
    if (line.too_long) return;
    auto j = ordered_json::parse(line.text, nullptr, false);
    if (!j.is_object()) return;
    auto p = j.find("promotion");
    auto r = j.find("result");
    if (p != j.end() && *p == id && r != j.end() && *r != "refused") ++uses;
  });
  return uses;
}

void set_promotion_option(std::string file) {
  g_promotion_option = checked_promotion_file(std::move(file), "--promotion");
}

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
  if (s.mode != Mode::restricted) return s;
  if (!g_promotion_option.empty()) {
    s.promotion_file = g_promotion_option;
  } else if (const char* env = std::getenv("CESO_PROMOTION"); env && *env) {
    s.promotion_file = checked_promotion_file(env, "CESO_PROMOTION");
  }
  if (const char* env = std::getenv("CESO_PROMOTION_SKEW"); env && *env)
    s.promotion_skew =
        static_cast<int64_t>(parse_count("CESO_PROMOTION_SKEW", env, 0, kPromotionSkew));
  if (!s.promotion_file.empty()) {
    PromotionFiles files = promotion_files();
    s.promotion_key = files.key;
    s.promotion_key_source = files.key_source;
    s.promotion_revoked = files.revoked;
  }
  return s;
}

Gate::Gate(std::string tool, bool dry_run, AuditFailureHandler on_audit_failure, PlanSink plan)
    : Gate(GateSettings::from_environment(std::move(tool), dry_run), std::move(on_audit_failure),
           std::move(plan)) {
  const bool may_change = settings_.mode == Mode::standard || (promotion_ && promotion_->claims);
  if (!settings_.dry_run && may_change) log_.check_writable();
}

Gate::Gate(GateSettings settings, AuditFailureHandler on_audit_failure, PlanSink plan)
    : settings_(std::move(settings)),
      log_(settings_.audit_log),
      on_audit_failure_(std::move(on_audit_failure)),
      plan_(plan ? std::move(plan) : PlanSink(write_plan_to_stdout)) {
  if (settings_.correlation_id.empty()) settings_.correlation_id = ceso::correlation_id();
  if (settings_.mode == Mode::restricted && !settings_.promotion_file.empty())
    promotion_ = load_promotion(settings_);
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
  if (settings_.mode == Mode::restricted) {
    if (promotion_ && promotion_->claims) plan["promotion"] = promotion_->claims->id;
    if (std::string gap = promotion_gap(m); !gap.empty()) plan["refused"] = refusal(m);
  }
  return plan;
}

std::string Gate::refusal(const Mutation& m) const {
  if (!promotion_)
    return describe(m) +
           " refused: restricted mode (CESO_MODE=restricted) makes no changes; --dry-run shows "
           "the plan; ask someone allowed to change this host to run it, or unset CESO_MODE if "
           "you are allowed to";
  return describe(m) + " refused: restricted mode (CESO_MODE=restricted), and " + promotion_gap(m);
}

std::string Gate::promotion_gap(const Mutation& m) const {
  if (!promotion_) return "no promotion was presented";
  const std::string what = "the promotion in " + quote(promotion_->file);
  if (!promotion_->claims) return what + " is not accepted: " + promotion_->problem;
  const PromotionClaims& c = *promotion_->claims;
  const std::string named = "promotion " + c.id + " (" + quote(promotion_->file) + ")";
  if (std::string t = promotion_time_problem(c, unix_now(), settings_.promotion_skew); !t.empty())
    return named + " is not valid now: " + t;
  if (std::string r = revocation_problem(settings_.promotion_revoked, c.id); !r.empty())
    return named + " " + r;
  if (m.endpoint.empty())
    return named + " covers changes on host " + quote(c.endpoint) +
           " only, and this one is not on a host";
  if (!promotion_endpoint_matches(c.endpoint, m.endpoint))
    return named + " is for endpoint " + quote(c.endpoint) + ", not " + quote(m.endpoint);
  if (m.vm.empty())
    return named + " covers changes to VMs only, and this one is to the host itself";
  const std::string verb = tool_verb(settings_.tool);
  for (const auto& g : c.allow)
    if (g.verb == verb && ::fnmatch(g.vm.c_str(), m.vm.c_str(), 0) == 0) return {};
  return named + " does not allow " + verb + " on " + quote(m.vm) + " (it allows " +
         describe_grants(c.allow) + ")";
}

std::string Gate::uses_gap() const {
  const PromotionClaims& c = *promotion_->claims;
  if (!c.max_uses) return {};
  const std::string named = "promotion " + c.id + " (" + quote(promotion_->file) + ")";
  const std::string& path = log_.path();
  struct stat st {};
  const bool log_exists = ::stat(path.c_str(), &st) == 0;
  if (!log_exists && ::stat(log_.head_path().c_str(), &st) != 0) return {};  // no uses yet
  try {
    // Uses are counted from the log: it must be whole, or a cut-off tail
    // would hand the uses back.
    if (!log_verified_.load()) {
      AuditVerification v = verify_audit_log(path);
      if (!v.ok)
        return named + " allows " + std::to_string(*c.max_uses) +
               " use(s), which cannot be counted: the audit log " + quote(path) + " is broken (" +
               v.problem + "; see ceso-audit verify)";
      log_verified_ = true;
    }
    const int64_t uses = count_promotion_uses(path, c.id);
    if (uses >= *c.max_uses)
      return named + " has been used " + std::to_string(uses) + " of the " +
             std::to_string(*c.max_uses) + " time(s) it allows";
  } catch (const Error& e) {
    return named + " allows " + std::to_string(*c.max_uses) +
           " use(s), which cannot be counted: " + e.what();
  }
  return {};
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
  record.transport = m.transport;
  record.params = m.params;  // AuditLog::append redacts
  record.correlation_id = settings_.correlation_id;

  // Held from counting a promotion's uses until the change is audited.
  std::optional<UsesLock> uses_lock;
  if (settings_.mode == Mode::restricted) {
    std::string gap = promotion_gap(m);
    if (gap.empty() && promotion_->claims->max_uses) {
      uses_lock.emplace(log_.path() + ".promotions.lock");
      gap = uses_gap();
    }
    if (promotion_ && promotion_->claims) record.promotion = promotion_->claims->id;
    if (!gap.empty()) {
      std::string message =
          promotion_ ? describe(m) + " refused: restricted mode (CESO_MODE=restricted), and " + gap
                     : refusal(m);
      record.result = AuditResult::refused;
      record.error = message;
      audit(m, record);
      metrics::record_change(m.operation, "refused", actor(), 0);
      metrics::record_refusal(actor());
      throw Error(std::move(message), Exit::policy);
    }
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
    // A failed change still took one of the promotion's uses (audit_query).
    if (settings_.mode == Mode::restricted) metrics::record_promotion_used();
    throw;  // unchanged: the caller sees the action's own error and exit code
  }
  record.duration_ms = elapsed_ms();
  record.result = AuditResult::ok;
  audit(m, record);
  metrics::record_change(m.operation, "ok", actor(), seconds());
  // A change restricted mode let through: a promotion covered it.
  if (settings_.mode == Mode::restricted) metrics::record_promotion_used();
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
