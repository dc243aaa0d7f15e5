#include "cli/tool.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "base/error.hpp"
#include "base/progress.hpp"
#include "safety/policy.hpp"
#include "test_support.hpp"

namespace {

using ceso::Exit;

// Standard input taken from a file (or a directory) for one test.
class StdinFrom {
 public:
  explicit StdinFrom(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("cannot open " + path);
    saved_ = ::dup(STDIN_FILENO);
    ::dup2(fd, STDIN_FILENO);
    ::close(fd);
    std::clearerr(stdin);
  }
  ~StdinFrom() {
    ::dup2(saved_, STDIN_FILENO);
    ::close(saved_);
    std::clearerr(stdin);
  }

 private:
  int saved_ = -1;
};

struct TargetRun {
  std::vector<std::string> names;
  Exit code = Exit::ok;
  std::string error;  // what for_each_target threw, if it threw
  Exit error_code = Exit::ok;
};

TargetRun run_over(const std::string& path) {
  StdinFrom in(path);
  ceso::Args args;
  ceso::Outcome outcome;
  TargetRun r;
  try {
    r.code = ceso::for_each_target(args, outcome, [&](const ceso::Target& t) {
      r.names.push_back(t.name);
      outcome.succeeded();
    });
  } catch (const ceso::Error& e) {
    r.error = e.what();
    r.error_code = e.code();
  }
  return r;
}

std::string write_file(const ceso::test::TempDir& dir, const std::string& name,
                       const std::string& text) {
  std::string path = dir / name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

const std::string kVmA = "{\"type\":\"vm\",\"name\":\"a\"}\n";
const std::string kVmB = "{\"type\":\"vm\",\"name\":\"b\"}";  // no final newline

// ceso(7): a bad record is reported, the others are processed, exit 4.
TEST(ForEachTarget, LineOverTheLimitIsOneBadRecordTheOthersAreDone) {
  ceso::test::TempDir dir;
  std::string huge =
      "{\"type\":\"vm\",\"name\":\"" + std::string(ceso::kMaxRecordLine, 'x') + "\"}\n";
  TargetRun r = run_over(write_file(dir, "in", kVmA + huge + kVmB));
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.code, Exit::partial);
}

TEST(ForEachTarget, BadRecordsAloneExit3) {
  ceso::test::TempDir dir;
  static const char kNul[] = "{\"type\":\"vm\",\"name\":\"a\0\"}\n";
  std::string nul(kNul, sizeof kNul - 1);
  TargetRun r = run_over(write_file(dir, "in", nul + "{\"type\":\"vm\",\"name\":\"\xff\"}\n"));
  EXPECT_TRUE(r.names.empty());
  EXPECT_EQ(r.code, Exit::bad_input);
}

TEST(ForEachTarget, AReadErrorIsAFailureNeverTheEndOfInput) {
  ceso::test::TempDir dir;
  TargetRun r = run_over(dir / "");  // a directory: read(2) fails with EISDIR
  EXPECT_EQ(r.error_code, Exit::failure);
  EXPECT_NE(r.error.find("cannot read <stdin>"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("Is a directory"), std::string::npos) << r.error;
}

// The records read before a read error are still done, also with -j N
// (they may wait in the queue when the error comes), then the error is raised.
TEST(ForEachTarget, RecordsBeforeAReadErrorAreDoneWithJobsToo) {
  struct Source {
    std::string text;
    size_t pos = 0;
  };
  cookie_io_functions_t io{};
  io.read = [](void* c, char* buf, size_t n) -> ssize_t {
    auto* s = static_cast<Source*>(c);
    if (s->pos == s->text.size()) {
      errno = EIO;
      return -1;
    }
    size_t k = std::min(n, s->text.size() - s->pos);
    std::memcpy(buf, s->text.data() + s->pos, k);
    s->pos += k;
    return static_cast<ssize_t>(k);
  };
  for (size_t jobs : {1, 4}) {
    ceso::test::TempDir dir;
    StdinFrom not_a_terminal(write_file(dir, "empty", ""));
    Source src{kVmA + kVmA + kVmA};
    FILE* failing = fopencookie(&src, "r", io);
    ASSERT_NE(failing, nullptr);
    FILE* saved = stdin;
    stdin = failing;  // glibc: the reader reads `stdin`
    ceso::Args args;
    ceso::Outcome outcome;
    std::atomic<int> done{0};
    std::string error;
    try {
      ceso::for_each_target_parallel(args, outcome, jobs, [&](const ceso::Target&, size_t) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let the reader run ahead
        ++done;
        outcome.succeeded();
      });
    } catch (const ceso::Error& e) {
      error = e.what();
      EXPECT_EQ(e.code(), Exit::failure);
    }
    stdin = saved;
    fclose(failing);
    EXPECT_EQ(done.load(), 3) << "jobs " << jobs;
    EXPECT_NE(error.find("cannot read <stdin> at line 4: Input/output error"), std::string::npos)
        << error;
  }
}

TEST(ForEachTarget, LastLineWithoutNewlineIsATarget) {
  ceso::test::TempDir dir;
  TargetRun r = run_over(write_file(dir, "in", kVmA + kVmB));
  EXPECT_EQ(r.names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.code, Exit::ok);
}

// ---------------------------------------------------------------- audit rule

TEST(RunTool, UnauditedChangeTurnsSuccessAndPartialIntoFailure) {
  ceso::test::TempDir dir;
  write_file(dir, "file", "");
  ceso::GateSettings s;
  s.tool = "ceso-test";
  s.audit_log = dir / "file/audit.log";  // under a regular file: ENOTDIR
  s.correlation_id = "test";
  ceso::Gate gate(s);
  size_t before = ceso::unaudited_changes();
  bool ran = false;
  EXPECT_TRUE(gate.perform({"h:443", "vm1", "vm-1", "PowerOnVM_Task", {}}, [&] { ran = true; }));
  EXPECT_TRUE(ran);
  EXPECT_EQ(ceso::unaudited_changes(), before + 1);
  EXPECT_EQ(ceso::unaudited_epilogue(Exit::ok), Exit::failure);
  EXPECT_EQ(ceso::unaudited_epilogue(Exit::partial), Exit::failure);
  // Codes that already say something went wrong keep saying what.
  EXPECT_EQ(ceso::unaudited_epilogue(Exit::interrupted), Exit::interrupted);
  EXPECT_EQ(ceso::unaudited_epilogue(Exit::policy), Exit::policy);
  EXPECT_EQ(ceso::unaudited_epilogue(Exit::connection), Exit::connection);
}

TEST(RunTool, AFailedChangeUnauditedCountsARefusalDoesNot) {
  ceso::test::TempDir dir;
  write_file(dir, "file", "");
  ceso::GateSettings s;
  s.tool = "ceso-test";
  s.audit_log = dir / "file/audit.log";
  s.correlation_id = "test";
  size_t before = ceso::unaudited_changes();
  ceso::Gate gate(s);
  EXPECT_THROW(gate.perform({"h:443", "vm1", "vm-1", "Destroy_Task", {}},
                            [] { throw ceso::Error("task failed"); }),
               ceso::Error);
  EXPECT_EQ(ceso::unaudited_changes(), before + 1);
  s.mode = ceso::Mode::restricted;
  ceso::Gate restricted(s);
  EXPECT_THROW(restricted.perform({"h:443", "vm1", "vm-1", "Destroy_Task", {}}, [] {}),
               ceso::Error);
  EXPECT_EQ(ceso::unaudited_changes(), before + 1);
}

// ---------------------------------------------------------------- the gate from the frame

TEST(RunTool, TheGateIsMadeFromTheFrame) {
  static const ceso::ToolSpec spec{"ceso-gatetest", "", "", {}, 0, {}};
  char name[] = "ceso-gatetest";
  char* argv[] = {name, nullptr};
  std::vector<ceso::ordered_json> plans;
  std::string tool;
  bool dry_run = false;
  int code = ceso::run_tool(spec, 1, argv, [&](const ceso::Args&) {
    ceso::Gate gate =
        ceso::tool_gate(true, [&](const ceso::ordered_json& p) { plans.push_back(p); });
    tool = gate.settings().tool;
    dry_run = gate.dry_run();
    EXPECT_FALSE(gate.perform({"h:443", "vm1", "vm-1", "PowerOnVM_Task", {}},
                              [] { FAIL() << "a dry run ran the action"; }));
    return Exit::ok;
  });
  // Earlier tests of this process left unaudited changes: the epilogue counts them.
  EXPECT_EQ(code, static_cast<int>(ceso::unaudited_epilogue(Exit::ok)));
  EXPECT_EQ(tool, "ceso-gatetest");  // the frame's name, not one each tool spells out
  EXPECT_TRUE(dry_run);
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_EQ(plans[0].value("operation", ""), "PowerOnVM_Task");
}

// ---------------------------------------------------------------- one progress sink

// Standard error into a file while alive; text() reads what was written.
class StderrTo {
 public:
  explicit StderrTo(std::string path) : path_(std::move(path)) {
    std::fflush(stderr);
    int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    saved_ = ::dup(STDERR_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  ~StderrTo() { restore(); }
  std::string text() {
    restore();
    std::ifstream in(path_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    saved_ = -1;
  }
  std::string path_;
  int saved_ = -1;
};

TEST(Progress, PercentStepsAreLinesOfTheOneSink) {
  ceso::test::TempDir dir;
  StderrTo err(dir / "stderr");
  {
    ceso::Progress p(true);
    p.percent("vm1: cloning", 10);
    p.percent("vm1: cloning", 100);  // ends the step: its line is erased
    p.percent("vm1: copying disk", 0);
    int t = p.start("vm1 disk.vmdk", 100);
    p.advance(t, 100);
    p.finish(t);
  }
  std::string out = err.text();
  EXPECT_NE(out.find("vm1: cloning 10%\n"), std::string::npos) << out;
  EXPECT_NE(out.find("vm1: copying disk 0%\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("vm1: cloning 100%"), std::string::npos) << out;
  EXPECT_EQ(out.find('\r'), std::string::npos) << out;  // no ad-hoc carriage-return line
  // Only byte counts make the total line: none while only percentages are drawn.
  size_t bytes_from = out.find("vm1 disk.vmdk");
  ASSERT_NE(bytes_from, std::string::npos) << out;
  EXPECT_EQ(out.substr(0, bytes_from).find("total"), std::string::npos) << out;
  EXPECT_NE(out.find("total  0 B / 100 B (0%)"), std::string::npos) << out;
}

TEST(Progress, DisabledPercentWritesNothing) {
  ceso::test::TempDir dir;
  StderrTo err(dir / "stderr");
  {
    ceso::Progress p(false);
    p.percent("vm1: cloning", 50);
    p.percent("vm1: cloning", 100);
  }
  EXPECT_EQ(err.text(), "");
}

// ---------------------------------------------------------------- interrupts

TEST(Interrupts, OnlyAReadOnlyRunCutsCallsAndNeverDuringCleanup) {
  EXPECT_FALSE(ceso::calls_abort_on_interrupt());
  {
    ceso::ReadOnlyRun read_only;
    EXPECT_TRUE(ceso::calls_abort_on_interrupt());
    {
      ceso::CleanupScope cleanup;
      EXPECT_FALSE(ceso::calls_abort_on_interrupt());
    }
    EXPECT_TRUE(ceso::calls_abort_on_interrupt());
  }
  EXPECT_FALSE(ceso::calls_abort_on_interrupt());
}

TEST(Interrupts, AReadOnlyPhaseIsPerThread) {
  EXPECT_FALSE(ceso::calls_abort_on_interrupt());
  ceso::ReadOnlyPhase phase;
  EXPECT_TRUE(ceso::calls_abort_on_interrupt());
  bool other = true;
  std::thread([&] { other = ceso::calls_abort_on_interrupt(); }).join();
  EXPECT_FALSE(other);  // a -j worker that is making changes is not affected
  ceso::CleanupScope cleanup;
  EXPECT_FALSE(ceso::calls_abort_on_interrupt());
}

// The deferred mode of run_tool's one handler. Each case runs in a child
// (a death test): the interrupt flag is process-wide and stays set.

// Runs `body` as a tool under run_tool (which installs the one handler) and
// exits with run_tool's status.
[[noreturn]] void run_as_tool(const std::function<Exit()>& body) {
  static const ceso::ToolSpec spec{"ceso-test", "", "", {}, 0, {}};
  char name[] = "ceso-test";
  char* argv[] = {name, nullptr};
  std::exit(ceso::run_tool(spec, 1, argv, [&](const ceso::Args&) { return body(); }));
}

TEST(InterruptsDeathTest, ASecondSignalExitsAtOnceWhenNotDeferred) {
  EXPECT_EXIT(run_as_tool([] {
                ::raise(SIGINT);
                EXPECT_TRUE(ceso::interrupted());
                ::raise(SIGTERM);  // exits 130 here, without cleanup
                return Exit::ok;
              }),
              ::testing::ExitedWithCode(130), "interrupted again");
}

TEST(InterruptsDeathTest, ASecondSignalInDeferredModeDoesNotExit) {
  EXPECT_EXIT(run_as_tool([] {
                ceso::DeferredInterrupts deferred;
                ::raise(SIGINT);
                ::raise(SIGINT);
                ::raise(SIGTERM);
                // Still running: calls and task waits are not cut, the
                // tool's own checkpoints see the request.
                if (ceso::interrupted()) return Exit::failure;
                if (!ceso::interrupt_requested()) return Exit::failure;
                try {
                  ceso::throw_if_interrupt_requested();
                } catch (const ceso::Error& e) {
                  return e.code() == Exit::interrupted ? Exit::partial : Exit::failure;
                }
                return Exit::failure;
              }),
              ::testing::ExitedWithCode(static_cast<int>(Exit::partial)), "");
}

TEST(InterruptsDeathTest, DeferredScopesNestPushAndPop) {
  EXPECT_EXIT(run_as_tool([] {
                {
                  ceso::DeferredInterrupts outer;
                  ::raise(SIGINT);
                  {
                    ceso::DeferredInterrupts inner;
                    ::raise(SIGINT);
                  }
                  // Popping the inner scope leaves the outer one's mode.
                  ::raise(SIGINT);
                  if (ceso::interrupted()) return Exit::failure;
                }
                // Popped: the flag is still set and now acted on at once.
                if (!ceso::interrupted()) return Exit::failure;
                {
                  ceso::CleanupScope cleanup;  // cleanup still sees no interruption
                  if (ceso::interrupted() || !ceso::interrupt_requested()) return Exit::failure;
                }
                return Exit::partial;
              }),
              ::testing::ExitedWithCode(static_cast<int>(Exit::partial)), "");
}

TEST(InterruptsDeathTest, AfterTheLastPopASecondSignalExitsAgain) {
  EXPECT_EXIT(run_as_tool([] {
                {
                  ceso::DeferredInterrupts deferred;
                  ::raise(SIGINT);
                }
                ::raise(SIGINT);  // not deferred any more: exits 130
                return Exit::ok;
              }),
              ::testing::ExitedWithCode(130), "interrupted again");
}

TEST(InterruptsDeathTest, DeferredModeIsProcessWide) {
  EXPECT_EXIT(run_as_tool([] {
                ceso::DeferredInterrupts deferred;
                ::raise(SIGINT);
                bool seen = true, requested = false;
                std::thread([&] {
                  seen = ceso::interrupted();
                  requested = ceso::interrupt_requested();
                  ::raise(SIGINT);  // from a -j worker: no exit either
                }).join();
                return !seen && requested ? Exit::partial : Exit::failure;
              }),
              ::testing::ExitedWithCode(static_cast<int>(Exit::partial)), "");
}

}  // namespace

namespace {

// Standard output sent to a file for the life of the object.
struct StdoutTo {
  explicit StdoutTo(const std::string& path) {
    saved = dup(STDOUT_FILENO);
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, STDOUT_FILENO);
    close(fd);
  }
  ~StdoutTo() {
    dup2(saved, STDOUT_FILENO);
    close(saved);
  }
  int saved;
};

}  // namespace

TEST(Output, EmitAllWritesTheSameLinesAsEmitOneByOne) {
  ceso::test::TempDir tmp;
  std::vector<ceso::ordered_json> recs;
  for (int i = 0; i < 3000; ++i)  // about 150 KiB: several writes
    recs.push_back({{"type", "vm"}, {"name", "vm" + std::to_string(i)}, {"n", i}});
  std::string one_by_one = tmp / "a", all = tmp / "b";
  ceso::Args args;
  {
    StdoutTo out(one_by_one);
    ceso::Output o(args, {"name"});
    for (const auto& r : recs) o.emit(r);
  }
  {
    StdoutTo out(all);
    ceso::Output o(args, {"name"});
    o.emit_all(recs);
  }
  std::ifstream a(one_by_one), b(all);
  std::string ta((std::istreambuf_iterator<char>(a)), {}),
      tb((std::istreambuf_iterator<char>(b)), {});
  EXPECT_EQ(ta, tb);
  EXPECT_EQ(std::count(tb.begin(), tb.end(), '\n'), 3000);
  EXPECT_EQ(tb.substr(0, tb.find('\n')), R"({"type":"vm","name":"vm0","n":0})");
}
