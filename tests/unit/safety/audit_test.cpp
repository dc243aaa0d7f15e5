#include "safety/audit.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/codec.hpp"
#include "base/error.hpp"
#include "base/xml.hpp"
#include "test_support.hpp"
#include "vm/spec.hpp"

namespace {

namespace fs = std::filesystem;
using ceso::ordered_json;

struct TempDir : ceso::test::TempDir {
  TempDir() : ceso::test::TempDir("ceso-audit-test") {}
};
using ceso::test::ScopedEnv;

std::string sha256_hex(const std::string& data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md.data(), &len, EVP_sha256(), nullptr);
  std::string out;
  char buf[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", md[i]);
    out += buf;
  }
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::istringstream in(read_file(path));
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

void write_lines(const std::string& path, const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  write_file(path, text);
}

ceso::AuditRecord sample(int i) {
  ceso::AuditRecord r;
  r.tool = "ceso-test";
  r.endpoint = "esxi1.lab:443";
  r.vm = "web" + std::to_string(i);
  r.vm_id = "vm-" + std::to_string(i);
  r.operation = "CreateSnapshot_Task";
  r.params = {{"name", "pre-upgrade"}, {"memory", false}};
  r.correlation_id = "test-correlation";
  r.duration_ms = i;
  return r;
}

void append_samples(ceso::AuditLog& log, int n) {
  for (int i = 1; i <= n; ++i) log.append(sample(i));
}

TEST(Audit, FirstLineStartsTheChainAndEachLineHashesThePreviousOne) {
  TempDir dir;
  ceso::AuditLog log(dir / "audit.log");
  append_samples(log, 3);
  auto lines = read_lines(log.path());
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(ordered_json::parse(lines[0])["prev"], std::string(64, '0'));
  EXPECT_EQ(ordered_json::parse(lines[1])["prev"], sha256_hex(lines[0]));
  EXPECT_EQ(ordered_json::parse(lines[2])["prev"], sha256_hex(lines[1]));
}

TEST(Audit, RecordHasTheDocumentedFieldsInOrder) {
  TempDir dir;
  ceso::AuditLog log(dir / "audit.log");
  ceso::AuditRecord r = sample(1);
  r.time = "2026-11-22T03:04:05.123Z";
  r.user = "ops";
  r.pid = 123;
  log.append(r);
  r.vm.clear();
  r.vm_id.clear();
  r.result = ceso::AuditResult::error;
  r.error = "the host said no";
  log.append(r);

  auto lines = read_lines(log.path());
  ASSERT_EQ(lines.size(), 2u);
  auto ok = ordered_json::parse(lines[0]);
  std::vector<std::string> keys;
  for (auto it = ok.begin(); it != ok.end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"type", "time", "user", "tool", "endpoint", "vm",
                                            "vm_id", "operation", "params", "result", "duration_ms",
                                            "correlation_id", "pid", "prev"}));
  EXPECT_EQ(ok["type"], "audit");
  EXPECT_EQ(ok["time"], "2026-11-22T03:04:05.123Z");
  EXPECT_EQ(ok["user"], "ops");
  EXPECT_EQ(ok["vm"], "web1");
  EXPECT_EQ(ok["params"]["name"], "pre-upgrade");
  EXPECT_EQ(ok["result"], "ok");
  EXPECT_EQ(ok["duration_ms"], 1);
  EXPECT_EQ(ok["correlation_id"], "test-correlation");
  EXPECT_EQ(ok["pid"], 123);

  auto err = ordered_json::parse(lines[1]);
  EXPECT_EQ(err["result"], "error");
  EXPECT_EQ(err["error"], "the host said no");
  EXPECT_TRUE(err["vm"].is_null());
  EXPECT_TRUE(err["vm_id"].is_null());
}

TEST(Audit, FillsInTimeUserAndPid) {
  TempDir dir;
  ceso::AuditLog log(dir / "audit.log");
  ceso::AuditRecord r = sample(1);
  log.append(r);
  auto j = ordered_json::parse(read_lines(log.path()).at(0));
  EXPECT_EQ(j["pid"], static_cast<int64_t>(getpid()));
  EXPECT_FALSE(j["user"].get<std::string>().empty());
  const std::string time = j["time"];
  ASSERT_EQ(time.size(), 24u) << time;  // 2026-11-22T03:04:05.123Z
  EXPECT_EQ(time[10], 'T');
  EXPECT_EQ(time[19], '.');
  EXPECT_EQ(time.back(), 'Z');
}

TEST(Audit, TimestampIsUtcWithMilliseconds) {
  using namespace std::chrono;
  EXPECT_EQ(ceso::utc_timestamp(system_clock::time_point(milliseconds(1234))),
            "1970-01-01T00:00:01.234Z");
  // 2026-11-22T03:04:05.007Z
  EXPECT_EQ(ceso::utc_timestamp(system_clock::time_point(milliseconds(1795316645007))),
            "2026-11-22T03:04:05.007Z");
}

TEST(Audit, CreatesPrivateDirectoriesAndFileWhateverTheUmask) {
  for (mode_t mask : {000, 022, 0277}) {
    TempDir dir;
    mode_t old_mask = umask(mask);
    ceso::AuditLog log(dir / "state/ceso/audit.log");
    log.append(sample(1));
    umask(old_mask);
    for (const std::string& d : {dir / "state", dir / "state/ceso"}) {
      struct stat st {};
      ASSERT_EQ(stat(d.c_str(), &st), 0);
      EXPECT_EQ(st.st_mode & 0777, 0700u) << d << " umask " << std::oct << mask;
    }
    for (const std::string& f : {log.path(), log.head_path()}) {
      struct stat st {};
      ASSERT_EQ(stat(f.c_str(), &st), 0);
      EXPECT_EQ(st.st_mode & 0777, 0600u) << f << " umask " << std::oct << mask;
    }
  }
}

