#include "base/numbers.hpp"

#include <array>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <string>
#include <utility>

#include "base/error.hpp"
#include "base/util.hpp"

namespace ceso {

namespace {

std::string flag(std::string_view option) { return "--" + std::string(option); }

[[noreturn]] void refuse(std::string_view option, std::string_view text, std::string_view why) {
  usage_error(flag(option) + ": " + quote(text) + " " + std::string(why));
}

// The leading run of ASCII digits of `text` as a number; the rest in `rest`.
// nullopt-like: ok=false when there are no digits; overflow sets `too_big`.
struct Digits {
  bool ok = false;
  bool too_big = false;
  uint64_t value = 0;
  std::string_view rest;
};

Digits leading_digits(std::string_view text) {
  Digits d;
  size_t n = 0;
  while (n < text.size() && text[n] >= '0' && text[n] <= '9') ++n;
  if (n == 0) return d;
  d.ok = true;
  d.rest = text.substr(n);
  // from_chars on digits only: no sign, no blanks, no "0x", no exponent.
  auto [end, ec] = std::from_chars(text.data(), text.data() + n, d.value, 10);
  d.too_big = ec == std::errc::result_out_of_range;
  return d;
}

// Bytes per unit; 0 when `unit` is not one.
int64_t unit_bytes(std::string_view unit, bool rate) {
  static const std::array<std::pair<std::string_view, int64_t>, 4> kUnits = {
      {{"k", int64_t{1} << 10}, {"m", kMiB}, {"g", kGiB}, {"t", kTiB}}};
  std::string u = ascii_lower(unit);
  for (const auto& [name, bytes] : kUnits) {
    if (rate && name == "t") continue;
    if (u == name) return bytes;
    if (!rate && (u == std::string(name) + "b" || u == std::string(name) + "ib")) return bytes;
  }
  return 0;
}

}  // namespace

std::string size_text(int64_t bytes) {
  static const std::array<std::pair<const char*, int64_t>, 4> kUnits = {
      {{"TiB", kTiB}, {"GiB", kGiB}, {"MiB", kMiB}, {"KiB", int64_t{1} << 10}}};
  for (const auto& [name, unit] : kUnits)
    if (bytes != 0 && bytes % unit == 0) return std::to_string(bytes / unit) + " " + name;
  return std::to_string(bytes) + " bytes";
}

int64_t parse_count(std::string_view option, std::string_view text, int64_t min, int64_t max) {
  const std::string range =
      "is not a whole number from " + std::to_string(min) + " to " + std::to_string(max);
  bool negative = !text.empty() && text.front() == '-' && min < 0;
  Digits d = leading_digits(negative ? text.substr(1) : text);
  if (!d.ok || !d.rest.empty() || (negative && d.value == 0)) refuse(option, text, range);
  if (d.too_big || d.value > static_cast<uint64_t>(INT64_MAX)) refuse(option, text, range);
  int64_t n = negative ? -static_cast<int64_t>(d.value) : static_cast<int64_t>(d.value);
  if (n < min || n > max) refuse(option, text, range);
  return n;
}

std::string size_error(std::string_view text, int64_t bare_unit, int64_t granule, int64_t max,
                       int64_t* bytes) {
  Digits d = leading_digits(text);
  int64_t unit = !d.ok ? 0 : d.rest.empty() ? bare_unit : unit_bytes(d.rest, false);
  if (unit == 0)
    return "is not a size such as 512M, 40G or 2GiB (digits, then K, M, G or T; a bare number "
           "is " +
           size_text(bare_unit) + ")";
  if (d.too_big || d.value > static_cast<uint64_t>(max / unit))
    return "is more than the host's maximum of " + size_text(max);
  int64_t n = static_cast<int64_t>(d.value) * unit;
  if (n == 0) return "is zero";
  if (granule > 0 && n % granule != 0) return "is not a whole multiple of " + size_text(granule);
  *bytes = n;
  return "";
}

int64_t parse_size(std::string_view option, std::string_view text, int64_t bare_unit,
                   int64_t granule, int64_t max) {
  int64_t bytes = 0;
  if (std::string why = size_error(text, bare_unit, granule, max, &bytes); !why.empty())
    refuse(option, text, why);
  return bytes;
}

int64_t parse_rate(std::string_view option, std::string_view text) {
  const std::string what =
      "is not a rate in bytes per second such as 500K, 20M or 1G (digits, then K, M or G)";
  Digits d = leading_digits(text);
  if (!d.ok) refuse(option, text, what);
  int64_t unit = d.rest.empty() ? 1 : unit_bytes(d.rest, true);
  if (unit == 0) refuse(option, text, what);
  if (d.too_big || d.value > static_cast<uint64_t>(kTiB / unit))
    refuse(option, text, "is more than 1 TiB per second");
  int64_t rate = static_cast<int64_t>(d.value) * unit;
  if (rate == 0) refuse(option, text, "is zero (leave the option out for no limit)");
  return rate;
}

}  // namespace ceso
