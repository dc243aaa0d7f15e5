// Retention with restic `forget` semantics, on a fixed clock (no "now").
#include "backup/retention.hpp"

#include <gtest/gtest.h>

#include <ctime>
#include <map>
#include <set>

#include "base/error.hpp"

namespace {

int64_t at(const char* text) {  // "2024-03-05 14:30" UTC
  std::tm tm{};
  strptime(text, "%Y-%m-%d %H:%M", &tm);
  return static_cast<int64_t>(timegm(&tm));
}

std::string day_of(int64_t t) {
  time_t tt = static_cast<time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

std::vector<ceso::RetentionItem> items(std::initializer_list<const char*> times) {
  std::vector<ceso::RetentionItem> out;
  for (const char* t : times) out.push_back({t, at(t)});
  return out;
}

std::vector<std::string> kept(const std::vector<ceso::RetentionDecision>& ds) {
  std::vector<std::string> out;
  for (const auto& d : ds)
    if (d.keep) out.push_back(d.id);
  return out;
}

std::map<std::string, std::vector<std::string>> reasons(
    const std::vector<ceso::RetentionDecision>& ds) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& d : ds) out[d.id] = d.reasons;
  return out;
}

TEST(RetentionTest, EmptyPolicyKeepsEverything) {
  auto ds = ceso::apply_retention(items({"2024-01-01 00:00", "2024-01-02 00:00"}), {});
  ASSERT_EQ(ds.size(), 2u);
  for (const auto& d : ds) {
    EXPECT_TRUE(d.keep);
    EXPECT_EQ(d.reasons, std::vector<std::string>{"no policy"});
  }
}

TEST(RetentionTest, NewestFirstAndKeepLast) {
  ceso::RetentionPolicy p;
  p.last = 2;
  auto ds = ceso::apply_retention(
      items({"2024-01-01 00:00", "2024-01-03 00:00", "2024-01-02 00:00", "2024-01-04 00:00"}), p);
  ASSERT_EQ(ds.size(), 4u);
  EXPECT_EQ(ds.front().id, "2024-01-04 00:00");  // newest first
  EXPECT_EQ(kept(ds), (std::vector<std::string>{"2024-01-04 00:00", "2024-01-03 00:00"}));
  EXPECT_EQ(reasons(ds)["2024-01-04 00:00"], std::vector<std::string>{"last"});
  EXPECT_TRUE(reasons(ds)["2024-01-01 00:00"].empty());
}

TEST(RetentionTest, DailyKeepsTheNewestOfEachDayThatHasBackups) {
  ceso::RetentionPolicy p;
  p.daily = 2;
  // Days without backups do not use up a slot.
  auto ds = ceso::apply_retention(
      items({"2024-01-01 08:00", "2024-01-05 09:00", "2024-01-05 18:00", "2024-01-09 07:00"}), p);
  EXPECT_EQ(kept(ds), (std::vector<std::string>{"2024-01-09 07:00", "2024-01-05 18:00"}));
}

TEST(RetentionTest, RulesCountIndependently) {
  ceso::RetentionPolicy p;
  p.last = 1;
  p.daily = 2;
  auto ds = ceso::apply_retention(
      items({"2024-01-02 10:00", "2024-01-02 09:00", "2024-01-01 10:00", "2023-12-31 10:00"}), p);
  auto r = reasons(ds);
  EXPECT_EQ(r["2024-01-02 10:00"], (std::vector<std::string>{"last", "daily"}));
  EXPECT_TRUE(r["2024-01-02 09:00"].empty());
  EXPECT_EQ(r["2024-01-01 10:00"], std::vector<std::string>{"daily"});
  EXPECT_TRUE(r["2023-12-31 10:00"].empty());
}

TEST(RetentionTest, WeeksAreIsoWeeksStartingMonday) {
  ceso::RetentionPolicy p;
  p.weekly = 2;
  // 2021-01-03 is a Sunday in ISO week 2020-W53; 2021-01-04 a Monday of 2021-W01.
  auto ds =
      ceso::apply_retention(items({"2021-01-02 12:00", "2021-01-03 12:00", "2021-01-04 12:00"}), p);
  EXPECT_EQ(kept(ds), (std::vector<std::string>{"2021-01-04 12:00", "2021-01-03 12:00"}));
}

// restic docs: "If there are not enough snapshots to keep one for each
// duration related --keep-* option, the oldest one is kept additionally."
TEST(RetentionTest, OldestStaysWhenARuleHasSlotsLeft) {
  ceso::RetentionPolicy p;
  p.monthly = 3;
  auto ds = ceso::apply_retention(items({"2024-02-20 00:00", "2024-02-10 00:00", "2024-01-25 00:00",
                                         "2024-01-15 00:00", "2024-01-05 00:00"}),
                                  p);
  EXPECT_EQ(kept(ds),
            (std::vector<std::string>{"2024-02-20 00:00", "2024-01-25 00:00", "2024-01-05 00:00"}));
  EXPECT_EQ(reasons(ds)["2024-01-05 00:00"], std::vector<std::string>{"monthly"});
}

