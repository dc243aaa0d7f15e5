// ceso-audit — check and read the audit log every change is recorded in.
//
//   ceso-audit verify                       # exit 0 intact, 4 broken
//   ceso-audit ls --since 2h --vm 'web*' --failed
//   ceso-audit tail -f
//   ceso-audit show "$CESO_CORRELATION_ID"
//   ceso-audit export --format csv --since 2026-11-01 > audit.csv
//   ceso-audit anchor --reset --reason 'rotated by logrotate'
//   ceso-audit keygen --out ~/.ceso-operator.key     # + .pub for the agent's machine
//   ceso-audit promote --key ~/.ceso-operator.key --for 30min --allow 'power,snap:web*'
//       --endpoint esxi1.lab --max-uses 4 --reason 'INC-42' --out web.promotion
//   ceso-audit inspect web.promotion
//   ceso-audit revoke web.promotion --reason 'done early'
//
// The log's format, its anchor and what verify can tell are in docs/audit.md.
// Promotions (restricted mode's signed, expiring grants) are described in
// docs/audit.md "Promotions" and safety/promotion.hpp. Everything but
// `anchor --reset`, keygen, promote and revoke only reads; records are printed as the log
// holds them (redacted when written), never with more.
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <optional>

#include "base/duration.hpp"
#include "base/file.hpp"
#include "base/time.hpp"
#include "base/util.hpp"
#include "cli/tool.hpp"
#include "config/config.hpp"
#include "safety/audit.hpp"
#include "safety/audit_query.hpp"
#include "safety/policy.hpp"
#include "safety/promotion.hpp"
#include "vm/lifecycle.hpp"  // plan_line

