#include "safety/audit_query.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "safety/audit.hpp"
#include "test_support.hpp"

namespace {

using ceso::ordered_json;
using std::chrono::system_clock;

system_clock::time_point at(const char* utc) {
  std::tm tm{};
  strptime(utc, "%Y-%m-%dT%H:%M:%S", &tm);
  return system_clock::from_time_t(timegm(&tm));
}

TEST(AuditTimeBound, DurationsCountBackFromNow) {
  auto now = at("2026-11-22T12:00:00");
  EXPECT_EQ(ceso::parse_time_bound("2h", "--since", now), "2026-11-22T10:00:00.000Z");
  EXPECT_EQ(ceso::parse_time_bound("90min", "--since", now), "2026-11-22T10:30:00.000Z");
  EXPECT_EQ(ceso::parse_time_bound("7d", "--since", now), "2026-11-15T12:00:00.000Z");
  EXPECT_EQ(ceso::parse_time_bound("1mo", "--since", now), "2026-10-22T12:00:00.000Z");
}

TEST(AuditTimeBound, UtcTimesWithAndWithoutZoneAndOffset) {
  auto now = at("2026-11-22T12:00:00");
  EXPECT_EQ(ceso::parse_time_bound("2026-11-20", "--since", now), "2026-11-20T00:00:00.000Z");
  EXPECT_EQ(ceso::parse_time_bound("2026-11-20T03:04", "--since", now), "2026-11-20T03:04:00.000Z");
  EXPECT_EQ(ceso::parse_time_bound("2026-11-20T03:04:05Z", "--since", now),
            "2026-11-20T03:04:05.000Z");
  EXPECT_EQ(ceso::parse_time_bound("2026-11-20 03:04:05.999", "--since", now),
            "2026-11-20T03:04:05.000Z");
  EXPECT_EQ(ceso::parse_time_bound("2026-11-20T04:04:05+01:00", "--since", now),
            "2026-11-20T03:04:05.000Z");
  EXPECT_EQ(ceso::parse_time_bound("2026-11-19T22:04-05:00", "--until", now),
            "2026-11-20T03:04:00.000Z");
}

TEST(AuditTimeBound, BadValuesAreUsageErrorsNamingTheOption) {
  auto now = at("2026-11-22T12:00:00");
  for (const char* bad :
       {"yesterday", "2026-13-01", "2026-11-22T25:00", "5", "10m", "2026-11-22Tx", "2026-11-22 +01",
        "2026-11-22T03:04:05+1", "", "2026-11-22T03:04:05Zjunk", "2026-11-22T03:04:5"}) {
    try {
      ceso::parse_time_bound(bad, "--since", now);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const ceso::Error& e) {
      EXPECT_EQ(e.code(), ceso::Exit::usage) << bad;
      EXPECT_NE(std::string(e.what()).find("--since"), std::string::npos) << e.what();
    }
  }
}

ordered_json rec(const char* time, const char* tool, const char* vm, const char* user,
                 const char* corr, const char* result) {
  ordered_json r = {{"type", "audit"}, {"time", time}, {"user", user}, {"tool", tool}};
  r["vm"] = vm ? ordered_json(vm) : ordered_json();
  r["correlation_id"] = corr;
  r["result"] = result;
  return r;
}

TEST(AuditFilter, EachFieldAndTheirCombination) {
  auto a = rec("2026-11-20T10:00:00.000Z", "ceso-snap", "web01", "ops", "p1", "ok");
  auto b = rec("2026-11-21T10:00:00.000Z", "ceso-power", nullptr, "root", "p2", "refused");
  ceso::AuditFilter f;
  EXPECT_TRUE(f.matches(a) && f.matches(b));
  f.tool = "ceso-s*";
  EXPECT_TRUE(f.matches(a));
  EXPECT_FALSE(f.matches(b));
  f = {};
  f.vm = "web*";
  EXPECT_TRUE(f.matches(a));
  EXPECT_FALSE(f.matches(b));  // a host operation has no VM
  f = {};
  f.actor = "root";
  EXPECT_FALSE(f.matches(a));
  EXPECT_TRUE(f.matches(b));
  f = {};
  f.correlation = "p";  // exact, not a prefix or glob
  EXPECT_FALSE(f.matches(a));
  f.correlation = "p1";
  EXPECT_TRUE(f.matches(a));
  f = {};
  f.failed = true;
  EXPECT_FALSE(f.matches(a));
  EXPECT_TRUE(f.matches(b));
  f = {};
  f.since = "2026-11-21T00:00:00.000Z";
  EXPECT_FALSE(f.matches(a));
  EXPECT_TRUE(f.matches(b));
  f.until = "2026-11-21T10:00:00.000Z";  // exclusive
  EXPECT_FALSE(f.matches(b));
  f = {};
  f.since = "2026-01-01T00:00:00.000Z";
  EXPECT_FALSE(f.matches(ordered_json{{"type", "audit"}}));  // no time: not in any range
}

TEST(AuditCsv, QuotingPerRfc4180) {
  EXPECT_EQ(ceso::csv_cell("plain"), "plain");
  EXPECT_EQ(ceso::csv_cell("a,b"), "\"a,b\"");
  EXPECT_EQ(ceso::csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(ceso::csv_cell("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(ceso::csv_cell("cr\rhere"), "\"cr\rhere\"");
  EXPECT_EQ(ceso::csv_cell(""), "");
}

TEST(AuditCsv, FormulaLikeCellsAreDefused) {
  for (const char* f : {"=1+1", "+cmd", "-2+3", "@SUM(A1)", "\tx"})
    EXPECT_EQ(ceso::csv_cell(f), "'" + std::string(f)) << f;
  EXPECT_EQ(ceso::csv_cell("=a,b"), "\"'=a,b\"");
  EXPECT_EQ(ceso::csv_cell("\rx"), "\"'\rx\"");
  EXPECT_EQ(ceso::csv_cell("a=b"), "a=b");  // only a leading sign counts
}

TEST(AuditCsv, FixedColumnsNullsEmptyParamsAsJson) {
  std::string header = ceso::audit_csv_header();
  EXPECT_EQ(header,
            "line,time,user,tool,endpoint,vm,vm_id,operation,result,error,duration_ms,"
            "correlation_id,pid,params,tail_unverified,prev\r\n");
  ordered_json r = {{"type", "audit"},
                    {"time", "t"},
                    {"user", "u"},
                    {"tool", "ceso-snap"},
                    {"endpoint", nullptr},
                    {"vm", "w,1"},
                    {"params", {{"a", 1}}},
                    {"result", "ok"},
                    {"duration_ms", 5},
                    {"correlation_id", "c"},
                    {"pid", 7},
                    {"prev", "00"}};
  EXPECT_EQ(ceso::audit_csv_row(r, 3),
            "3,t,u,ceso-snap,,\"w,1\",,,ok,,5,c,7,\"{\"\"a\"\":1}\",,00\r\n");
  // Not 16 cells plus quoted commas: a cell count check.
  EXPECT_EQ(std::count(header.begin(), header.end(), ','), 15);
}

struct TempDir : ceso::test::TempDir {
  TempDir() : ceso::test::TempDir("ceso-audit-query-test") {}
};

TEST(AuditReader, ReadsCompleteLinesAndWaitsForAPartialOne) {
  TempDir dir;
  std::string path = dir / "log";
  std::ofstream(path) << "{\"a\":1}\n{\"b\":";
  ceso::AuditReader reader(path);
  std::vector<std::string> seen;
  auto collect = [&](const ceso::AuditLine& l) {
    seen.push_back(std::to_string(l.number) + ":" + std::string(l.text));
  };
  EXPECT_EQ(reader.read(collect), 1u);
  std::ofstream(path, std::ios::app) << "2}\n";
  EXPECT_EQ(reader.read(collect), 1u);
  EXPECT_EQ(reader.read(collect), 0u);
  EXPECT_EQ(seen, (std::vector<std::string>{"1:{\"a\":1}", "2:{\"b\":2}"}));
  EXPECT_FALSE(reader.replaced());
}

TEST(AuditReader, HugeLineIsSkippedUnreadAndLaterLinesStillCome) {
  TempDir dir;
  std::string path = dir / "log";
  {
    std::ofstream out(path);
    out << "{}\n" << std::string((16u << 20) + 100, 'x') << "\n{\"c\":3}\n";
  }
  ceso::AuditReader reader(path);
  std::vector<std::string> seen;
  reader.read([&](const ceso::AuditLine& l) {
    seen.push_back(std::to_string(l.number) + (l.too_long ? ":long" : ":" + std::string(l.text)));
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"1:{}", "2:long", "3:{\"c\":3}"}));
}

TEST(AuditReader, ReplacedAndTruncatedLogsAreNoticed) {
  TempDir dir;
  std::string path = dir / "log";
  std::ofstream(path) << "{}\n{}\n";
  ceso::AuditReader reader(path);
  reader.read([](const ceso::AuditLine&) {});
  std::ofstream(path, std::ios::trunc) << "{}\n";  // same file, shorter
  EXPECT_TRUE(reader.replaced());
  reader.reopen();
  EXPECT_FALSE(reader.replaced());
  std::filesystem::rename(path, path + ".1");
  EXPECT_TRUE(reader.replaced());
  EXPECT_THROW(reader.reopen(), ceso::Error);  // gone: the old file stays readable
  std::ofstream(path + ".1", std::ios::app) << "{\"late\":1}\n";
  size_t n = 0;
  reader.read([&](const ceso::AuditLine&) { ++n; });
  EXPECT_EQ(n, 2u);
}

}  // namespace
