#include "ceso/retention.hpp"

#include <algorithm>
#include <ctime>
#include <functional>

#include "ceso/error.hpp"

namespace ceso {

namespace {

std::tm utc(int64_t t) {
  time_t tt = static_cast<time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return tm;
}

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

int64_t cutoff(int64_t newest, const RetentionDuration& d) {
  std::tm tm = utc(newest);
  tm.tm_year -= d.years;
  tm.tm_mon -= d.months;
  tm.tm_mday -= d.days;
  return static_cast<int64_t>(timegm(&tm)) - int64_t{d.hours} * 3600;
}

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
  if (policy.within && !out.empty()) keep_after = cutoff(out.front().time, *policy.within);
  for (size_t nr = 0; nr < out.size(); ++nr) {
    auto& d = out[nr];
    std::tm tm = utc(d.time);
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

RetentionDuration parse_retention_duration(std::string_view text, std::string_view what) {
  RetentionDuration d;
  std::string num;
  bool any = false;
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      num += c;
      continue;
    }
    int* field = c == 'y'   ? &d.years
                 : c == 'm' ? &d.months
                 : c == 'd' ? &d.days
                 : c == 'h' ? &d.hours
                            : nullptr;
    if (!field || num.empty() || num.size() > 6)
      usage_error(std::string(what) + ": bad duration " + quote(text) +
                  " (use e.g. 7d, 36h, 1y6m)");
    *field += std::stoi(num);
    num.clear();
    any = true;
  }
  if (!num.empty() || !any)
    usage_error(std::string(what) + ": bad duration " + quote(text) + " (use e.g. 7d, 36h, 1y6m)");
  return d;
}

std::string to_string(const RetentionDuration& d) {
  std::string s;
  if (d.years) s += std::to_string(d.years) + "y";
  if (d.months) s += std::to_string(d.months) + "m";
  if (d.days) s += std::to_string(d.days) + "d";
  if (d.hours || s.empty()) s += std::to_string(d.hours) + "h";
  return s;
}

}  // namespace ceso