namespace {

// The filters of ls, tail and export.
std::vector<ceso::Option> filter_options() {
  return {
      {"since", 0, "WHEN", "records from this time on (2h, 7d, 2026-11-22, 2026-11-22T03:04Z)"},
      {"until", 0, "WHEN", "records before this time (same forms as --since)"},
      {"tool", 0, "GLOB", "records of matching tools (ceso-snap, 'ceso-b*')"},
      {"vm", 0, "GLOB", "records of matching VMs"},
      {"actor", 0, "GLOB", "records of matching users (the \"user\" field)"},
      {"correlation", 'c', "ID", "records of one pipeline (its correlation id)"},
      {"failed", 0, "", "only records whose result is not ok (error, refused)"},
  };
}

// Each verb's own table; --log is shared. A verb added later (promote) gets
// its own row and table here.
ceso::ToolSpec make_spec() {
  using ceso::kDryRun;
  using ceso::kOutput;
  std::vector<ceso::Option> tail_options = filter_options();
  tail_options.insert(tail_options.begin(),
                      {{"lines", 0, "N", "start with the last N records (default 10)"},
                       {"follow", 'f', "", "then print records as they are appended"}});
  std::vector<ceso::Option> export_options = filter_options();
  export_options.insert(export_options.begin(),
                        {"format", 0, "FORMAT", "ndjson (the log's lines as they are) or csv", 0,
                         ceso::Complete::choices, "ndjson csv"});
  ceso::ToolSpec spec{
      "ceso-audit",
      "Verify, list, follow and export the audit log; sign and revoke promotions.",
      "[OPTION]... verify|ls|tail|show|export|anchor|keygen|promote|inspect|revoke "
      "[OPTION]...",
      {{"log", 0, "FILE", "the audit log (default: $CESO_AUDIT_LOG or the state directory's)", 0,
        ceso::Complete::file}},
      0,
      {
          {"verify", "check the hash chain and the anchor", {}, kOutput, "[OPTION]..."},
          {"ls", "print records, filtered", filter_options(), kOutput, "[OPTION]..."},
          {"tail", "print the last records, and follow the log with -f", tail_options, kOutput,
           "[OPTION]..."},
          {"show", "print one pipeline's records in order", {}, kOutput, "[OPTION]... CORRELATION"},
          {"export", "print records for another system (SIEM)", export_options, 0,
           "--format ndjson|csv [OPTION]..."},
          {"anchor",
           "show the anchor, or reset it to the log as it is (audited)",
           {
               {"reset", 0, "", "make the anchor describe the log as it is now"},
               {"reason", 0, "TEXT", "--reset: why (recorded in the audit log)"},
           },
           kDryRun | kOutput,
           "[--reset [--reason TEXT] [--dry-run]]"},
          {"keygen",
           "make the operator's Ed25519 key pair for promotions",
           {{"out", 0, "FILE", "the private key (FILE.pub: the public key)", 0,
             ceso::Complete::file}},
           kOutput,
           "--out FILE"},
          {"promote",
           "sign a promotion: changes a restricted process may make for a while (audited)",
           {
               {"key", 0, "FILE", "the operator's private key", 0, ceso::Complete::file},
               {"for", 0, "DURATION", "how long it is valid (30min, 2h; at most 24h)"},
               {"allow", 0, "VERBS:GLOB",
                "verbs on VMs matching GLOB, e.g. 'power,snap:web*' (repeatable)"},
               {"endpoint", 0, "HOST", "the host it is for (HOST or HOST:PORT)"},
               {"max-uses", 0, "N", "at most N changes (counted in the audit log)"},
               {"reason", 0, "TEXT", "why (kept in the token and the audit log)"},
               {"not-before", 0, "WHEN",
                "valid from WHEN: a duration from now (10min, -1h) or a UTC time"},
               {"out", 0, "FILE", "write the token here (a new file, mode 0600)", 0,
                ceso::Complete::file},
           },
           kDryRun | kOutput,
           "--key FILE --for DURATION --allow VERBS:GLOB --endpoint HOST --reason TEXT --out FILE"},
          {"inspect",
           "verify a promotion token and show what it allows",
           {{"key", 0, "FILE", "the public key (default: the config's promotion.key)", 0,
             ceso::Complete::file},
            {"revoked", 0, "FILE", "revocation file (default: the config's promotion.revoked)", 0,
             ceso::Complete::file}},
           kOutput,
           "[OPTION]... TOKEN-FILE"},
          {"revoke",
           "revoke a promotion (token file or id; audited)",
           {{"reason", 0, "TEXT", "why (kept in the revocation file and the audit log)"},
            {"revoked", 0, "FILE", "revocation file (default: the config's promotion.revoked)", 0,
             ceso::Complete::file}},
           kDryRun | kOutput,
           "[OPTION]... TOKEN-FILE|ID"},
      },
  };
  spec.per_verb_options = true;
  return spec;
}

const ceso::ToolSpec kSpec = make_spec();

std::string log_path(const ceso::Args& args) {
  if (auto p = args.maybe("log")) {
    if (p->empty()) ceso::usage_error("--log: the path is empty");
    return *p;
  }
  return ceso::default_audit_log_path();
}

// Parsed filters; usage errors before the log is opened.
ceso::AuditFilter filter_from(const ceso::Args& args) {
  ceso::AuditFilter f;
  auto now = std::chrono::system_clock::now();
  if (auto s = args.maybe("since")) f.since = ceso::parse_time_bound(*s, "--since", now);
  if (auto u = args.maybe("until")) f.until = ceso::parse_time_bound(*u, "--until", now);
  if (!f.since.empty() && !f.until.empty() && f.until <= f.since)
    ceso::usage_error("--until " + ceso::quote(args.get("until")) + " is not after --since " +
                      ceso::quote(args.get("since")));
  f.tool = args.get("tool");
  f.vm = args.get("vm");
  f.actor = args.get("actor");
  f.correlation = args.get("correlation");
  f.failed = args.has("failed");
  return f;
}

// Reads the log's lines and hands the records that pass `filter` to `emit`
// with their line number; a line that is no record is reported and counted.
class RecordSource {
 public:
  RecordSource(const std::string& path, ceso::AuditFilter filter)
      : reader_(path), filter_(std::move(filter)) {}