TEST(Audit, CreatesPrivateDirectoriesAndFile) {
  TempDir dir;
  mode_t old_mask = umask(022);
  ceso::AuditLog log(dir / "state/ceso/audit.log");
  log.append(sample(1));
  umask(old_mask);
  struct stat st {};
  ASSERT_EQ(stat((dir / "state/ceso").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(stat((dir / "state").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(stat(log.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat(log.head_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(Audit, UnwritablePlaceThrowsNamingThePath) {
  TempDir dir;
  write_file(dir / "file", "x");
  ceso::AuditLog under_file(dir / "file/audit.log");
  try {
    under_file.append(sample(1));
    FAIL() << "no error";
  } catch (const ceso::Error& e) {
    EXPECT_EQ(e.code(), ceso::Exit::failure);
    EXPECT_NE(std::string(e.what()).find("file"), std::string::npos) << e.what();
  }
  ceso::AuditLog directory(dir / "");
  EXPECT_THROW(directory.append(sample(1)), ceso::Error);
  EXPECT_THROW(under_file.check_writable(), ceso::Error);
}

TEST(Audit, DefaultPathFollowsTheEnvironment) {
  ScopedEnv log("CESO_AUDIT_LOG", std::nullopt);
  ScopedEnv state("XDG_STATE_HOME", std::nullopt);
  ScopedEnv home("HOME", "/home/ops");
  EXPECT_EQ(ceso::default_audit_log_path(), "/home/ops/.local/state/ceso/audit.log");
  {
    ScopedEnv relative("XDG_STATE_HOME", "relative/state");  // invalid per XDG: ignored
    EXPECT_EQ(ceso::default_audit_log_path(), "/home/ops/.local/state/ceso/audit.log");
  }
  ScopedEnv xdg("XDG_STATE_HOME", "/var/lib/ops");
  EXPECT_EQ(ceso::default_audit_log_path(), "/var/lib/ops/ceso/audit.log");
  ScopedEnv override_("CESO_AUDIT_LOG", "/tmp/elsewhere.log");
  EXPECT_EQ(ceso::default_audit_log_path(), "/tmp/elsewhere.log");
}

TEST(AuditVerify, IntactChainVerifies) {
  TempDir dir;
  ceso::AuditLog log(dir / "audit.log");
  append_samples(log, 50);
  auto v = ceso::verify_audit_log(log.path());
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.lines, 50u);
  EXPECT_EQ(v.bad_line, 0u);
  EXPECT_TRUE(v.checkpoint);
  EXPECT_EQ(v.last_hash, sha256_hex(read_lines(log.path()).back()));
}

TEST(AuditVerify, EditedByteIsFoundAtTheLineThatNoLongerLinks) {
  TempDir dir;
  ceso::AuditLog log(dir / "audit.log");
  append_samples(log, 10);
  auto lines = read_lines(log.path());
  size_t at = lines[3].find("web4");
  ASSERT_NE(at, std::string::npos);
  lines[3][at + 3] = '5';  // line 4 now names web5: still valid JSON
  write_lines(log.path(), lines);
  auto v = ceso::verify_audit_log(log.path());
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_line, 5u);
  EXPECT_EQ(v.lines, 4u);
  EXPECT_EQ(v.kind, "edited");  // the line count still matches the anchor's
  EXPECT_NE(v.problem.find("line 4 was edited"), std::string::npos) << v.problem;
}

TEST(AuditVerify, EditThatBreaksJsonIsFoundAtThatLine) {
  TempDir dir;
  ceso::AuditLog log(dir / "audit.log");
  append_samples(log, 10);
  auto lines = read_lines(log.path());
  lines[6][0] = '[';
  write_lines(log.path(), lines);
  auto v = ceso::verify_audit_log(log.path());
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_line, 7u);
  EXPECT_NE(v.problem.find("not a JSON object"), std::string::npos) << v.problem;
}

TEST(AuditVerify, DeletedLineIsFound) {
  TempDir dir;
  ceso::AuditLog log(dir / "audit.log");
  append_samples(log, 10);
  auto lines = read_lines(log.path());
  auto middle = lines;
  middle.erase(middle.begin() + 3);  // line 4 goes; old line 5 is now line 4
  write_lines(log.path(), middle);
  auto v = ceso::verify_audit_log(log.path());
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_line, 4u);
  EXPECT_EQ(v.kind, "deleted");
  EXPECT_NE(v.problem.find("1 line(s) were deleted before line 4"), std::string::npos) << v.problem;

  auto first = lines;
  first.erase(first.begin());
  write_lines(log.path(), first);
  v = ceso::verify_audit_log(log.path());
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_line, 1u);
  EXPECT_NE(v.problem.find("beginning"), std::string::npos) << v.problem;
}

TEST(AuditVerify, TruncatedTailIsFoundThroughTheCheckpoint) {
  TempDir dir;
  ceso::AuditLog log(dir / "audit.log");
  append_samples(log, 10);
  auto lines = read_lines(log.path());
  lines.resize(8);  // a whole-line cut: the chain itself is intact
  write_lines(log.path(), lines);
  auto v = ceso::verify_audit_log(log.path());
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.lines, 8u);
  EXPECT_EQ(v.bad_line, 0u);
  EXPECT_NE(v.problem.find("truncated"), std::string::npos) << v.problem;

  // Later appends must not paper over it: the checkpoint is left as evidence.
  append_samples(log, 3);
  v = ceso::verify_audit_log(log.path());
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find(".head"), std::string::npos) << v.problem;
}

TEST(AuditVerify, TailCutInsideALineIsFound) {
  TempDir dir;
  ceso::AuditLog log(dir / "audit.log");
  append_samples(log, 4);
  std::string text = read_file(log.path());
  write_file(log.path(), text.substr(0, text.size() - 10));
  auto v = ceso::verify_audit_log(log.path());
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_line, 4u);
  EXPECT_NE(v.problem.find("incomplete"), std::string::npos) << v.problem;
}

