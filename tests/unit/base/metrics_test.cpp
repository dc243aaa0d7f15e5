// Prometheus metrics: recording, the exposition text, accumulation across
// runs in one file, well-formed histograms, bounded labels.
#include "base/metrics.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "base/error.hpp"
#include "base/log.hpp"
#include "test_support.hpp"

namespace ceso::metrics {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spit(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

using Labels = std::vector<std::pair<std::string, std::string>>;

Labels without_le(const Labels& labels) {
  Labels out;
  for (const auto& l : labels)
    if (l.first != "le") out.push_back(l);
  return out;
}

// The structure of every histogram in `text`, checked independently of the
// writer: per series, buckets in increasing le ending with +Inf, cumulative
// counts, _sum and _count present, _count equal to the +Inf bucket, and the
// TYPE line before the samples. Returns the problems found.
std::vector<std::string> histogram_problems(const std::string& text) {
  std::vector<std::string> problems;
  std::set<std::string> histograms;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("# TYPE ", 0) == 0 && line.size() > 10 &&
        line.substr(line.size() - 10) == " histogram")
      histograms.insert(line.substr(7, line.size() - 17));
  Samples s = parse(text);
  for (const auto& h : histograms) {
    std::map<Labels, std::vector<std::pair<double, double>>> buckets;  // in file order
    std::vector<std::pair<Labels, std::vector<std::pair<double, double>>>> order;
    // File order matters: re-read the lines.
    std::istringstream again(text);
    while (std::getline(again, line)) {
      if (line.rfind(h + "_bucket", 0) != 0) continue;
      Samples one = parse(line);
      const auto& [key, value] = *one.begin();
      double le = NAN;
      for (const auto& l : key.labels)
        if (l.first == "le") le = l.second == "+Inf" ? INFINITY : std::stod(l.second);
      if (std::isnan(le)) problems.push_back(h + ": bucket without le");
      buckets[without_le(key.labels)].emplace_back(le, value);
    }
    for (const auto& [labels, list] : buckets) {
      if (list.empty() || !std::isinf(list.back().first))
        problems.push_back(h + ": no +Inf bucket last");
      for (size_t i = 1; i < list.size(); ++i) {
        if (!(list[i].first > list[i - 1].first)) problems.push_back(h + ": le not increasing");
        if (list[i].second < list[i - 1].second) problems.push_back(h + ": not cumulative");
      }
      auto count = s.find({h + "_count", labels});
      auto sum = s.find({h + "_sum", labels});
      if (count == s.end()) problems.push_back(h + ": no _count");
      if (sum == s.end()) problems.push_back(h + ": no _sum");
      if (count != s.end() && !list.empty() && count->second != list.back().second)
        problems.push_back(h + ": _count differs from the +Inf bucket");
    }
  }
  return problems;
}

// (Labels in any order: samples keep theirs sorted by name.)
double value(const Samples& s, const std::string& name, Labels labels) {
  std::sort(labels.begin(), labels.end());
  auto it = s.find({name, labels});
  return it == s.end() ? NAN : it->second;
}

struct MetricsTest : ::testing::Test {
  void SetUp() override {
    set_tool_name("ceso-test");
    reset();
  }
  void TearDown() override { reset(); }
};

TEST_F(MetricsTest, HistogramIsCumulativeWithInfSumAndCount) {
  record_change("CreateSnapshot_Task", "ok", "human", 0.3);
  record_change("CreateSnapshot_Task", "ok", "human", 7);
  record_change("CreateSnapshot_Task", "error", "human", 100000);  // beyond the last bucket
  Samples s = snapshot();
  Labels l = {{"tool", "ceso-test"}, {"operation", "CreateSnapshot_Task"}};
  auto bucket = [&](const std::string& le) {
    Labels b = l;
    b.emplace_back("le", le);
    return value(s, "ceso_operation_duration_seconds_bucket", b);
  };
  EXPECT_EQ(bucket("0.25"), 0);
  EXPECT_EQ(bucket("0.5"), 1);
  EXPECT_EQ(bucket("5"), 1);
  EXPECT_EQ(bucket("10"), 2);
  EXPECT_EQ(bucket("3600"), 2);
  EXPECT_EQ(bucket("+Inf"), 3);
  EXPECT_EQ(value(s, "ceso_operation_duration_seconds_count", l), 3);
  EXPECT_DOUBLE_EQ(value(s, "ceso_operation_duration_seconds_sum", l), 100007.3);
  std::string text = render(s);
  EXPECT_EQ(histogram_problems(text), std::vector<std::string>{}) << text;
  // Buckets in numeric order of le, not text order ("10" before "2.5").
  EXPECT_LT(text.find("le=\"2.5\""), text.find("le=\"10\""));
  EXPECT_LT(text.find("le=\"3600\""), text.find("le=\"+Inf\""));
}

TEST_F(MetricsTest, TheCheckerCatchesBrokenHistograms) {
  const std::string head = "# TYPE h histogram\n";
  EXPECT_FALSE(histogram_problems(head + "h_bucket{le=\"1\"} 2\nh_sum 1\nh_count 2\n").empty());
  EXPECT_FALSE(histogram_problems(head + "h_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
                                         "h_sum 1\nh_count 1\n")
                   .empty());
  EXPECT_FALSE(histogram_problems(head + "h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n").empty());
  EXPECT_FALSE(histogram_problems(head + "h_bucket{le=\"+Inf\"} 2\nh_count 2\n").empty());
  EXPECT_TRUE(histogram_problems(head + "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
                                        "h_sum 1\nh_count 2\n")
                  .empty());
}

TEST_F(MetricsTest, RenderHasHelpTypeAndNoTimestamps) {
  record_soap_call("RetrievePropertiesEx", 500, 2000);
  record_run("", "ok", 0.01);
  std::string text = render(snapshot());
  EXPECT_NE(text.find("# HELP ceso_soap_round_trips_total "), std::string::npos);
  EXPECT_NE(text.find("# TYPE ceso_soap_round_trips_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("ceso_soap_round_trips_total{method=\"RetrievePropertiesEx\",tool="
                      "\"ceso-test\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("ceso_soap_bytes_total{direction=\"received\",tool=\"ceso-test\"} 2000\n"),
            std::string::npos);
  // A tool without verbs has no verb label (an empty label is no label).
  EXPECT_NE(text.find("ceso_runs_total{result=\"ok\",tool=\"ceso-test\"} 1\n"), std::string::npos);
  // Every sample line is "series value": two fields, never a timestamp.
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line[0] == '#') continue;
    std::string series = line.substr(0, line.rfind(' '));
    EXPECT_EQ(series.find(' '), std::string::npos) << line;
  }
  // Families appear once each, in name order.
  std::vector<std::string> types;
  std::istringstream again(text);
  while (std::getline(again, line))
    if (line.rfind("# TYPE ", 0) == 0) types.push_back(line);
  EXPECT_TRUE(std::is_sorted(types.begin(), types.end()));
  EXPECT_EQ(std::set<std::string>(types.begin(), types.end()).size(), types.size());
}

TEST_F(MetricsTest, HostileLabelValuesRoundTrip) {
  const std::string vm = "we\"b\\01\nx{y}=,";
  record_backup(vm, true, 100, 10, 1, 1700000000);
  Samples s = snapshot();
  std::string text = render(merge({}, s, {.vm_labels = true}));
  EXPECT_NE(text.find("vm=\"we\\\"b\\\\01\\nx{y}=,\""), std::string::npos) << text;
  EXPECT_EQ(parse(text), merge({}, s, {.vm_labels = true}));
}

TEST_F(MetricsTest, VmLabelsOnlyWhenOptedIn) {
  record_backup("web01", true, 100, 10, 1, 1700000000);
  record_backup("db01", true, 300, 30, 2, 1700000500);
  Samples s = snapshot();
  Samples off = merge({}, s, {});
  for (const auto& [k, v] : off)
    for (const auto& l : k.labels) EXPECT_NE(l.first, "vm") << k.name;
  EXPECT_EQ(value(off, "ceso_backup_bytes_total", {{"kind", "raw"}}), 400);
  EXPECT_EQ(value(off, "ceso_backup_bytes_total", {{"kind", "stored"}}), 40);
  EXPECT_EQ(value(off, "ceso_backups_total", {{"result", "ok"}}), 2);
  // Without names: the latest success of any VM.
  EXPECT_EQ(value(off, "ceso_backup_last_success_timestamp_seconds", {}), 1700000500);
  Samples on = merge({}, s, {.vm_labels = true});
  EXPECT_EQ(value(on, "ceso_backup_last_success_timestamp_seconds", {{"vm", "web01"}}), 1700000000);
  EXPECT_EQ(value(on, "ceso_backup_bytes_total", {{"kind", "raw"}, {"vm", "db01"}}), 300);
  // Turning the names off later drops the stored named series.
  std::vector<std::string> dropped;
  Samples later = merge(on, {}, {}, &dropped);
  size_t named = 0;
  for (const auto& [k, v] : on)
    for (const auto& l : k.labels) named += l.first == "vm";
  EXPECT_EQ(named, 8u);  // per VM: bytes raw and stored, backups ok, last success
  EXPECT_EQ(dropped.size(), named);
  EXPECT_EQ(later.size(), on.size() - named);
  for (const auto& [k, v] : later)
    for (const auto& l : k.labels) EXPECT_NE(l.first, "vm") << k.name;
}

TEST_F(MetricsTest, FailedBackupCountsButMovesNoTimestamp) {
  record_backup("web01", false, 0, 0, 3, 0);
  Samples s = merge({}, snapshot(), {});
  EXPECT_EQ(value(s, "ceso_backups_total", {{"result", "error"}}), 1);
  EXPECT_TRUE(std::isnan(value(s, "ceso_backup_last_success_timestamp_seconds", {})));
  EXPECT_EQ(value(s, "ceso_operations_total",
                  {{"tool", "ceso-test"}, {"operation", "backup"}, {"result", "error"}}),
            1);
}

TEST_F(MetricsTest, VerifyCountsAndTimes) {
  record_verify("ok", 2);
  record_verify("failed", 3);
  Samples s = snapshot();
  EXPECT_EQ(value(s, "ceso_backup_verifications_total", {{"result", "failed"}}), 1);
  EXPECT_EQ(value(s, "ceso_operations_total",
                  {{"tool", "ceso-test"}, {"operation", "verify"}, {"result", "ok"}}),
            1);
  EXPECT_EQ(value(s, "ceso_operation_duration_seconds_count",
                  {{"tool", "ceso-test"}, {"operation", "verify"}}),
            2);
  EXPECT_EQ(value(s, "ceso_operation_duration_seconds_sum",
                  {{"tool", "ceso-test"}, {"operation", "verify"}}),
            5);
}

TEST_F(MetricsTest, RefusalsAndPromotionsByActor) {
  record_change("PowerOnVM_Task", "refused", "agent", 0);
  record_refusal("agent");
  record_promotion_used();
  Samples s = snapshot();
  EXPECT_EQ(value(s, "ceso_changes_total",
                  {{"tool", "ceso-test"}, {"actor", "agent"}, {"result", "refused"}}),
            1);
  EXPECT_EQ(value(s, "ceso_policy_refusals_total", {{"tool", "ceso-test"}, {"actor", "agent"}}), 1);
  EXPECT_EQ(value(s, "ceso_promotions_used_total", {{"tool", "ceso-test"}}), 1);
  // A refusal took no time: no duration observed.
  for (const auto& [k, v] : s) EXPECT_EQ(k.name.find("ceso_operation_duration"), std::string::npos);
}

TEST_F(MetricsTest, RunsAccumulateInTheFileAndCountersOnlyGrow) {
  test::TempDir dir("ceso-metrics-test");
  std::string file = dir / "ceso.prom";
  double last = 0;
  for (int i = 0; i < 3; ++i) {
    reset();
    record_soap_call("Login", 100, 200);
    record_backup("web01", true, 1000, 100, 0.5, 1700000000 + i);
    record_run("create", "ok", 0.7);
    write_file(dir / "", snapshot(), {});
    std::string text = slurp(file);
    EXPECT_EQ(histogram_problems(text), std::vector<std::string>{});
    Samples s = parse(text);
    double trips =
        value(s, "ceso_soap_round_trips_total", {{"tool", "ceso-test"}, {"method", "Login"}});
    EXPECT_EQ(trips, i + 1);
    EXPECT_GT(trips, last);
    last = trips;
    EXPECT_EQ(value(s, "ceso_backup_last_success_timestamp_seconds", {}), 1700000000 + i);
    EXPECT_EQ(
        value(s, "ceso_run_duration_seconds_count", {{"tool", "ceso-test"}, {"verb", "create"}}),
        i + 1);
  }
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);  // node_exporter runs as another user
  // Nothing but ceso.prom is a *.prom file there; no temporary file is left.
  for (const auto& e : std::filesystem::directory_iterator(dir / ""))
    if (e.path().filename() != "ceso.prom" && e.path().filename() != ".ceso.prom.lock")
      ADD_FAILURE() << "left behind: " << e.path();
}