  size_t read(const std::function<void(const ceso::ordered_json&, const ceso::AuditLine&)>& emit) {
    return reader_.read([&](const ceso::AuditLine& line) {
      const std::string where =
          "audit log " + ceso::quote(reader_.path()) + " line " + std::to_string(line.number);
      if (line.too_long) return skip(where + " is too long for an audit record; skipped");
      auto j = ceso::ordered_json::parse(line.text, nullptr, false);
      if (j.is_discarded() || !j.is_object()) return skip(where + " is not a JSON object; skipped");
      if (filter_.matches(j)) emit(j, line);
    });
  }
  ceso::AuditReader& reader() { return reader_; }
  size_t skipped() const { return skipped_; }

 private:
  void skip(const std::string& message) {
    ceso::warn(message);
    ++skipped_;
  }
  ceso::AuditReader reader_;
  ceso::AuditFilter filter_;
  size_t skipped_ = 0;
};

// Lines that are no record make a listing partial (exit 4): it is not the whole log.
ceso::Exit listing_exit(const RecordSource& src) {
  return src.skipped() ? ceso::Exit::partial : ceso::Exit::ok;
}

const std::vector<std::string> kColumns = {"time",      "user",   "tool",          "vm",
                                           "operation", "result", "correlation_id"};

std::string record_line(const ceso::ordered_json& r) {
  auto s = [&](const char* k) {
    auto it = r.find(k);
    return it != r.end() && it->is_string() ? it->get<std::string>() : std::string("-");
  };
  std::string line = s("time") + "  " + s("user") + "  " + s("tool") + "  " + s("vm") + "  " +
                     s("operation") + "  " + s("result");
  if (r.contains("error")) line += ": " + s("error");
  return line;
}

ceso::Exit verify(const ceso::Args& args) {
  const std::string path = log_path(args);
  ceso::AuditVerification v = ceso::verify_audit_log(path);
  ceso::ordered_json rec = {{"type", "audit_verify"},
                            {"log", path},
                            {"ok", v.ok},
                            {"lines", v.lines},
                            {"last_hash", v.last_hash},
                            {"anchored", v.checkpoint}};
  if (!v.ok) {
    rec["break"] = {{"line", v.bad_line ? ceso::ordered_json(v.bad_line) : ceso::ordered_json()},
                    {"kind", v.kind},
                    {"problem", v.problem}};
  }
  rec["unanchored_lines"] = v.unanchored;
  rec["tail_unverified_lines"] = v.marked;
  ceso::Output out(args, {}, [](const ceso::ordered_json& r) {
    if (!r["ok"].get<bool>()) return "broken: " + r["break"]["problem"].get<std::string>();
    return "intact: " + std::to_string(r["lines"].get<size_t>()) + " line(s), last hash " +
           r["last_hash"].get<std::string>();
  });
  out.emit(rec);
  out.finish();
  if (!v.ok) {
    ceso::warn("audit log " + ceso::quote(path) + " is broken: " + v.problem);
    return ceso::Exit::partial;
  }
  if (!v.checkpoint && v.lines > 0)
    ceso::warn("audit log " + ceso::quote(path) +
               " has no anchor: lines cut off its end could not be told (ceso-audit anchor "
               "--reset starts one)");
  if (v.unanchored > 0)
    ceso::warn(std::to_string(v.unanchored) + " line(s) at the end of " + ceso::quote(path) +
               " come after what its anchor records: they chain correctly, but the anchor "
               "cannot vouch for them (a writer that died, or lines added by hand)");
  for (size_t line : v.marked)
    ceso::warn("line " + std::to_string(line) +
               " was appended onto a tail its anchor could not vouch for (\"tail_unverified\")");
  return ceso::Exit::ok;
}

ceso::Exit list(const ceso::Args& args) {
  ceso::AuditFilter filter = filter_from(args);
  RecordSource src(log_path(args), std::move(filter));
  ceso::Output out(args, kColumns);
  src.read([&](const ceso::ordered_json& r, const ceso::AuditLine&) { out.emit(r); });
  out.finish();
  return listing_exit(src);
}

ceso::Exit show(const ceso::Args& args) {
  if (args.operands.size() != 1)
    ceso::usage_error("show needs exactly one CORRELATION id (see ceso-audit ls)");
  ceso::AuditFilter filter;
  filter.correlation = args.operands.front();
  RecordSource src(log_path(args), filter);
  ceso::Output out(args, kColumns);
  size_t found = 0;
  src.read([&](const ceso::ordered_json& r, const ceso::AuditLine&) {
    out.emit(r);
    ++found;
  });
  out.finish();
  if (found == 0 && src.skipped() == 0)
    ceso::fail("no records with correlation id " + ceso::quote(filter.correlation) + " in " +
               ceso::quote(src.reader().path()));
  return listing_exit(src);
}

// Sleeps a little while following; a signal cuts the sleep short.
void pause_for_more() {
  struct timespec ts {
    0, 200 * 1000 * 1000
  };
  ::nanosleep(&ts, nullptr);
}

ceso::Exit tail(const ceso::Args& args) {
  const size_t keep = static_cast<size_t>(args.get_int("lines", 10, 0, 1000000));
  ceso::AuditFilter filter = filter_from(args);
  RecordSource src(log_path(args), std::move(filter));
  ceso::Output out(args, {}, record_line);
  std::deque<ceso::ordered_json> last;
  src.read([&](const ceso::ordered_json& r, const ceso::AuditLine&) {
    last.push_back(r);
    if (last.size() > keep) last.pop_front();
  });
  for (const auto& r : last) out.emit(r);
  if (!args.has("follow")) return listing_exit(src);
  auto emit = [&](const ceso::ordered_json& r, const ceso::AuditLine&) { out.emit(r); };
  bool announced = false;  // the replacement was reported
  while (!ceso::interrupted()) {
    if (src.read(emit) > 0) continue;
    // Rotated, replaced or cut: say so once and follow what the path names
    // now, as soon as it names a file again.
    if (src.reader().replaced()) {
      if (!announced)
        ceso::warn("audit log " + ceso::quote(src.reader().path()) +
                   " was replaced or truncated; following it from its start");
      announced = true;
      try {
        src.reader().reopen();
        announced = false;
        continue;
      } catch (const ceso::Error&) {
        // not there yet: keep reading the old file and try again
      }
    }
    pause_for_more();
  }
  return ceso::Exit::interrupted;
}

bool write_out(const std::string& text) {
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    ssize_t w = ::write(STDOUT_FILENO, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EPIPE) return false;
      ceso::fail(std::string("cannot write to standard output: ") + std::strerror(errno));
    }
    p += w;
    left -= static_cast<size_t>(w);
  }
  return true;
}