TEST(AuditVerify, DeletedLogIsFoundThroughTheCheckpoint) {
  TempDir dir;
  ceso::AuditLog log(dir / "audit.log");
  append_samples(log, 2);
  ASSERT_EQ(unlink(log.path().c_str()), 0);
  auto v = ceso::verify_audit_log(log.path());
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find("missing"), std::string::npos) << v.problem;

  // A fresh log in its place is still reported.
  append_samples(log, 1);
  v = ceso::verify_audit_log(log.path());
  EXPECT_FALSE(v.ok);
}

TEST(AuditVerify, MissingLogWithoutCheckpointIsAnError) {
  TempDir dir;
  EXPECT_THROW(ceso::verify_audit_log(dir / "none.log"), ceso::Error);
}

TEST(AuditVerify, RewrittenLastLineIsFoundThroughTheCheckpoint) {
  TempDir dir;
  ceso::AuditLog log(dir / "audit.log");
  append_samples(log, 3);
  auto lines = read_lines(log.path());
  size_t at = lines[2].find("web3");
  lines[2][at + 3] = '7';  // same length, last line: no later line links to it
  write_lines(log.path(), lines);
  auto v = ceso::verify_audit_log(log.path());
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_line, 0u);
  EXPECT_NE(v.problem.find("rewritten"), std::string::npos) << v.problem;
}

TEST(AuditVerify, WithoutCheckpointTheChainStillVerifies) {
  TempDir dir;
  ceso::AuditLog log(dir / "audit.log");
  append_samples(log, 3);
  ASSERT_EQ(unlink(log.head_path().c_str()), 0);
  auto v = ceso::verify_audit_log(log.path());
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_FALSE(v.checkpoint);
  append_samples(log, 1);  // writes a fresh checkpoint
  v = ceso::verify_audit_log(log.path());
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_TRUE(v.checkpoint);
  EXPECT_EQ(v.lines, 4u);
}

TEST(AuditVerify, CheckpointLeftBehindByACrashIsAcceptedAndCaughtUp) {
  TempDir dir;
  ceso::AuditLog log(dir / "audit.log");
  append_samples(log, 3);
  std::string old_head = read_file(log.head_path());
  append_samples(log, 1);
  write_file(log.head_path(), old_head);  // as if the writer died before updating it
  auto v = ceso::verify_audit_log(log.path());
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_TRUE(v.checkpoint);
  append_samples(log, 1);
  EXPECT_NE(read_file(log.head_path()), old_head);
  v = ceso::verify_audit_log(log.path());
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.lines, 5u);
}

TEST(AuditVerify, TornLineIsReportedAndTheNextRecordStartsOnItsOwnLine) {
  TempDir dir;
  ceso::AuditLog log(dir / "audit.log");
  append_samples(log, 2);
  {
    std::ofstream out(log.path(), std::ios::binary | std::ios::app);
    out << R"({"type":"audit","ti)";  // a writer died mid-line
  }
  append_samples(log, 1);
  auto lines = read_lines(log.path());
  ASSERT_EQ(lines.size(), 4u);
  auto last = ordered_json::parse(lines[3]);
  EXPECT_EQ(last["vm"], "web1");
  EXPECT_EQ(last["prev"], sha256_hex(lines[2]));
  auto v = ceso::verify_audit_log(log.path());
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_line, 3u);
}

TEST(AuditVerify, LongLinesAreReadBackwardsAcrossBlocks) {
  TempDir dir;
  ceso::AuditLog log(dir / "audit.log");
  for (int i = 0; i < 4; ++i) {
    ceso::AuditRecord r = sample(i);
    r.params["blob"] = std::string(30000 + i * 7000, 'a' + static_cast<char>(i));
    log.append(r);
  }
  auto lines = read_lines(log.path());
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(ordered_json::parse(lines[3])["prev"], sha256_hex(lines[2]));
  auto v = ceso::verify_audit_log(log.path());
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.lines, 4u);
}

TEST(AuditAnchor, RecordsSizeLinesAndLastHash) {
  TempDir dir;
  ceso::AuditLog log(dir / "audit.log");
  append_samples(log, 5);
  auto head = nlohmann::json::parse(read_file(log.head_path()));
  EXPECT_EQ(head["size"], fs::file_size(log.path()));
  EXPECT_EQ(head["lines"], 5);
  EXPECT_EQ(head["sha256"], sha256_hex(read_lines(log.path()).back()));
}

TEST(AuditAnchor, AnchorWithoutLinesIsReadAndUpgraded) {
  TempDir dir;
  ceso::AuditLog log(dir / "audit.log");
  append_samples(log, 3);
  auto head = nlohmann::json::parse(read_file(log.head_path()));
  head.erase("lines");  // as written before the count existed
  write_file(log.head_path(), head.dump());
  EXPECT_TRUE(ceso::verify_audit_log(log.path()).ok);
  EXPECT_EQ(log.append(sample(4)), "");
  EXPECT_EQ(nlohmann::json::parse(read_file(log.head_path()))["lines"], 4);
}

