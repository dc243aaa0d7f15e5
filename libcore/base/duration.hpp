// Durations on the command line: one parser, one unit table, one error
// message for every tool (`ceso-snap rm --older-than`, `ceso-backup prune
// --keep-within`), so a spelling means the same thing everywhere.
//
// Units: s, min, h, d, w (fixed lengths) and mo, y (calendar months and
// years). Numbers and units may be combined ("1y6mo", "1d12h"). A bare `m` is
// refused: restic reads it as months, systemd as minutes, and guessing wrong
// in a prune deletes backups. A number without a unit is refused too.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ceso {

// Calendar years and months, then days, hours, minutes and seconds (a week is
// stored as 7 days). Subtracted from a time in UTC, so a day is 86400 s.
struct Duration {
  int64_t years = 0, months = 0, days = 0, hours = 0, minutes = 0, seconds = 0;
  bool operator==(const Duration&) const = default;
};

// The longest duration accepted, in years (also keeps time arithmetic in range).
inline constexpr int kMaxDurationYears = 100;

// "90min", "12h", "7d", "2w", "6mo", "1y6mo". Throws Error(usage)
// "<what>: bad duration '<text>': <reason> (…)" otherwise.
Duration parse_duration(std::string_view text, std::string_view what);

// Canonical spelling: "1y6mo", "14d", "90min", "0s".
std::string to_string(const Duration& d);

// `t` (UTC seconds since the epoch) minus `d`: calendar years, months and days
// like Go's AddDate (2024-03-31 minus 1mo is 2024-03-02), then the rest.
int64_t subtract(int64_t t, const Duration& d);

}  // namespace ceso