ceso::Exit export_log(const ceso::Args& args) {
  const std::string format = args.get("format");
  if (format.empty()) ceso::usage_error("export needs --format ndjson or --format csv");
  ceso::AuditFilter filter = filter_from(args);
  RecordSource src(log_path(args), std::move(filter));
  const bool csv = format == "csv";
  bool open = !csv || write_out(ceso::audit_csv_header());
  src.read([&](const ceso::ordered_json& r, const ceso::AuditLine& line) {
    if (!open) return;
    // ndjson: the line byte for byte, so its hash still links the chain.
    open = write_out(csv ? ceso::audit_csv_row(r, line.number) : std::string(line.text) + "\n");
  });
  return listing_exit(src);
}

ceso::Exit anchor(const ceso::Args& args) {
  if (!args.has("reset") && (args.has("reason") || args.has("dry-run")))
    ceso::usage_error("--reason and --dry-run go with --reset");
  const std::string path = log_path(args);
  ceso::AuditLog log(path);
  ceso::Output out(args, {}, [](const ceso::ordered_json& r) {
    if (r.value("type", "") == "plan") return ceso::plan_line(r);
    return "anchor " + r["anchor"].dump() + (r.value("changed", false) ? " (reset)" : "");
  });
  ceso::AuditLog::AnchorChange status = log.anchor_status();
  if (!args.has("reset")) {
    out.emit({{"type", "audit_anchor"}, {"log", path}, {"anchor", status.before}});
    return ceso::Exit::ok;
  }
  // The reset goes through the Gate like any change: planned with --dry-run,
  // refused in restricted mode, and recorded — in the log it re-anchors,
  // right after the reset, so the new anchor then covers its own record.
  ceso::GateSettings settings =
      ceso::GateSettings::from_environment("ceso-audit", args.has("dry-run"));
  settings.audit_log = path;
  ceso::Gate gate(
      settings, [](const std::string& m) { ceso::warn(m); },
      [&](const ceso::ordered_json& plan) { out.emit(plan); });
  ceso::Mutation m{"",
                   "",
                   "",
                   "ResetAuditAnchor",
                   {{"log", path},
                    {"before", status.before},
                    {"after", status.after},
                    {"reason", args.get("reason")}}};
  ceso::AuditLog::AnchorChange done;
  if (!gate.perform(m, [&] { done = log.reset_anchor(); })) return ceso::Exit::ok;
  out.emit({{"type", "audit_anchor"},
            {"log", path},
            {"anchor", done.after},
            {"before", done.before},
            {"changed", true}});
  return ceso::Exit::ok;
}