TEST(AuditAnchor, AppendOntoACutTailWarnsMarksTheRecordAndKeepsTheEvidence) {
  TempDir dir;
  ceso::AuditLog log(dir / "audit.log");
  append_samples(log, 5);
  auto lines = read_lines(log.path());
  const std::string head = read_file(log.head_path());
  lines.pop_back();
  write_lines(log.path(), lines);
  std::string warning = log.append(sample(6));
  EXPECT_NE(warning.find("truncated"), std::string::npos) << warning;
  auto last = ordered_json::parse(read_lines(log.path()).back());
  EXPECT_EQ(last["tail_unverified"]["kind"], "truncated");
  EXPECT_EQ(last["prev"], sha256_hex(lines.back()));  // chained on all the same
  EXPECT_EQ(read_file(log.head_path()), head);        // the anchor stays as evidence
  auto v = ceso::verify_audit_log(log.path());
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.kind, "truncated");
  EXPECT_EQ(v.marked, std::vector<size_t>{5});
  EXPECT_NE(v.problem.find("line 5, the first record appended since"), std::string::npos)
      << v.problem;
}

TEST(AuditAnchor, MissingAnchorIsWarnedAboutAndStartedAfresh) {
  TempDir dir;
  ceso::AuditLog log(dir / "audit.log");
  append_samples(log, 2);
  ASSERT_EQ(unlink(log.head_path().c_str()), 0);
  std::string warning = log.append(sample(3));
  EXPECT_NE(warning.find("no anchor"), std::string::npos) << warning;
  EXPECT_EQ(ordered_json::parse(read_lines(log.path()).back())["tail_unverified"]["kind"],
            "no-anchor");
  EXPECT_EQ(nlohmann::json::parse(read_file(log.head_path()))["lines"], 3);
  EXPECT_EQ(log.append(sample(4)), "");  // from now on vouched for again
  EXPECT_TRUE(ceso::verify_audit_log(log.path()).ok);
}

TEST(AuditAnchor, ResetAcceptsTheLogAsItIs) {
  TempDir dir;
  ceso::AuditLog log(dir / "audit.log");
  append_samples(log, 4);
  auto lines = read_lines(log.path());
  lines.resize(2);
  write_lines(log.path(), lines);
  EXPECT_FALSE(ceso::verify_audit_log(log.path()).ok);
  auto status = log.anchor_status();
  EXPECT_EQ(status.before["lines"], 4);
  EXPECT_EQ(status.after["lines"], 2);
  auto change = log.reset_anchor();
  EXPECT_EQ(change.before["lines"], 4);
  EXPECT_EQ(change.after["lines"], 2);
  EXPECT_EQ(change.after["sha256"], sha256_hex(lines.back()));
  EXPECT_TRUE(ceso::verify_audit_log(log.path()).ok);
  EXPECT_EQ(log.append(sample(5)), "");
  // A reset names a log that exists; it does not create one.
  ceso::AuditLog none(dir / "none.log");
  EXPECT_THROW(none.reset_anchor(), ceso::Error);
  EXPECT_FALSE(fs::exists(dir / "none.log"));
}

TEST(AuditVerify, SwappedLinesAreReordered) {
  TempDir dir;
  ceso::AuditLog log(dir / "audit.log");
  append_samples(log, 8);
  auto lines = read_lines(log.path());
  for (auto [i, j] : {std::pair{2, 3}, std::pair{1, 5}, std::pair{6, 7}}) {
    auto swapped = lines;
    std::swap(swapped[i], swapped[j]);
    write_lines(log.path(), swapped);
    auto v = ceso::verify_audit_log(log.path());
    EXPECT_FALSE(v.ok);
    EXPECT_EQ(v.kind, "reordered") << i << "," << j << ": " << v.problem;
    EXPECT_EQ(v.bad_line, static_cast<size_t>(i + 1));
  }
}

TEST(AuditVerify, InsertedLinesWithAndWithoutARecomputedHash) {
  TempDir dir;
  ceso::AuditLog log(dir / "audit.log");
  append_samples(log, 6);
  auto lines = read_lines(log.path());
  auto forged = ordered_json::parse(lines[2]);
  forged["vm"] = "forged";
  forged["prev"] = sha256_hex(lines[2]);  // links to line 3
  auto with = lines;
  with.insert(with.begin() + 3, forged.dump());  // becomes line 4
  write_lines(log.path(), with);
  auto v = ceso::verify_audit_log(log.path());
  EXPECT_EQ(v.kind, "inserted") << v.problem;
  EXPECT_EQ(v.bad_line, 5u);
  EXPECT_NE(v.problem.find("line 4 was inserted"), std::string::npos) << v.problem;

  forged["prev"] = std::string(64, 'f');  // links nowhere
  auto without = lines;
  without.insert(without.begin() + 3, forged.dump());
  write_lines(log.path(), without);
  v = ceso::verify_audit_log(log.path());
  EXPECT_EQ(v.kind, "inserted") << v.problem;
  EXPECT_EQ(v.bad_line, 4u);

  // At the end, with a correct link: not a break, but beyond the anchor.
  write_lines(log.path(), lines);
  forged["prev"] = sha256_hex(lines.back());
  std::ofstream(log.path(), std::ios::app) << forged.dump() << "\n";
  v = ceso::verify_audit_log(log.path());
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.unanchored, 1u);
  EXPECT_EQ(v.lines, 7u);
}