TEST_F(MetricsTest, ConcurrentWritersLoseNoCount) {
  test::TempDir dir("ceso-metrics-test");
  const int kWriters = 8, kRuns = 5;
  std::vector<pid_t> pids;
  for (int w = 0; w < kWriters; ++w) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      for (int r = 0; r < kRuns; ++r) {
        reset();
        record_run("", "ok", 0.001 * r);
        try {
          write_file(dir / "", snapshot(), {});
        } catch (...) {
          ::_exit(1);
        }
      }
      ::_exit(0);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  std::string text = slurp(dir / "ceso.prom");
  Samples s = parse(text);
  EXPECT_EQ(value(s, "ceso_runs_total", {{"tool", "ceso-test"}, {"result", "ok"}}),
            kWriters * kRuns);
  EXPECT_EQ(histogram_problems(text), std::vector<std::string>{});
}

TEST_F(MetricsTest, AStuckLockHolderDoesNotHangTheRun) {
  test::TempDir dir("ceso-metrics-test");
  record_run("", "ok", 1);
  write_file(dir / "", snapshot(), {});
  // Another writer holds the lock (its own open file description).
  int fd = ::open((dir / ".ceso.prom.lock").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);
  try {
    write_file(dir / "", snapshot(), {.lock_timeout = std::chrono::milliseconds(50)});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("held by another process for 50 ms"), std::string::npos)
        << e.what();
  }
  ::close(fd);
  // The file is as the first run left it; the next run adds to it.
  write_file(dir / "", snapshot(), {});
  EXPECT_EQ(value(parse(slurp(dir / "ceso.prom")), "ceso_runs_total",
                  {{"tool", "ceso-test"}, {"result", "ok"}}),
            2);
}