// ------------------------------------------------------------ promotions

// Writes `text` to a new file `path` (never over an existing one).
void write_new_file(const std::string& path, const std::string& text, mode_t mode,
                    std::string_view what) {
  ceso::Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd)
    ceso::fail(std::string(what) + ": cannot create " + ceso::quote(path) + ": " +
               std::strerror(errno) + (errno == EEXIST ? " (not overwritten)" : ""));
  // open(2)'s mode went through the umask: set it as asked.
  if (::fchmod(fd.get(), mode) != 0 || ceso::write_all(fd.get(), text) != 0 || fd.close() != 0) {
    int err = errno;
    ::unlink(path.c_str());
    ceso::fail(std::string(what) + ": cannot write " + ceso::quote(path) + ": " +
               std::strerror(err));
  }
}

ceso::Exit keygen(const ceso::Args& args) {
  const std::string out = args.get("out");
  if (out.empty()) ceso::usage_error("keygen needs --out FILE (the private key)");
  ceso::PromotionKey key = ceso::PromotionKey::generate();
  write_new_file(out, key.private_pem(), 0600, "private key");
  try {
    write_new_file(out + ".pub", key.public_pem(), 0644, "public key");
  } catch (...) {
    ::unlink(out.c_str());
    throw;
  }
  ceso::Output out_(args, {}, [](const ceso::ordered_json& r) {
    return "private key " + r["private"].get<std::string>() + ", public key " +
           r["public"].get<std::string>() + " (key " + r["key"].get<std::string>() + ")";
  });
  out_.emit(
      {{"type", "promotion_key"}, {"private", out}, {"public", out + ".pub"}, {"key", key.id()}});
  return ceso::Exit::ok;
}

// --for: seconds, from the shared duration grammar; months and years are
// far beyond the cap.
int64_t lifetime_seconds(const std::string& text) {
  ceso::Duration d = ceso::parse_duration(text, "--for");
  if (d.years || d.months)
    ceso::usage_error("--for " + ceso::quote(text) + " is longer than the 24h cap");
  int64_t s = ((d.days * 24 + d.hours) * 60 + d.minutes) * 60 + d.seconds;
  if (s <= 0) ceso::usage_error("--for " + ceso::quote(text) + " is not a positive duration");
  if (s > ceso::kPromotionMaxLifetime)
    ceso::usage_error("--for " + ceso::quote(text) + " is longer than the 24h cap");
  return s;
}

