// Retention: which backups of one VM to keep, with restic `forget`
// semantics (docs/esxi.md "Backup practice"). A pure function so the rules
// can be table-tested with a fixed clock.
//
// Per VM, newest first: --keep-last N keeps the N newest; --keep-hourly …
// --keep-yearly N keep the newest backup of each of the last N periods that
// have backups (UTC; ISO weeks, Monday first), each rule counting on its own;
// a rule that still has slots when it reaches the oldest backup keeps it too;
// --keep-within D keeps everything newer than newest-minus-D. A backup kept by
// any rule stays. An empty policy keeps everything.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ceso {

// A restic duration ("1y2m3d4h"): calendar years, months and days, then hours.
struct RetentionDuration {
  int years = 0, months = 0, days = 0, hours = 0;
  bool operator==(const RetentionDuration&) const = default;
};

struct RetentionPolicy {
  int last = 0, hourly = 0, daily = 0, weekly = 0, monthly = 0, yearly = 0;  // -1: unlimited
  std::optional<RetentionDuration> within;
  bool empty() const;
};

struct RetentionItem {
  std::string id;
  int64_t time = 0;  // UTC seconds since the epoch
};

struct RetentionDecision {
  std::string id;
  int64_t time = 0;
  bool keep = false;
  std::vector<std::string> reasons;  // "last", "daily", "within 7d", … (empty when removed)
};

// Decisions for one VM's backups, newest first. An empty policy keeps all
// (reason "no policy").
std::vector<RetentionDecision> apply_retention(std::vector<RetentionItem> backups,
                                               const RetentionPolicy& policy);

// "7d", "1y2m3d4h", "36h". Throws Error(usage) naming `what` ("--keep-within").
RetentionDuration parse_retention_duration(std::string_view text, std::string_view what);
std::string to_string(const RetentionDuration& d);

}  // namespace ceso