// Several processes (a pipeline, parallel jobs) and threads append at once:
// no line may be torn or interleaved, and the chain must stay one chain.
TEST(AuditConcurrency, ProcessesAndThreadsNeverInterleaveOrForkTheChain) {
  TempDir dir;
  const std::string path = dir / "audit.log";
  constexpr int kProcesses = 8, kPerProcess = 200, kThreads = 4, kPerThread = 100;
  auto record = [](const std::string& who, int i) {
    ceso::AuditRecord r = sample(i);
    r.vm = who + "/" + std::to_string(i);
    // Some lines longer than PIPE_BUF and the backward-read block.
    if (i % 10 == 0) r.params["blob"] = std::string(9000, 'x');
    return r;
  };

  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int rc = 0;
      try {
        ceso::AuditLog log(path);
        for (int i = 0; i < kPerProcess; ++i) log.append(record("p" + std::to_string(p), i));
      } catch (...) {
        rc = 1;
      }
      _exit(rc);
    }
    children.push_back(pid);
  }
  std::vector<std::thread> threads;
  std::vector<int> thread_failed(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      try {
        ceso::AuditLog log(path);
        for (int i = 0; i < kPerThread; ++i) log.append(record("t" + std::to_string(t), i));
      } catch (...) {
        thread_failed[t] = 1;
      }
    });
  }
  for (auto& th : threads) th.join();
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(thread_failed[t], 0) << "thread " << t;

  const size_t expected = kProcesses * kPerProcess + kThreads * kPerThread;
  auto v = ceso::verify_audit_log(path);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_TRUE(v.checkpoint);
  EXPECT_EQ(v.lines, expected);
  std::set<std::string> seen;
  for (const auto& line : read_lines(path)) {
    auto j = ordered_json::parse(line);  // throws on an interleaved line
    seen.insert(j["vm"].get<std::string>());
  }
  EXPECT_EQ(seen.size(), expected);  // every record exactly once
}

TEST(AuditRedact, NestedSecretsAtAnyDepth) {
  ordered_json in = {{"name", "pre-upgrade"},
                     {"password", "hunter2"},
                     {"spec",
                      {{"auth", {{"Password", "x"}, {"userName", "root"}}},
                       {"API_TOKEN", 42},
                       {"list", {{{"client_secret", "s"}, {"keep", 1}}, "plain"}},
                       {"Authorization", "Basic cm9vdDp4"},
                       {"Cookie", "vmware_soap_session=abc"},
                       {"vmware_soap_session", "abc"},
                       {"private_key", "…"},
                       {"privateKey", "…"},
                       {"user-data", "#cloud-config"},
                       {"user_data", "#cloud-config"},
                       {"guestinfo.userdata", "H4sI"},
                       {"guestinfo.vendordata", "H4sI"}}}};
  ordered_json out = ceso::redact(in);
  EXPECT_EQ(out["name"], "pre-upgrade");
  EXPECT_EQ(out["password"], "[redacted]");
  EXPECT_EQ(out["spec"]["auth"]["Password"], "[redacted]");
  EXPECT_EQ(out["spec"]["auth"]["userName"], "root");
  EXPECT_EQ(out["spec"]["API_TOKEN"], "[redacted]");
  EXPECT_EQ(out["spec"]["list"][0]["client_secret"], "[redacted]");
  EXPECT_EQ(out["spec"]["list"][0]["keep"], 1);
  EXPECT_EQ(out["spec"]["list"][1], "plain");
  for (const char* k :
       {"Authorization", "Cookie", "vmware_soap_session", "private_key", "privateKey", "user-data",
        "user_data", "guestinfo.userdata", "guestinfo.vendordata"})
    EXPECT_EQ(out["spec"][k], "[redacted]") << k;
  // The input is untouched; key order is kept.
  EXPECT_EQ(in["password"], "hunter2");
  EXPECT_EQ(out.begin().key(), "name");
}

TEST(AuditRedact, WholeSecretSubtreesGo) {
  ordered_json out = ceso::redact({{"credentials", {{"user", "root"}, {"pw", "x"}}}});
  EXPECT_EQ(out["credentials"], "[redacted]");
}

TEST(AuditRedact, OptionValuesNamingASecretKey) {
  ordered_json extra_config =
      ordered_json::array({{{"key", "guestinfo.userdata"}, {"value", "H4sIAAAA"}},
                           {{"key", "guestinfo.userdata.encoding"}, {"value", "gzip+base64"}},
                           {{"key", "guestinfo.metadata"}, {"value", "H4sIBBBB"}},
                           {{"key", "ceso.tags"}, {"value", "web"}},
                           {{"id", "password"}, {"value", "x"}}});
  ordered_json out = ceso::redact({{"extraConfig", extra_config}});
  EXPECT_EQ(out["extraConfig"][0]["key"], "guestinfo.userdata");
  EXPECT_EQ(out["extraConfig"][0]["value"], "[redacted]");
  EXPECT_EQ(out["extraConfig"][1]["value"], "[redacted]");
  EXPECT_EQ(out["extraConfig"][2]["value"], "H4sIBBBB");
  EXPECT_EQ(out["extraConfig"][3]["value"], "web");
  EXPECT_EQ(out["extraConfig"][4]["value"], "[redacted]");
}