// --not-before: "10min" (from now), "-1h" (back from now) or a UTC time.
int64_t start_time(const std::string& text, int64_t now) {
  if (auto t = ceso::parse_utc_time(text)) return *t;
  const bool back = !text.empty() && text.front() == '-';
  const std::string rest =
      !text.empty() && (text.front() == '-' || text.front() == '+') ? text.substr(1) : text;
  ceso::Duration d = ceso::parse_duration(rest, "--not-before");
  if (d.years || d.months)
    ceso::usage_error("--not-before " + ceso::quote(text) + ": use days, hours or minutes");
  int64_t s = ((d.days * 24 + d.hours) * 60 + d.minutes) * 60 + d.seconds;
  return back ? now - s : now + s;
}

std::string issuer_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "localhost");
  return ceso::audit_user_name() + "@" + host;
}

ceso::ordered_json claims_record(const ceso::PromotionClaims& c) {
  ceso::ordered_json allow = ceso::ordered_json::array();
  for (const auto& g : c.allow) allow.push_back({{"verb", g.verb}, {"vm", g.vm}});
  ceso::ordered_json r = ceso::ordered_json::object();
  r["id"] = c.id;
  r["endpoint"] = c.endpoint;
  r["allow"] = allow;
  r["not_before"] = ceso::format_utc(c.not_before);
  r["expires"] = ceso::format_utc(c.expires);
  r["max_uses"] = c.max_uses ? ceso::ordered_json(*c.max_uses) : ceso::ordered_json();
  r["reason"] = c.reason;
  r["issuer"] = c.issuer;
  r["issued"] = ceso::format_utc(c.issued);
  r["key"] = c.key;
  return r;
}

ceso::Exit promote(const ceso::Args& args) {
  for (const char* required : {"key", "for", "endpoint", "reason", "out"})
    if (args.get(required).empty()) ceso::usage_error(std::string("promote needs --") + required);
  if (args.all("allow").empty()) ceso::usage_error("promote needs --allow VERBS:GLOB");
  const int64_t now = ceso::unix_now();
  ceso::PromotionClaims c;
  c.id = ceso::new_promotion_id();
  c.issued = now;
  c.not_before = args.has("not-before") ? start_time(args.get("not-before"), now) : now;
  c.expires = c.not_before + lifetime_seconds(args.get("for"));
  c.endpoint = ceso::ascii_lower(args.get("endpoint"));
  if (!ceso::promotion_endpoint_matches(c.endpoint, c.endpoint))  // parses as an endpoint
    ceso::usage_error("--endpoint " + ceso::quote(args.get("endpoint")) +
                      ": expected HOST or HOST:PORT (as the records' endpoint writes it)");
  for (const auto& a : args.all("allow"))
    for (auto& g : ceso::parse_promotion_allow(a, "--allow"))
      if (std::find(c.allow.begin(), c.allow.end(), g) == c.allow.end()) c.allow.push_back(g);
  if (args.has("max-uses")) c.max_uses = args.get_int("max-uses", 1, 1, 1000000);
  c.reason = args.get("reason");
  c.issuer = issuer_name();
  const std::string out_path = args.get("out");
  // The key is read (and its mode checked) before anything is planned.
  ceso::PromotionKey key = ceso::PromotionKey::load_private(args.get("key"));
  c.key = key.id();
  const std::string token = ceso::sign_promotion(c, key);  // checks every claim

  ceso::Output out(args, {}, [](const ceso::ordered_json& r) {
    if (r.value("type", "") == "plan") return ceso::plan_line(r);
    return "promotion " + r["id"].get<std::string>() + " written to " +
           r["file"].get<std::string>() + ", valid until " + r["expires"].get<std::string>();
  });
  ceso::ordered_json rec = claims_record(c);
  rec["file"] = out_path;
  // Granting is a change: audited (in the operator's log), planned with
  // --dry-run, refused in restricted mode.
  ceso::Gate gate =
      ceso::tool_gate(args.has("dry-run"), [&](const ceso::ordered_json& plan) { out.emit(plan); });
  ceso::Mutation m{"", "", "", "IssuePromotion", rec};
  if (!gate.perform(m, [&] { write_new_file(out_path, token, 0600, "promotion"); }))
    return ceso::Exit::ok;
  ceso::ordered_json result = {{"type", "promotion"}};
  result.update(rec);
  out.emit(result);
  return ceso::Exit::ok;
}

