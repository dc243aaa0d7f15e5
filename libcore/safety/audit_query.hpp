// Reading the audit log back: records line by line (also while it grows, for
// `ceso-audit tail -f`), filters, and the CSV export (docs/audit.md
// "Reading the log"). Records are shown as the log has them: redaction
// happened when they were written (AuditLog::append), and nothing here adds
// to what a record holds.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "base/records.hpp"

namespace ceso {

// One line of the log as read back.
struct AuditLine {
  size_t number = 0;      // 1-based line number in the file read
  std::string_view text;  // without its newline; empty when too_long
  bool too_long = false;  // longer than any audit record may be: skipped unread
};

// Reads a log's complete lines in order, from where the last read stopped to
// the current end; a partial last line waits for its newline. Reading never
// takes the log's lock: appends write whole lines with one write(2).
class AuditReader {
 public:
  // Throws Error(failure) naming the path when it cannot be opened.
  explicit AuditReader(std::string path);
  ~AuditReader();
  AuditReader(const AuditReader&) = delete;
  AuditReader& operator=(const AuditReader&) = delete;

  // Calls fn for each complete line read; returns how many.
  size_t read(const std::function<void(const AuditLine&)>& fn);
  // The path now names another file (rotated, deleted, replaced), or the
  // file is shorter than what was read (truncated): the caller may reopen().
  bool replaced() const;
  // Starts over on whatever the path names now.
  void reopen();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  off_t offset_ = 0;     // bytes read so far
  std::string pending_;  // an incomplete line
  size_t line_ = 0;
  bool skipping_ = false;  // inside a line too long to keep
};

// Which records to show. Empty fields match everything; tool, vm and actor
// are shell globs (fnmatch); the correlation id is matched exactly.
struct AuditFilter {
  std::string since;  // "time" >= since (a utc_timestamp string)
  std::string until;  // "time" < until
  std::string tool, vm, actor, correlation;
  bool failed = false;  // only records whose result is not "ok"
  bool matches(const ordered_json& record) const;
};

// A --since/--until value: a duration back from `now` ("2h", "7d", "1y6mo";
// base/duration.hpp) or a time, "2026-11-22", "2026-11-22T03:04",
// "2026-11-22T03:04:05[.123]" in UTC, optionally followed by "Z" or an offset
// "+01:00". Returns it as utc_timestamp() writes it, which orders as text.
// Throws Error(usage) naming `what` and the value otherwise.
std::string parse_time_bound(std::string_view text, std::string_view what,
                             std::chrono::system_clock::time_point now);

// CSV export (RFC 4180: CRLF line ends, fields with a comma, quote, CR or LF
// quoted and their quotes doubled). The columns are fixed (docs/audit.md):
//   line,time,user,tool,endpoint,vm,vm_id,operation,result,error,duration_ms,
//   correlation_id,pid,params,tail_unverified,prev
// null and absent fields are empty; params is compact JSON. A cell that
// starts with = + - @ TAB or CR gets a leading ' so a spreadsheet shows it
// as text instead of running it as a formula.
std::string audit_csv_header();
std::string audit_csv_row(const ordered_json& record, size_t line);
// One cell, quoted and defused as above.
std::string csv_cell(std::string_view text);

}  // namespace ceso
