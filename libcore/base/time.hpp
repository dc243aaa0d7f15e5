// Wall-clock time in UTC: the one home of "now", of ISO 8601 text and of
// the calendar fields of an instant. Instants are seconds since the Unix
// epoch (int64_t), as the catalog and the manifests store them.
#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace ceso {

// Seconds since the epoch, now.
int64_t unix_now();

// The calendar fields of `t` in UTC (gmtime_r).
std::tm utc_tm(int64_t t);

// "2026-11-22T03:04:05Z": ISO 8601, UTC, whole seconds (records, messages).
std::string format_utc(int64_t t);

// "20261122T030405Z": the same in ISO 8601's basic form, for names (backup
// ids, cloud-init instance ids) that must not contain ':'.
std::string format_utc_compact(int64_t t);

// "2026-11-22T03:04:05.123Z": UTC with milliseconds (the audit log's "time").
std::string utc_timestamp(std::chrono::system_clock::time_point when);

// The instant of an ISO 8601 / xsd:dateTime text as vSphere and format_utc
// write it: "YYYY-MM-DDTHH:MM:SS", an optional fraction (dropped), then
// "Z", "+HH:MM", "-HH:MM" or nothing (taken as UTC). nullopt for anything
// else, a date that does not exist (2025-02-29) or a field out of range.
std::optional<int64_t> parse_utc_time(std::string_view text);

}  // namespace ceso
