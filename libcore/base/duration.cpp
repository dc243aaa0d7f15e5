#include "base/duration.hpp"

#include <cctype>
#include <charconv>
#include <ctime>

#include "base/error.hpp"
#include "base/time.hpp"

namespace ceso {

namespace {

struct Unit {
  std::string_view name;
  int64_t Duration::*field;
  int64_t count;           // how many of `field` one unit is (a week is 7 days)
  int64_t approx_seconds;  // only for the length limit (Gregorian average year)
};

constexpr int64_t kDay = 86400;
constexpr int64_t kYear = 31556952;  // 365.2425 days
constexpr Unit kUnits[] = {
    {"s", &Duration::seconds, 1, 1},     {"min", &Duration::minutes, 1, 60},
    {"h", &Duration::hours, 1, 3600},    {"d", &Duration::days, 1, kDay},
    {"w", &Duration::days, 7, 7 * kDay}, {"mo", &Duration::months, 1, kYear / 12},
    {"y", &Duration::years, 1, kYear},
};
constexpr std::string_view kHint = " (units: s, min, h, d, w, mo, y; e.g. 90min, 12h, 7d, 1y6mo)";

[[noreturn]] void bad(std::string_view what, std::string_view text, const std::string& reason) {
  usage_error(std::string(what) + ": bad duration " + quote(text) + ": " + reason +
              std::string(kHint));
}

const Unit* find_unit(std::string_view name) {
  for (const auto& u : kUnits)
    if (u.name == name) return &u;
  return nullptr;
}

bool is_alpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }

}  // namespace

Duration parse_duration(std::string_view text, std::string_view what) {
  if (text.empty()) bad(what, text, "empty");
  for (char c : text)
    if (std::isspace(static_cast<unsigned char>(c))) bad(what, text, "contains whitespace");
  Duration d;
  int64_t total = 0;  // approximate length in seconds, for the limit
  const char* p = text.data();
  const char* end = p + text.size();
  while (p != end) {
    // from_chars would take a sign: only digits start a number here.
    if (*p == '-') bad(what, text, "negative");
    if (!std::isdigit(static_cast<unsigned char>(*p)))
      bad(what, text, "expected a number at " + quote(std::string_view(p, end - p)));
    int64_t n = 0;
    auto [after, ec] = std::from_chars(p, end, n);
    if (ec == std::errc::result_out_of_range)
      bad(what, text, "longer than " + std::to_string(kMaxDurationYears) + " years");
    const char* unit_end = after;
    while (unit_end != end && is_alpha(*unit_end)) ++unit_end;
    std::string_view number(p, after - p), name(after, unit_end - after);
    if (name.empty()) bad(what, text, "the number " + std::string(number) + " has no unit");
    if (name == "m")
      bad(what, text,
          "'m' is ambiguous: write " + std::string(number) + "min for minutes or " +
              std::string(number) + "mo for months");
    const Unit* u = find_unit(name);
    if (!u) bad(what, text, "unknown unit " + quote(name));
    int64_t count = 0, seconds = 0;
    if (__builtin_mul_overflow(n, u->count, &count) ||
        __builtin_mul_overflow(n, u->approx_seconds, &seconds) ||
        __builtin_add_overflow(total, seconds, &total) ||
        total > int64_t{kMaxDurationYears} * kYear)
      bad(what, text, "longer than " + std::to_string(kMaxDurationYears) + " years");
    d.*(u->field) += count;  // bounded by the limit above, cannot overflow
    p = unit_end;
  }
  return d;
}

std::string to_string(const Duration& d) {
  std::string s;
  auto part = [&](int64_t n, std::string_view unit) {
    if (n) s += std::to_string(n) + std::string(unit);
  };
  part(d.years, "y");
  part(d.months, "mo");
  part(d.days, "d");
  part(d.hours, "h");
  part(d.minutes, "min");
  part(d.seconds, "s");
  return s.empty() ? "0s" : s;
}

int64_t subtract(int64_t t, const Duration& d) {
  std::tm tm = utc_tm(t);
  // parse_duration caps a duration at kMaxDurationYears, so these fit an int.
  tm.tm_year -= static_cast<int>(d.years);
  tm.tm_mon -= static_cast<int>(d.months);
  tm.tm_mday -= static_cast<int>(d.days);
  return static_cast<int64_t>(timegm(&tm)) - d.hours * 3600 - d.minutes * 60 - d.seconds;
}

}  // namespace ceso