TEST(AuditRedact, PublicSshKeysStayPrivateKeysGo) {
  ordered_json in = {{"ssh_key", "ssh-ed25519 AAAAC3Nz ops@lab"},
                     {"ssh_authorized_keys", {"ssh-rsa AAAAB3 ops@lab"}},
                     {"public_key", "ssh-ed25519 AAAA"},
                     {"host_private_key", "x"},
                     {"note",
                      "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH "
                      "PRIVATE KEY-----\n"}};
  ordered_json out = ceso::redact(in);
  EXPECT_EQ(out["ssh_key"], in["ssh_key"]);
  EXPECT_EQ(out["ssh_authorized_keys"], in["ssh_authorized_keys"]);
  EXPECT_EQ(out["public_key"], in["public_key"]);
  EXPECT_EQ(out["host_private_key"], "[redacted]");
  // A private key in any field; long enough for a digest.
  EXPECT_EQ(out["note"], ceso::redacted_value(in["note"].get<std::string>()));
  EXPECT_EQ(out["note"].get<std::string>().rfind("[redacted sha256:", 0), 0u);
}

TEST(AuditRedact, SecretKeyNamesIgnoreCaseAndSeparators) {
  for (const char* k :
       {"PASSWORD", "Passwd", "newPwd", "db-passphrase", "x_auth_token", "Set-Cookie", "sessionId",
        "UserData", "user.data", "Vendor_Data", "api-key", "AWS_ACCESS_KEY_ID", "encryptionKey",
        "key_material", "credential"})
    EXPECT_TRUE(ceso::is_secret_key(k)) << k;
  for (const char* k : {"name", "key", "value", "ssh_key", "ssh_authorized_keys", "public_key",
                        "memory_mib", "thumbprint", "guestinfo.metadata", "hostname"})
    EXPECT_FALSE(ceso::is_secret_key(k)) << k;
}

TEST(AuditRedact, AppendRedactsParams) {
  TempDir dir;
  ceso::AuditLog log(dir / "audit.log");
  ceso::AuditRecord r = sample(1);
  r.params = {{"spec", {{"password", "hunter2"}, {"guestinfo.userdata", "c2VjcmV0"}}}};
  log.append(r);
  std::string text = read_file(log.path());
  EXPECT_EQ(text.find("hunter2"), std::string::npos) << text;
  EXPECT_EQ(text.find("c2VjcmV0"), std::string::npos) << text;
  EXPECT_NE(text.find("[redacted]"), std::string::npos) << text;
}

// ---- secrets inside the ConfigSpec XML that plans and audit records carry

const std::string kMarker = "CesoUnitSecretMarker4711";

std::string gzip_b64(const std::string& text) {
  return ceso::base64_encode(ceso::gzip_compress(text));
}

// What ceso-mkvm sends for a VM whose user-data holds the marker.
ceso::vmspec::ConfigSpec spec_with_user_data(const std::string& userdata_value,
                                             const std::string& metadata_value) {
  ceso::vmspec::ConfigSpec spec;
  spec.name = "web01";
  spec.annotation = "made & <tested>";
  spec.extra_config = {{"guestinfo.metadata", metadata_value},
                       {"guestinfo.metadata.encoding", "gzip+base64"},
                       {"guestinfo.userdata", userdata_value},
                       {"guestinfo.userdata.encoding", "gzip+base64"},
                       {"guestinfo.role", kMarker + "-role"},
                       {"ceso.tags", "web,prod"},
                       {"svga.present", "TRUE"}};
  return spec;
}

// The text of <value> of the option value with this key in a parsed spec.
std::string option_value(const ceso::xml::Node& spec, const std::string& key) {
  for (const auto* ov : spec.all("extraConfig"))
    if (ov->child_text("key") == key) return ov->child_text("value");
  return "(missing)";
}

TEST(AuditRedact, ConfigSpecXmlInAStringLosesItsSecretsAndKeepsTheRest) {
  const std::string userdata = gzip_b64(
      "#cloud-config\nwrite_files:\n- path: /etc/app.conf\n"
      "  content: " +
      kMarker + "\n");
  const std::string metadata = gzip_b64("instance-id: i-1\nlocal-hostname: web01\n");
  const std::string xml = spec_with_user_data(userdata, metadata).xml("spec");
  ordered_json out = ceso::redact({{"name", "web01"}, {"spec", xml}});
  const std::string text = out["spec"].get<std::string>();
  EXPECT_EQ(text.find(userdata), std::string::npos) << text;
  EXPECT_EQ(text.find(kMarker), std::string::npos) << text;
  // Still the same XML, with the secret values replaced by their digests.
  ceso::xml::Node spec = ceso::xml::parse(text);
  EXPECT_EQ(option_value(spec, "guestinfo.userdata"), ceso::redacted_value(userdata));
  EXPECT_EQ(option_value(spec, "guestinfo.role"), "[redacted]");  // short: no digest
  EXPECT_EQ(option_value(spec, "guestinfo.metadata"), metadata);
  EXPECT_EQ(option_value(spec, "guestinfo.metadata.encoding"), "gzip+base64");
  EXPECT_EQ(option_value(spec, "ceso.tags"), "web,prod");
  EXPECT_EQ(option_value(spec, "svga.present"), "TRUE");
  EXPECT_EQ(spec.child_text("annotation"), "made & <tested>");
  EXPECT_EQ(spec.type(), "VirtualMachineConfigSpec");
  // Only the values changed: the rest of the text is byte for byte the same.
  std::string expected = xml;
  expected.replace(expected.find(userdata), userdata.size(), ceso::redacted_value(userdata));
  expected.replace(expected.find(kMarker + "-role"), kMarker.size() + 5, "[redacted]");
  // The encoding of user data goes with it (a key naming user data).
  const std::string enc = "guestinfo.userdata.encoding</key><value xsi:type=\"xsd:string\">";
  expected.replace(expected.find(enc) + enc.size(), 11, "[redacted]");
  EXPECT_EQ(text, expected);
}

