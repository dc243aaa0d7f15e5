// UTC time helpers: ISO 8601 text out (format_utc, the compact form, the
// audit log's milliseconds) and back in (parse_utc_time), calendar fields.
#include "base/time.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <ctime>

namespace ceso {
namespace {

TEST(FormatUtc, AroundTheEpoch) {
  EXPECT_EQ(format_utc(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_utc(-1), "1969-12-31T23:59:59Z");
  EXPECT_EQ(format_utc(1), "1970-01-01T00:00:01Z");
  EXPECT_EQ(format_utc(-2208988800), "1900-01-01T00:00:00Z");
}

TEST(FormatUtc, LeapDaysAndLargeValues) {
  EXPECT_EQ(format_utc(1709208000), "2024-02-29T12:00:00Z");
  EXPECT_EQ(format_utc(951782400), "2000-02-29T00:00:00Z");       // 2000: a leap year
  EXPECT_EQ(format_utc(4107542400 - 1), "2100-02-28T23:59:59Z");  // 2100: not one
  EXPECT_EQ(format_utc(2147483648), "2038-01-19T03:14:08Z");      // past 32-bit time_t
  EXPECT_EQ(format_utc(253402300799), "9999-12-31T23:59:59Z");
}

TEST(FormatUtc, CompactFormForNames) {
  EXPECT_EQ(format_utc_compact(0), "19700101T000000Z");
  EXPECT_EQ(format_utc_compact(1795316645), "20261122T030405Z");
  EXPECT_EQ(format_utc_compact(-1), "19691231T235959Z");
}

TEST(UtcTimestamp, MillisecondsAndBeforeTheEpoch) {
  using std::chrono::milliseconds;
  using std::chrono::system_clock;
  EXPECT_EQ(utc_timestamp(system_clock::time_point(milliseconds(1234))),
            "1970-01-01T00:00:01.234Z");
  EXPECT_EQ(utc_timestamp(system_clock::time_point(milliseconds(1795316645007))),
            "2026-11-22T03:04:05.007Z");
  EXPECT_EQ(utc_timestamp(system_clock::time_point(milliseconds(-1))), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(utc_timestamp(system_clock::time_point(milliseconds(1709208000000 + 999))),
            "2024-02-29T12:00:00.999Z");
}

TEST(UtcTm, CalendarFieldsOfALeapDay) {
  std::tm tm = utc_tm(1709208000);
  EXPECT_EQ(tm.tm_year, 124);
  EXPECT_EQ(tm.tm_mon, 1);
  EXPECT_EQ(tm.tm_mday, 29);
  EXPECT_EQ(tm.tm_hour, 12);
  EXPECT_EQ(tm.tm_wday, 4);  // a Thursday
  EXPECT_EQ(utc_tm(-1).tm_year, 69);
}

TEST(UnixNow, IsTheClockNow) {
  int64_t before = static_cast<int64_t>(std::time(nullptr));
  int64_t now = unix_now();
  int64_t after = static_cast<int64_t>(std::time(nullptr));
  EXPECT_LE(before, now);
  EXPECT_LE(now, after);
}

TEST(ParseUtcTime, RoundTripsFormatUtc) {
  for (int64_t t :
       {int64_t{0}, int64_t{-1}, int64_t{1}, int64_t{59}, int64_t{86399}, int64_t{-2208988800},
        int64_t{951782400}, int64_t{1709208000}, int64_t{4107542400}, int64_t{2147483648},
        int64_t{253402300799}, int64_t{1795316645}}) {
    SCOPED_TRACE(t);
    auto back = parse_utc_time(format_utc(t));
    ASSERT_TRUE(back.has_value()) << format_utc(t);
    EXPECT_EQ(*back, t);
  }
}

TEST(ParseUtcTime, FractionsZonesAndNoZone) {
  // As vSphere writes createTime: fraction optional, Z or an offset, or no zone (UTC).
  EXPECT_EQ(parse_utc_time("1970-01-01T00:01:00Z"), 60);
  EXPECT_EQ(parse_utc_time("1970-01-01T00:01:00.123456789Z"), 60);
  EXPECT_EQ(parse_utc_time("1970-01-01T00:01:00.5"), 60);
  EXPECT_EQ(parse_utc_time("1970-01-01T01:01:00+01:00"), 60);
  EXPECT_EQ(parse_utc_time("1970-01-01T00:00:00-00:01"), 60);
  EXPECT_EQ(parse_utc_time("1970-01-01T00:01:00"), 60);
  EXPECT_EQ(parse_utc_time("2024-02-29T23:30:00-01:00"), 1709253000);  // the next day in UTC
  EXPECT_EQ(parse_utc_time("1969-12-31T23:59:59.999Z"), -1);           // fraction dropped
}

TEST(ParseUtcTime, LeapDays) {
  EXPECT_EQ(parse_utc_time("2024-02-29T12:00:00Z"), 1709208000);
  EXPECT_EQ(parse_utc_time("2000-02-29T00:00:00Z"), 951782400);
  EXPECT_FALSE(parse_utc_time("2025-02-29T00:00:00Z"));  // 2025: no leap day
  EXPECT_FALSE(parse_utc_time("2100-02-29T00:00:00Z"));  // 2100: no leap day
  EXPECT_FALSE(parse_utc_time("2024-02-30T00:00:00Z"));
}

TEST(ParseUtcTime, RefusesBadStrings) {
  for (const char* bad : {"",
                          "yesterday",
                          "1970-01-01T00:01:00 junk",
                          "1970-01-01T00:01:00Zjunk",
                          "1970-01-01 00:01:00Z",
                          "1970-1-01T00:01:00Z",
                          " 1970-01-01T00:01:00Z",
                          "1970-01-01T00:01Z",
                          "1970-01-01",
                          "1970-01-01T00:01:00.Z",
                          "1970-01-01T00:01:00+01",
                          "1970-01-01T00:01:00+0100",
                          "1970-01-01T00:01:00+24:00",
                          "1970-01-01T00:01:00+01:60",
                          "1970-01-01T00:01:00z",
                          "2024-13-01T00:00:00Z",
                          "2024-00-10T00:00:00Z",
                          "2024-04-31T00:00:00Z",
                          "2024-04-00T00:00:00Z",
                          "2024-01-01T24:00:00Z",
                          "2024-01-01T00:60:00Z",
                          "2024-01-01T00:00:61Z",
                          "+2024-01-01T00:00:00Z",
                          "2024-01-01T00:00:0xZ",
                          "２０２４-01-01T00:00:00Z"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(parse_utc_time(bad).has_value());
  }
}

}  // namespace
}  // namespace ceso