ceso::Exit inspect(const ceso::Args& args) {
  if (args.operands.size() != 1) ceso::usage_error("inspect needs exactly one TOKEN-FILE");
  const std::string file = args.operands.front();
  ceso::PromotionFiles files;
  if (!args.has("key") || !args.has("revoked")) files = ceso::promotion_files();
  const std::string key_path = args.has("key") ? args.get("key") : files.key;
  const std::string revoked = args.has("revoked") ? args.get("revoked") : files.revoked;
  ceso::Output out(args, {}, [](const ceso::ordered_json& r) {
    if (!r["verified"].get<bool>()) return "not verified: " + r["problem"].get<std::string>();
    return "promotion " + r["id"].get<std::string>() + ": " + r["status"].get<std::string>() +
           (r.contains("problem") ? " (" + r["problem"].get<std::string>() + ")" : "") +
           "; allows " + r["allows"].get<std::string>() + " at " +
           r["endpoint"].get<std::string>() + " until " + r["expires"].get<std::string>();
  });
  std::string token =
      *ceso::read_file(file, {.what = "promotion", .max_bytes = ceso::kPromotionMaxBytes});
  ceso::PromotionKey key = ceso::PromotionKey::load_public(key_path, "operator key");
  ceso::ordered_json rec = {{"type", "promotion"}, {"file", file}};
  ceso::PromotionClaims c;
  try {
    c = ceso::verify_promotion(token, key);
  } catch (const ceso::Error& e) {
    // Nothing of an unverified payload is shown: it could say anything.
    rec["verified"] = false;
    rec["problem"] = e.what();
    out.emit(rec);
    out.finish();
    ceso::warn("promotion " + ceso::quote(file) + " is not valid: " + e.what());
    return ceso::Exit::partial;
  }
  rec["verified"] = true;
  rec.update(claims_record(c));
  rec["allows"] = ceso::describe_grants(c.allow);
  std::string status = "valid", problem;
  if (std::string t = ceso::promotion_time_problem(c, ceso::unix_now()); !t.empty()) {
    status = ceso::unix_now() < c.not_before ? "not-yet-valid" : "expired";
    problem = t;
  }
  auto text = ceso::read_file(revoked, {.what = "revocation file", .missing_ok = true});
  if (text)
    for (const auto& id : ceso::parse_revocations(*text, revoked))
      if (id == c.id) status = "revoked", problem = "listed in " + ceso::quote(revoked);
  const std::string log = log_path(args);
  const int64_t uses = ceso::count_promotion_uses(log, c.id);
  rec["uses"] = uses;
  if (status == "valid" && c.max_uses && uses >= *c.max_uses) {
    status = "used-up";
    problem = "used " + std::to_string(uses) + " of " + std::to_string(*c.max_uses) + " time(s)";
  }
  rec["status"] = status;
  if (!problem.empty()) rec["problem"] = problem;
  out.emit(rec);
  out.finish();
  return ceso::Exit::ok;
}

