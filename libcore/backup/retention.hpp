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

#include "base/duration.hpp"

namespace ceso {

// --keep-within: a ceso::Duration ("1y6mo", "7d", "36h"), subtracted from the
// newest backup with calendar years and months, as restic does.
using RetentionDuration = Duration;

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

}  // namespace ceso
