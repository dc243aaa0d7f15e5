// The one duration parser of every tool (--older-than, --keep-within).
#include "base/duration.hpp"

#include <gtest/gtest.h>

#include <ctime>

#include "base/error.hpp"

namespace {

using ceso::Duration;
using ceso::parse_duration;

int64_t at(const char* text) {  // "2024-03-05 14:30:00" UTC
  std::tm tm{};
  strptime(text, "%Y-%m-%d %H:%M:%S", &tm);
  return static_cast<int64_t>(timegm(&tm));
}

// The message of the usage error parse_duration throws for `text`.
std::string refusal(const char* text) {
  try {
    parse_duration(text, "--opt");
  } catch (const ceso::Error& e) {
    EXPECT_EQ(e.code(), ceso::Exit::usage) << text;
    return e.what();
  }
  ADD_FAILURE() << "accepted " << text;
  return "";
}

TEST(DurationTest, EveryUnit) {
  EXPECT_EQ(parse_duration("90s", "x"), (Duration{.seconds = 90}));
  EXPECT_EQ(parse_duration("90min", "x"), (Duration{.minutes = 90}));
  EXPECT_EQ(parse_duration("12h", "x"), (Duration{.hours = 12}));
  EXPECT_EQ(parse_duration("7d", "x"), (Duration{.days = 7}));
  EXPECT_EQ(parse_duration("2w", "x"), (Duration{.days = 14}));
  EXPECT_EQ(parse_duration("6mo", "x"), (Duration{.months = 6}));
  EXPECT_EQ(parse_duration("3y", "x"), (Duration{.years = 3}));
  EXPECT_EQ(parse_duration("0s", "x"), Duration{});
}

TEST(DurationTest, Combinations) {
  EXPECT_EQ(parse_duration("1y6mo", "x"), (Duration{.years = 1, .months = 6}));
  EXPECT_EQ(parse_duration("1y2mo3d4h5min6s", "x"), (Duration{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(parse_duration("1w2d", "x"), (Duration{.days = 9}));
  EXPECT_EQ(parse_duration("30min1h", "x"), (Duration{.hours = 1, .minutes = 30}));
  EXPECT_EQ(parse_duration("1d1d", "x"), (Duration{.days = 2}));  // summed, as restic does
}

TEST(DurationTest, CanonicalSpelling) {
  EXPECT_EQ(ceso::to_string(parse_duration("1y6mo", "x")), "1y6mo");
  EXPECT_EQ(ceso::to_string(parse_duration("2w", "x")), "14d");
  EXPECT_EQ(ceso::to_string(parse_duration("90min", "x")), "90min");
  EXPECT_EQ(ceso::to_string(parse_duration("6s1y", "x")), "1y6s");
  EXPECT_EQ(ceso::to_string(Duration{}), "0s");
  // What to_string prints parses back to the same duration.
  for (const char* s : {"1y2mo3d4h5min6s", "7d", "36h", "6mo"})
    EXPECT_EQ(parse_duration(ceso::to_string(parse_duration(s, "x")), "x"), parse_duration(s, "x"));
}

TEST(DurationTest, BareMIsRefusedNamingBothSpellings) {
  for (const char* text : {"6m", "1y6m", "6m1d", "0m"}) {
    std::string e = refusal(text);
    EXPECT_NE(e.find("'m' is ambiguous"), std::string::npos) << e;
    EXPECT_NE(e.find("min for minutes"), std::string::npos) << e;
    EXPECT_NE(e.find("mo for months"), std::string::npos) << e;
  }
  EXPECT_EQ(refusal("6m"),
            "--opt: bad duration '6m': 'm' is ambiguous: write 6min for minutes or 6mo for months "
            "(units: s, min, h, d, w, mo, y; e.g. 90min, 12h, 7d, 1y6mo)");
}

TEST(DurationTest, Errors) {
  struct Case {
    const char* text;
    const char* reason;
  };
  for (const auto& [text, reason] : std::initializer_list<Case>{
           {"", "empty"},
           {"90", "the number 90 has no unit"},
           {"1d5", "the number 5 has no unit"},
           {"-1d", "negative"},
           {"1d-1h", "negative"},
           {"1d+1h", "expected a number at '+1h'"},
           {"+1d", "expected a number at '+1d'"},
           {"d", "expected a number at 'd'"},
           {"1.5h", "the number 1 has no unit"},
           {"5x", "unknown unit 'x'"},
           {"5M", "unknown unit 'M'"},
           {"5mins", "unknown unit 'mins'"},
           {"5months", "unknown unit 'months'"},
           {"7 d", "contains whitespace"},
           {" 7d", "contains whitespace"},
           {"7d\n", "contains whitespace"},
           {"101y", "longer than 100 years"},
           {"1201mo", "longer than 100 years"},
           {"100y1d", "longer than 100 years"},
           {"99999999999999999999s", "longer than 100 years"},
           {"9223372036854775807w", "longer than 100 years"},
           {"100y", nullptr},
           {"36500d", nullptr},
       }) {
    if (!reason) {
      EXPECT_NO_THROW(parse_duration(text, "x")) << text;
      continue;
    }
    std::string e = refusal(text);
    EXPECT_EQ(e.rfind(std::string("--opt: bad duration ") + ceso::quote(text) + ": " + reason, 0),
              0u)
        << text << " → " << e;
  }
}

TEST(DurationTest, SubtractUsesCalendarMonthsAndYears) {
  auto minus = [](const char* t, const char* d) {
    return ceso::subtract(at(t), parse_duration(d, "x"));
  };
  // Like Go's AddDate: 2024-03-31 minus one month is "2024-02-31", i.e. 2024-03-02.
  EXPECT_EQ(minus("2024-03-31 00:00:00", "1mo"), at("2024-03-02 00:00:00"));
  EXPECT_EQ(minus("2024-02-29 12:00:00", "1y"), at("2023-03-01 12:00:00"));
  EXPECT_EQ(minus("2024-07-15 00:00:00", "1y6mo"), at("2023-01-15 00:00:00"));
  EXPECT_EQ(minus("2024-01-10 00:00:00", "2w"), at("2023-12-27 00:00:00"));
  EXPECT_EQ(minus("2024-01-01 00:00:00", "90min"), at("2023-12-31 22:30:00"));
  EXPECT_EQ(minus("2024-01-01 00:00:00", "1d1h1min1s"), at("2023-12-30 22:58:59"));
  EXPECT_EQ(minus("2024-01-01 00:00:00", "0s"), at("2024-01-01 00:00:00"));
}

}  // namespace