TEST(AuditRedact, DigestIsTheSha256OfTheValueAsSentWithItsLength) {
  const std::string value(100, 'x');
  EXPECT_EQ(ceso::redacted_value(value), "[redacted sha256:" + sha256_hex(value) + " bytes:100]");
  EXPECT_EQ(ceso::redacted_value(std::string(63, 'x')), "[redacted]");
  EXPECT_EQ(ceso::redacted_value(""), "[redacted]");
  // In XML the digest is of the unescaped value, the one the VM gets.
  const std::string amp = std::string(70, 'a') + "&<";
  ordered_json out = ceso::redact("<extraConfig><key>guestinfo.x</key><value>" +
                                  ceso::xml::escape(amp) + "</value></extraConfig>");
  EXPECT_EQ(ceso::xml::parse(out.get<std::string>()).child_text("value"),
            ceso::redacted_value(amp));
}

TEST(AuditRedact, EveryShapeOfXmlTheToolsSend) {
  const std::string secret = kMarker;
  struct Case {
    const char* what;
    std::string xml;
  };
  const std::vector<Case> cases = {
      {"CloneVM_Task spec (vCenter)",
       "<spec><location><pool type=\"ResourcePool\">resgroup-1</pool></location><template>false"
       "</template><config xsi:type=\"VirtualMachineConfigSpec\"><extraConfig "
       "xsi:type=\"OptionValue\"><key>guestinfo.userdata</key><value "
       "xsi:type=\"xsd:string\">" +
           secret +
           "</value></extraConfig></config><powerOn>false"
           "</powerOn></spec>"},
      {"value before key",
       "<extraConfig><value>" + secret + "</value><key>guestinfo.vendordata</key></extraConfig>"},
      {"sibling fragments, leading text",
       "text <a>1</a><extraConfig><key>guestinfo.custom</key><value>" + secret +
           "</value></extraConfig>"},
      {"prefixed elements", "<vim:extraConfig><vim:key>guestinfo.userdata</vim:key><vim:value>" +
                                secret + "</vim:value></vim:extraConfig>"},
      {"CDATA", "<extraConfig><key>guestinfo.userdata</key><value><![CDATA[" + secret +
                    "]]></value></extraConfig>"},
      {"vApp property by id", "<property><info><key>1</key><id>db_password</id><value>" + secret +
                                  "</value></info></property>"},
      {"key naming a key",
       "<extraConfig><key>app.apiKey</key><value>" + secret + "</value></extraConfig>"},
      {"token in a key",
       "<extraConfig><key>vault.TOKEN</key><value>" + secret + "</value></extraConfig>"},
      {"customization password element",
       "<identity><password><value>" + secret +
           "</value><plainText>true</plainText></password></identity>"},
      {"PEM private key in any text", "<note>-----BEGIN RSA PRIVATE KEY-----\n" + secret +
                                          "\n-----END RSA PRIVATE KEY-----"
                                          "</note>"},
      {"metadata whose netplan has a password",
       "<extraConfig><key>guestinfo.metadata</key><value>" +
           gzip_b64("network:\n  version: 2\n  ethernets:\n    e:\n      auth:\n        "
                    "password: " +
                    secret + "\n") +
           "</value></extraConfig>"},
      {"metadata base64 with a private key",
       "<extraConfig><key>guestinfo.metadata</key><value>" +
           ceso::base64_encode("a: |\n  -----BEGIN OPENSSH PRIVATE KEY-----\n  " + secret + "\n") +
           "</value></extraConfig>"},
      {"plain metadata with a token",
       "<extraConfig><key>guestinfo.metadata</key><value>api_token: " + secret +
           "</value></extraConfig>"},
      {"not well-formed, naming user data",
       "<extraConfig><key>guestinfo.userdata</key><value>" + secret + "</value>"},
  };
  for (const auto& c : cases) {
    ordered_json out = ceso::redact({{"spec", c.xml}});
    const std::string text = out["spec"].get<std::string>();
    EXPECT_EQ(text.find(secret), std::string::npos) << c.what << ": " << text;
    EXPECT_NE(text.find("[redacted"), std::string::npos) << c.what << ": " << text;
  }
}

TEST(AuditRedact, XmlWithoutSecretsIsKeptAsIs) {
  for (std::string text :
       {std::string("<spec><numCPUs>2</numCPUs><annotation>a &amp; b</annotation></spec>"),
        std::string("<extraConfig><key>ceso.tags</key><value>web</value></extraConfig>"),
        "<extraConfig><key>guestinfo.metadata</key><value>" +
            gzip_b64("instance-id: i-1\npublic-keys: [ssh-ed25519 AAAA]\n") +
            "</value></extraConfig>",
        std::string("<web01"), std::string("a < b"), std::string("<empty/><x></x>")}) {
    EXPECT_EQ(ceso::redact(ordered_json(text)), text) << text;
  }
}