TEST_F(MetricsTest, CorruptFileIsMovedAsideNotSilentlyOverwritten) {
  test::TempDir dir("ceso-metrics-test");
  spit(dir / "ceso.prom", "ceso_runs_total{tool=\"x\" 3\n");
  record_run("", "ok", 1);
  std::string warning;
  write_file(dir / "", snapshot(), {}, &warning);
  EXPECT_NE(warning.find("line 1"), std::string::npos) << warning;
  EXPECT_NE(warning.find("ceso.prom.corrupt"), std::string::npos) << warning;
  EXPECT_EQ(slurp(dir / "ceso.prom.corrupt"), "ceso_runs_total{tool=\"x\" 3\n");
  Samples s = parse(slurp(dir / "ceso.prom"));
  EXPECT_EQ(value(s, "ceso_runs_total", {{"tool", "ceso-test"}, {"result", "ok"}}), 1);
}

TEST_F(MetricsTest, BrokenStoredHistogramIsDroppedNotSummed) {
  // A stored series whose buckets are not cumulative (edited by hand, or
  // from other buckets) would poison every later sum: it is left out.
  Samples stored = parse(
      "ceso_run_duration_seconds_bucket{tool=\"a\",le=\"1\"} 5\n"
      "ceso_run_duration_seconds_bucket{tool=\"a\",le=\"+Inf\"} 2\n"
      "ceso_run_duration_seconds_sum{tool=\"a\"} 1\n"
      "ceso_run_duration_seconds_count{tool=\"a\"} 2\n"
      "ceso_runs_total{tool=\"a\",result=\"ok\"} 2\n"
      "some_other_metric 1\n");
  std::vector<std::string> dropped;
  Samples out = merge(stored, {}, {}, &dropped);
  EXPECT_EQ(out.size(), 1u);
  EXPECT_EQ(value(out, "ceso_runs_total", {{"tool", "a"}, {"result", "ok"}}), 2);
  EXPECT_EQ(dropped.size(), 5u);
}