ceso::Exit revoke(const ceso::Args& args) {
  if (args.operands.size() != 1) ceso::usage_error("revoke needs one TOKEN-FILE or promotion ID");
  const std::string what = args.operands.front();
  std::string id;
  struct stat st {};
  if (::stat(what.c_str(), &st) != 0 && errno == ENOENT && what.find('/') == std::string::npos) {
    // Not a file: an id, as inspect and the audit log print it.
    const bool is_id = what.size() == 32 && std::all_of(what.begin(), what.end(), [](char ch) {
                         return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
                       });
    if (!is_id)
      ceso::usage_error("revoke: " + ceso::quote(what) +
                        " is neither a token file nor a promotion id (32 lower-case hex digits)");
    id = what;
  } else {
    // Revoking only takes rights away: the id is read without verifying.
    id = ceso::unverified_promotion_id(
        *ceso::read_file(what, {.what = "promotion", .max_bytes = ceso::kPromotionMaxBytes}));
  }
  std::string reason = args.get("reason");
  for (char& ch : reason)
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = ' ';
  const std::string path =
      args.has("revoked") ? args.get("revoked") : ceso::promotion_files().revoked;
  ceso::Output out(args, {}, [](const ceso::ordered_json& r) {
    if (r.value("type", "") == "plan") return ceso::plan_line(r);
    return "promotion " + r["id"].get<std::string>() + " revoked in " +
           r["file"].get<std::string>();
  });
  ceso::Gate gate =
      ceso::tool_gate(args.has("dry-run"), [&](const ceso::ordered_json& plan) { out.emit(plan); });
  ceso::Mutation m{"", "", "", "RevokePromotion", {{"id", id}, {"file", path}, {"reason", reason}}};
  bool done = gate.perform(m, [&] {
    const size_t slash = path.rfind('/');
    if (slash != std::string::npos && slash > 0) ceso::make_private_dirs(path.substr(0, slash));
    ceso::Fd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));
    if (!fd)
      ceso::fail("cannot open revocation file " + ceso::quote(path) + ": " + std::strerror(errno));
    std::string line = id + "  " + ceso::format_utc(ceso::unix_now()) + "  " + reason + "\n";
    if (ceso::write_all(fd.get(), line) != 0 || fd.close() != 0)
      ceso::fail("cannot write revocation file " + ceso::quote(path) + ": " + std::strerror(errno));
  });
  if (!done) return ceso::Exit::ok;
  out.emit({{"type", "promotion_revoked"}, {"id", id}, {"file", path}, {"reason", reason}});
  return ceso::Exit::ok;
}

ceso::Exit run(const ceso::Args& args) {
  using Verb = ceso::Exit (*)(const ceso::Args&);
  static const std::pair<std::string_view, Verb> kVerbs[] = {
      {"verify", verify},     {"ls", list},       {"tail", tail},     {"show", show},
      {"export", export_log}, {"anchor", anchor}, {"keygen", keygen}, {"promote", promote},
      {"inspect", inspect},   {"revoke", revoke},
  };
  for (const auto& [name, fn] : kVerbs) {
    if (name != args.verb) continue;
    if (name != "show" && name != "inspect" && name != "revoke" && !args.operands.empty())
      ceso::usage_error(std::string(name) + " takes no operands, not " +
                        ceso::quote(args.operands.front()));
    // Only `anchor --reset`, keygen, promote and revoke write: Ctrl-C need
    // not wait for anything else.
    std::optional<ceso::ReadOnlyRun> read_only;
    if (!args.has("reset") && name != "keygen" && name != "promote" && name != "revoke")
      read_only.emplace();
    return fn(args);
  }
  if (args.operands.empty())
    ceso::usage_error(
        "missing command: verify, ls, tail, show, export, anchor, keygen, promote, inspect or "
        "revoke");
  ceso::usage_error("unknown command " + ceso::quote(args.operands.front()) +
                    " (use verify, ls, tail, show, export, anchor, keygen, promote, inspect or "
                    "revoke)");
}

}  // namespace

int main(int argc, char** argv) { return ceso::run_tool(kSpec, argc, argv, run); }
