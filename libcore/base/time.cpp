#include "base/time.hpp"

#include <cstdio>

namespace ceso {

int64_t unix_now() { return static_cast<int64_t>(std::time(nullptr)); }

std::tm utc_tm(int64_t t) {
  auto tt = static_cast<time_t>(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  return tm;
}

namespace {

std::string format(int64_t t, const char* fmt) {
  std::tm tm = utc_tm(t);
  char buf[64];
  size_t n = std::strftime(buf, sizeof buf, fmt, &tm);
  return std::string(buf, n);
}

// The number in text[pos, pos+width) if every byte there is a digit.
std::optional<int> digits(std::string_view text, size_t pos, size_t width) {
  if (pos + width > text.size()) return std::nullopt;
  int n = 0;
  for (size_t i = pos; i < pos + width; ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    n = n * 10 + (text[i] - '0');
  }
  return n;
}

bool is(std::string_view text, size_t pos, char c) { return pos < text.size() && text[pos] == c; }

// The zone suffix at `pos` as seconds east of UTC; nullopt if malformed.
std::optional<int> zone_offset(std::string_view text, size_t pos) {
  if (pos == text.size()) return 0;  // no zone: UTC, as vSphere means it
  if (text.substr(pos) == "Z") return 0;
  if (!is(text, pos, '+') && !is(text, pos, '-')) return std::nullopt;
  auto hh = digits(text, pos + 1, 2), mm = digits(text, pos + 4, 2);
  if (!hh || !mm || !is(text, pos + 3, ':') || pos + 6 != text.size() || *hh > 23 || *mm > 59)
    return std::nullopt;
  return (text[pos] == '+' ? 1 : -1) * (*hh * 3600 + *mm * 60);
}

}  // namespace

std::string format_utc(int64_t t) { return format(t, "%Y-%m-%dT%H:%M:%SZ"); }

std::string format_utc_compact(int64_t t) { return format(t, "%Y%m%dT%H%M%SZ"); }

std::string utc_timestamp(std::chrono::system_clock::time_point when) {
  auto ms = std::chrono::floor<std::chrono::milliseconds>(when.time_since_epoch()).count();
  int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
  int millis = static_cast<int>(ms - secs * 1000);
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%03dZ", millis);
  return format(secs, "%Y-%m-%dT%H:%M:%S") + frac;
}

std::optional<int64_t> parse_utc_time(std::string_view text) {
  using namespace std::chrono;
  auto y = digits(text, 0, 4), mo = digits(text, 5, 2), d = digits(text, 8, 2);
  auto h = digits(text, 11, 2), mi = digits(text, 14, 2), s = digits(text, 17, 2);
  if (!y || !mo || !d || !h || !mi || !s || !is(text, 4, '-') || !is(text, 7, '-') ||
      !is(text, 10, 'T') || !is(text, 13, ':') || !is(text, 16, ':'))
    return std::nullopt;
  year_month_day date{year(*y), month(static_cast<unsigned>(*mo)), day(static_cast<unsigned>(*d))};
  if (!date.ok() || *h > 23 || *mi > 59 || *s > 60) return std::nullopt;  // 60: a leap second
  size_t pos = 19;
  if (is(text, pos, '.')) {
    size_t end = pos + 1;
    while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
    if (end == pos + 1) return std::nullopt;  // "." needs a digit after it
    pos = end;
  }
  auto offset = zone_offset(text, pos);
  if (!offset) return std::nullopt;
  int64_t days_since_epoch = sys_days(date).time_since_epoch().count();
  return days_since_epoch * 86400 + *h * 3600 + *mi * 60 + *s - *offset;
}

}  // namespace ceso
