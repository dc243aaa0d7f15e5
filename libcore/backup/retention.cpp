#include "backup/retention.hpp"

#include <algorithm>
#include <ctime>
#include <functional>

#include "base/error.hpp"
#include "base/time.hpp"

namespace ceso {

namespace {

// ISO 8601 week-numbering year * 100 + week (Monday first).
int64_t iso_week(const std::tm& tm) {
  char buf[16];
  std::strftime(buf, sizeof buf, "%G%V", &tm);
  return std::stoll(buf);
}

struct Bucket {
  int count;
  const char* reason;
  std::function<int64_t(const std::tm&, size_t)> key;
  int64_t last = -1;
};

}  // namespace

bool RetentionPolicy::empty() const {
  return last == 0 && hourly == 0 && daily == 0 && weekly == 0 && monthly == 0 && yearly == 0 &&
         !within;
}

std::vector<RetentionDecision> apply_retention(std::vector<RetentionItem> backups,
                                               const RetentionPolicy& policy) {
  std::stable_sort(backups.begin(), backups.end(),
                   [](const auto& a, const auto& b) { return a.time > b.time; });
  std::vector<RetentionDecision> out;
  for (const auto& b : backups) out.push_back({b.id, b.time, policy.empty(), {}});
  if (policy.empty()) {
    for (auto& d : out) d.reasons.push_back("no policy");
    return out;
  }
  auto ymd = [](const std::tm& t) {
    return (t.tm_year + 1900) * 10000LL + (t.tm_mon + 1) * 100LL + t.tm_mday;
  };
  std::vector<Bucket> buckets = {
      {policy.last, "last", [](const std::tm&, size_t nr) { return static_cast<int64_t>(nr); }},
      {policy.hourly, "hourly", [&](const std::tm& t, size_t) { return ymd(t) * 100 + t.tm_hour; }},
      {policy.daily, "daily", [&](const std::tm& t, size_t) { return ymd(t); }},
      {policy.weekly, "weekly", [](const std::tm& t, size_t) { return iso_week(t); }},
      {policy.monthly, "monthly",
       [](const std::tm& t, size_t) { return (t.tm_year + 1900) * 100LL + t.tm_mon + 1; }},
      {policy.yearly, "yearly", [](const std::tm& t, size_t) { return t.tm_year + 1900LL; }},
  };
  std::optional<int64_t> keep_after;
  if (policy.within && !out.empty()) keep_after = subtract(out.front().time, *policy.within);
  for (size_t nr = 0; nr < out.size(); ++nr) {
    auto& d = out[nr];
    std::tm tm = utc_tm(d.time);
    for (auto& b : buckets) {
      if (b.count == 0) continue;
      int64_t key = b.key(tm, nr);
      // A rule with slots left at the oldest backup keeps it: the longest history.
      if (key != b.last || nr + 1 == out.size()) {
        d.reasons.push_back(b.reason);
        b.last = key;
        if (b.count > 0) --b.count;
      }
    }
    if (keep_after && d.time > *keep_after)
      d.reasons.push_back("within " + to_string(*policy.within));
    d.keep = !d.reasons.empty();
  }
  return out;
}

}  // namespace ceso
