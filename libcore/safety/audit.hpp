// The audit log: one hash-chained NDJSON record per mutation (docs/design.md
// "Safety"; format and limits in docs/audit.md).
//
//   {"type":"audit","time":"2026-11-22T03:04:05.123Z","user":"ops","tool":"ceso-snap",
//    "endpoint":"esxi1:443","vm":"web01","vm_id":"vm-42","operation":"CreateSnapshot_Task",
//    "params":{…redacted…},"result":"ok","duration_ms":12,"correlation_id":"…","pid":123,
//    "prev":"<SHA-256 hex of the previous line, 64 zeros for the first>"}
//
// Writers take an exclusive flock(2) on the log while they read the last line
// and append theirs with a single write(2), so processes (a pipeline, parallel
// jobs) and threads (every append opens its own file description) never
// interleave or fork the chain. Next to the log, the anchor `<log>.head`
// records the size, line count and last-line hash after each append (under
// the same lock), so truncating the tail — which a chain alone cannot reveal
// — is detected by verify_audit_log. An append whose anchor does not describe
// the log's tail still chains on, but marks its record ("tail_unverified")
// and leaves the anchor as evidence (docs/audit.md "The anchor").
//
// Most tools do not use this header directly: they go through ceso::Gate
// (policy.hpp), which audits every mutation.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/records.hpp"
#include "base/time.hpp"  // utc_timestamp: the format of AuditRecord::time

namespace ceso {

enum class AuditResult { ok, error, refused };
std::string_view to_string(AuditResult result);

// One audited operation. Empty `time`, `user`, `correlation_id` and a zero
// `pid` are filled in by AuditLog::append; `params` is always redacted there.
struct AuditRecord {
  std::string time;  // UTC, "2026-11-22T03:04:05.123Z": when the operation started
  std::string user;  // login name of the real user id
  std::string tool;  // "ceso-snap"
  std::string endpoint;
  std::string vm;  // empty (written as null) for operations on a host
  std::string vm_id;
  std::string operation;  // vSphere method: "CreateSnapshot_Task"
  std::string transport;  // "api" or "ssh" (written when set; older records lack it)
  ordered_json params = ordered_json::object();
  AuditResult result = AuditResult::ok;
  std::string error;  // written only for error and refused
  int64_t duration_ms = 0;
  std::string correlation_id;
  // The id of the promotion that let a restricted process make (or try) the
  // change (promotion.hpp); written only when set, before "pid".
  std::string promotion;
  pid_t pid = 0;
};

class AuditLog {
 public:
  // `path` is used as is; default_audit_log_path() gives the usual one.
  explicit AuditLog(std::string path);

  // Appends one record. Safe to call from several threads and processes at
  // once. Creates the file (0600) and missing parent directories (0700).
  // Throws Error(Exit::failure) naming the path when the log cannot be
  // written; a short write is rolled back, so the log never keeps half a line.
  // Returns a warning for the caller to show when the anchor could not vouch
  // for the log's tail (the record was written, marked "tail_unverified");
  // empty otherwise.
  std::string append(const AuditRecord& record);

  // Makes the anchor describe the log as it is now (size, lines, last hash),
  // under the log's lock, whatever it said before; the log itself is not
  // touched. For a log deliberately rotated or reset, after a break has been
  // looked into (`ceso-audit anchor --reset`, which audits it through a Gate
  // right after). Returns what the anchor said before and says now.
  struct AnchorChange {
    ordered_json before;  // {"size","lines","sha256"}, or {"problem"}, or null (none)
    ordered_json after;   // {"size","lines","sha256"}
  };
  AnchorChange reset_anchor() const;
  // What reset_anchor would change, without changing it (for --dry-run and the
  // audit record's params).
  AnchorChange anchor_status() const;

  // Creates the log (and its directories) if needed and checks it can be
  // opened for appending, so a tool can fail before it changes anything.
  void check_writable() const;

  const std::string& path() const { return path_; }
  std::string head_path() const { return path_ + ".head"; }

 private:
  std::string path_;
};

// $CESO_AUDIT_LOG if set, else ${XDG_STATE_HOME:-$HOME/.local/state}/ceso/audit.log.
// Throws Error when neither XDG_STATE_HOME nor a home directory is known.
std::string default_audit_log_path();

// Result of checking a log's chain and its anchor.
struct AuditVerification {
  bool ok = true;
  size_t lines = 0;     // lines whose chain link checked out
  size_t bad_line = 0;  // first bad line (1-based); 0 when ok or the anchor is at fault
  std::string problem;  // what is wrong, for a message; empty when ok
  // What was done, where it can be told: "edited", "deleted", "inserted",
  // "reordered", "not-json", "too-long", "incomplete", "start" (lines removed
  // from the beginning), "truncated", "rewritten", "missing", "anchor"
  // (unreadable anchor), or "changed" (edited or deleted: cannot tell).
  std::string kind;
  std::string last_hash;    // SHA-256 of the last good line (64 zeros when none)
  bool checkpoint = false;  // a <log>.head was found and matched
  // Complete lines after the one the anchor names: written by a writer that
  // died before moving the anchor, or appended by hand — the anchor cannot
  // vouch for them.
  size_t unanchored = 0;
  // Lines marked "tail_unverified" (appended onto a tail the anchor could not
  // vouch for), for the report.
  std::vector<size_t> marked;
};

// Reads the whole log and checks that each line is a JSON object whose "prev"
// is the SHA-256 of the line before, that the last line is complete, and that
// <log>.head matches (size, lines and hash). Reports the first problem, and
// after a broken link reads on to tell an edit, a deletion, an insertion and
// a reordering apart. Throws Error only when the log cannot be read at all
// (a missing log without an anchor included).
AuditVerification verify_audit_log(const std::string& path);

// The login name of the real user id (the number when it has none): the
// records' "user".
std::string audit_user_name();

// The correlation id shared by all tools of one pipeline: $CESO_CORRELATION_ID
// when set (1–128 printable ASCII characters, else Error(Exit::usage) naming
// the variable); otherwise "HOST:BOOT:PGID:START" from the hostname, the
// kernel boot id, the process group id and the group leader's start time —
// equal for every member of a shell pipeline, and not repeated after the
// group id is reused.
std::string correlation_id();

// True for an object key whose value must never be logged or printed
// (passwords, tokens, private keys, cloud-init user data …; case-insensitive;
// the list is in docs/audit.md).
bool is_secret_key(std::string_view key);

// True for a vSphere option (ExtraConfig, vApp property) whose value must not
// be logged: a secret key, a key containing "key", and every guestinfo.* key
// but guestinfo.metadata (kept unless what it decodes to names a secret) and
// guestinfo.metadata.encoding.
bool is_secret_option(std::string_view key, std::string_view value);

// A copy of `value` with every secret replaced: values of secret keys at any
// depth, the "value" of option objects ({"key":"guestinfo.userdata",
// "value":…}) for which is_secret_option holds, guestinfo.* keys likewise,
// PEM private keys, and the same inside XML carried in a string (the
// ConfigSpec sent with ReconfigVM_Task / CreateVM_Task / CloneVM_Task):
// <password> elements and <value> elements of secret options. Plans and the
// audit log both pass through here (docs/audit.md "Redaction").
ordered_json redact(const ordered_json& value);

inline constexpr std::string_view kRedacted = "[redacted]";

// What stands for a secret: "[redacted]", or for a value of 64 bytes or more
// "[redacted sha256:HEX bytes:N]" (the SHA-256 of the value as sent), so a
// record can be matched with what a VM holds without showing it.
std::string redacted_value(std::string_view secret);

}  // namespace ceso