TEST(AuditRedact, GuestinfoAndOptionKeysInJson) {
  const std::string long_secret = kMarker + std::string(60, '-');
  ordered_json in = {
      {"guestinfo",
       {{"guestinfo.userdata", long_secret},
        {"guestinfo.role", "db"},
        {"guestinfo.metadata", gzip_b64("local-hostname: web01\n")},
        {"guestinfo.metadata.encoding", "gzip+base64"}}},
      {"extraConfig", ordered_json::array({{{"key", "guestinfo.custom"}, {"value", "x"}},
                                           {{"key", "app.sshHostKey"}, {"value", "x"}},
                                           {{"key", "guestinfo.metadata"},
                                            {"value", ceso::base64_encode("password: x\n")}},
                                           {{"key", "ceso.tags"}, {"value", "web"}}})},
      {"extra_config_keys", {"guestinfo.userdata"}}};
  ordered_json out = ceso::redact(in);
  EXPECT_EQ(out["guestinfo"]["guestinfo.userdata"], ceso::redacted_value(long_secret));
  EXPECT_EQ(out["guestinfo"]["guestinfo.role"], "[redacted]");
  EXPECT_EQ(out["guestinfo"]["guestinfo.metadata"], in["guestinfo"]["guestinfo.metadata"]);
  EXPECT_EQ(out["guestinfo"]["guestinfo.metadata.encoding"], "gzip+base64");
  EXPECT_EQ(out["extraConfig"][0]["value"], "[redacted]");
  EXPECT_EQ(out["extraConfig"][1]["value"], "[redacted]");
  EXPECT_EQ(out["extraConfig"][2]["value"], "[redacted]");
  EXPECT_EQ(out["extraConfig"][3]["value"], "web");
  EXPECT_EQ(out["extra_config_keys"], in["extra_config_keys"]);  // names of keys are kept
}

TEST(AuditRedact, MetadataTooLargeToExamineCountsAsSecret) {
  // 20 MiB of zeros compress to a few KiB: not inflated past the limit.
  std::string bomb = gzip_b64(std::string(20u << 20, '\0'));
  EXPECT_TRUE(ceso::is_secret_option("guestinfo.metadata", bomb));
  EXPECT_FALSE(ceso::is_secret_option("guestinfo.metadata", gzip_b64("local-hostname: a\n")));
}

TEST(AuditRedact, AppendRedactsXmlParamsAndErrors) {
  TempDir dir;
  ceso::AuditLog log(dir / "audit.log");
  ceso::AuditRecord r = sample(1);
  const std::string userdata = gzip_b64("#cloud-config\nbootcmd: [echo " + kMarker + "]\n");
  r.params = {{"spec", spec_with_user_data(userdata, gzip_b64("local-hostname: w\n")).xml("spec")}};
  r.result = ceso::AuditResult::error;
  r.error = "fault: <extraConfig><key>guestinfo.userdata</key><value>" + userdata +
            "</value></extraConfig>";
  log.append(r);
  std::string text = read_file(log.path());
  EXPECT_EQ(text.find(kMarker), std::string::npos) << text;
  EXPECT_EQ(text.find(userdata), std::string::npos) << text;
  EXPECT_NE(text.find("[redacted sha256:" + sha256_hex(userdata)), std::string::npos) << text;
  EXPECT_TRUE(ceso::verify_audit_log(log.path()).ok);
}

// The correlation id of a child process, sent back through a pipe.
std::string child_correlation_id(bool new_process_group) {
  int fds[2];
  if (pipe(fds) != 0) return "pipe failed";
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    if (new_process_group) setpgid(0, 0);
    std::string id;
    try {
      id = ceso::correlation_id();
    } catch (...) {
      id = "error";
    }
    ssize_t ignored = write(fds[1], id.data(), id.size());
    (void)ignored;
    _exit(0);
  }
  close(fds[1]);
  std::string id;
  char buf[256];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) id.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  waitpid(pid, nullptr, 0);
  return id;
}

TEST(AuditCorrelation, EnvironmentVariableWins) {
  ScopedEnv env("CESO_CORRELATION_ID", "deploy-2026-11-22 #7");
  EXPECT_EQ(ceso::correlation_id(), "deploy-2026-11-22 #7");
}

TEST(AuditCorrelation, BadEnvironmentValueIsAUsageErrorNamingTheVariable) {
  for (const std::string& bad :
       {std::string("line\nbreak"), std::string(129, 'a'), std::string("caf\xc3\xa9")}) {
    ScopedEnv env("CESO_CORRELATION_ID", bad);
    try {
      ceso::correlation_id();
      FAIL() << "accepted " << bad;
    } catch (const ceso::Error& e) {
      EXPECT_EQ(e.code(), ceso::Exit::usage);
      EXPECT_NE(std::string(e.what()).find("CESO_CORRELATION_ID"), std::string::npos);
    }
  }
  ScopedEnv empty("CESO_CORRELATION_ID", "");  // empty counts as unset
  EXPECT_NO_THROW(ceso::correlation_id());
}

TEST(AuditCorrelation, DerivedIdIsSharedByTheProcessGroupOnly) {
  ScopedEnv env("CESO_CORRELATION_ID", std::nullopt);
  const std::string mine = ceso::correlation_id();
  // HOST:BOOT:PGID:START
  std::vector<std::string> parts;
  std::istringstream in(mine);
  for (std::string part; std::getline(in, part, ':');) parts.push_back(part);
  ASSERT_EQ(parts.size(), 4u) << mine;
  EXPECT_EQ(parts[2], std::to_string(getpgrp()));
  EXPECT_EQ(ceso::correlation_id(), mine);
  EXPECT_EQ(child_correlation_id(false), mine);  // same pipeline
  std::string other = child_correlation_id(true);
  EXPECT_NE(other, mine);  // a pipeline of its own
  EXPECT_NE(other, "error");
}

}  // namespace