TEST(RetentionTest, KeepWithinIsRelativeToTheNewestBackupNotTheClock) {
  ceso::RetentionPolicy p;
  p.within = ceso::RetentionDuration{0, 0, 2, 0};
  auto ds = ceso::apply_retention(
      items({"2020-05-10 12:00", "2020-05-09 00:00", "2020-05-08 12:00", "2020-05-08 11:00"}), p);
  EXPECT_EQ(kept(ds), (std::vector<std::string>{"2020-05-10 12:00", "2020-05-09 00:00"}));
  EXPECT_EQ(reasons(ds)["2020-05-09 00:00"], std::vector<std::string>{"within 2d"});
}

TEST(RetentionTest, KeepWithinUsesCalendarMonths) {
  ceso::RetentionPolicy p;
  p.within = ceso::parse_duration("1mo", "--keep-within");
  auto ds =
      ceso::apply_retention(items({"2024-03-31 00:00", "2024-03-01 00:00", "2024-02-29 12:00"}), p);
  // 2024-03-31 minus one month is 2024-03-02 (Feb 31 normalised), like Go's AddDate.
  EXPECT_EQ(kept(ds), std::vector<std::string>{"2024-03-31 00:00"});
}

// restic docs: daily backups for 100 years with --keep-daily 7
// --keep-weekly 5 --keep-monthly 12 --keep-yearly 75 keep "the most recent 7
// daily snapshots, then 4 (remember, 7 dailies already include a week!)
// last-day-of-the-weeks and 11 or 12 last-day-of-the-months … and finally 75
// last-day-of-the-year snapshots. All other snapshots are removed."
TEST(RetentionTest, ResticHundredYearsOfDailyBackups) {
  std::vector<ceso::RetentionItem> all;
  int64_t first = at("1924-01-01 03:00"), last = at("2023-12-31 03:00");
  for (int64_t t = first; t <= last; t += 86400) all.push_back({day_of(t), t});
  ceso::RetentionPolicy p;
  p.daily = 7;
  p.weekly = 5;
  p.monthly = 12;
  p.yearly = 75;
  auto ds = ceso::apply_retention(all, p);
  std::map<std::string, int> per_rule;
  std::set<std::string> kept_ids;
  for (const auto& d : ds) {
    for (const auto& r : d.reasons) ++per_rule[r];
    if (d.keep) kept_ids.insert(d.id);
  }
  EXPECT_EQ(per_rule["daily"], 7);
  EXPECT_EQ(per_rule["weekly"], 5);
  EXPECT_EQ(per_rule["monthly"], 12);
  EXPECT_EQ(per_rule["yearly"], 75);
  for (const char* day : {"2023-12-31", "2023-12-25", "2023-12-24", "2023-12-17", "2023-12-10",
                          "2023-12-03", "2023-11-30", "2023-01-31", "2022-12-31", "1949-12-31"})
    EXPECT_TRUE(kept_ids.count(day)) << day;
  // 7 + 4 weekly + 11 monthly (Dec 2023 already kept) + 74 yearly (2023 kept).
  EXPECT_EQ(kept_ids.size(), 7u + 4 + 11 + 74);
  EXPECT_FALSE(kept_ids.count("1948-12-31"));
  EXPECT_FALSE(kept_ids.count("1924-01-01"));  // no slot left at the oldest
}

TEST(RetentionTest, UnlimitedRuleKeepsEveryPeriod) {
  ceso::RetentionPolicy p;
  p.yearly = -1;
  auto ds = ceso::apply_retention(
      items({"2024-06-01 00:00", "2024-01-01 00:00", "2023-06-01 00:00", "2022-06-01 00:00"}), p);
  EXPECT_EQ(kept(ds).size(), 3u);
}

TEST(RetentionTest, KeepWithinCountsFixedUnitsAfterCalendarOnes) {
  ceso::RetentionPolicy p;
  p.within = ceso::parse_duration("1mo90min", "--keep-within");
  // 2024-03-31 12:00 minus 1mo is 2024-03-02 12:00, minus 90min is 10:30.
  auto ds = ceso::apply_retention(
      items({"2024-03-31 12:00", "2024-03-02 10:31", "2024-03-02 10:30", "2024-03-02 10:00"}), p);
  EXPECT_EQ(kept(ds), (std::vector<std::string>{"2024-03-31 12:00", "2024-03-02 10:31"}));
  EXPECT_EQ(reasons(ds)["2024-03-02 10:31"], std::vector<std::string>{"within 1mo90min"});
}

}  // namespace