TEST_F(MetricsTest, ParseNamesTheLineAndRefusesTimestamps) {
  try {
    parse("# HELP x y\nceso_runs_total 1\nceso_runs_total{a=\"b\"} 1 1700000000\n");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("line 3"), std::string::npos) << e.what();
    EXPECT_EQ(e.code(), Exit::bad_input);
  }
  EXPECT_THROW(parse("x{a=\"b\",a=\"c\"} 1\n"), Error);
  EXPECT_THROW(parse("x{a=\"b\\q\"} 1\n"), Error);
  EXPECT_THROW(parse("x 1\nx 2\n"), Error);
  // Label order does not make another series.
  EXPECT_THROW(parse("x{a=\"1\",b=\"2\"} 1\nx{b=\"2\",a=\"1\"} 1\n"), Error);
  EXPECT_EQ(parse("x{b=\"2\",a=\"1\"} 1\n"), parse("x{a=\"1\",b=\"2\"} 1\n"));
  EXPECT_THROW(parse("{a=\"b\"} 1\n"), Error);
}

TEST_F(MetricsTest, MissingDirectoryIsAnErrorNamingIt) {
  test::TempDir dir("ceso-metrics-test");
  try {
    write_file(dir / "nope", snapshot(), {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos) << e.what();
  }
  spit(dir / "file", "");
  EXPECT_THROW(write_file(dir / "file", snapshot(), {}), Error);
}

TEST_F(MetricsTest, EveryFamilyFollowsTheNamingRules) {
  for (const auto& f : families()) {
    std::string n(f.name);
    EXPECT_EQ(n.rfind("ceso_", 0), 0u) << n;
    bool total = n.size() > 6 && n.substr(n.size() - 6) == "_total";
    EXPECT_EQ(total, f.type == Type::counter) << n;
    if (f.type == Type::histogram) {
      EXPECT_EQ(n.substr(n.size() - 8), "_seconds") << n;
    }
  }
  EXPECT_TRUE(std::is_sorted(duration_buckets().begin(), duration_buckets().end()));
}

}  // namespace
}  // namespace ceso::metrics
