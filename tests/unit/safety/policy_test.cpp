#include "safety/policy.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "base/error.hpp"
#include "safety/audit.hpp"
#include "test_support.hpp"

namespace {

namespace fs = std::filesystem;
using ceso::ordered_json;

struct TempDir : ceso::test::TempDir {
  TempDir() : ceso::test::TempDir("ceso-policy-test") {}
};
using ceso::test::ScopedEnv;

std::vector<ordered_json> read_records(const std::string& path) {
  std::vector<ordered_json> records;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) records.push_back(ordered_json::parse(line));
  return records;
}

ceso::GateSettings settings(const TempDir& dir, ceso::Mode mode = ceso::Mode::standard,
                            bool dry_run = false) {
  ceso::GateSettings s;
  s.tool = "ceso-test";
  s.dry_run = dry_run;
  s.mode = mode;
  s.audit_log = dir / "audit.log";
  s.correlation_id = "corr-1";
  return s;
}

ceso::Mutation snapshot_of_web01() {
  return {"esxi1.lab:443",
          "web01",
          "vm-42",
          "CreateSnapshot_Task",
          {{"name", "pre-upgrade"}, {"spec", {{"password", "hunter2"}}}}};
}

TEST(PolicyMode, StandardUnlessRestricted) {
  {
    ScopedEnv unset("CESO_MODE", std::nullopt);
    EXPECT_EQ(ceso::policy_mode(), ceso::Mode::standard);
  }
  {
    ScopedEnv empty("CESO_MODE", "");
    EXPECT_EQ(ceso::policy_mode(), ceso::Mode::standard);
  }
  {
    ScopedEnv standard("CESO_MODE", "standard");
    EXPECT_EQ(ceso::policy_mode(), ceso::Mode::standard);
  }
  ScopedEnv restricted("CESO_MODE", "restricted");
  EXPECT_EQ(ceso::policy_mode(), ceso::Mode::restricted);
}

TEST(PolicyMode, UnknownValueIsAUsageErrorNamingTheChoices) {
  ScopedEnv bad("CESO_MODE", "readonly");
  try {
    ceso::policy_mode();
    FAIL() << "accepted";
  } catch (const ceso::Error& e) {
    EXPECT_EQ(e.code(), ceso::Exit::usage);
    std::string m = e.what();
    EXPECT_NE(m.find("CESO_MODE"), std::string::npos) << m;
    EXPECT_NE(m.find("'readonly'"), std::string::npos) << m;
    EXPECT_NE(m.find("standard"), std::string::npos) << m;
    EXPECT_NE(m.find("restricted"), std::string::npos) << m;
  }
}

TEST(PolicyGate, RunsTheActionAndAuditsOk) {
  TempDir dir;
  ceso::Gate gate(settings(dir));
  int calls = 0;
  EXPECT_TRUE(gate.perform(snapshot_of_web01(), [&] { ++calls; }));
  EXPECT_EQ(calls, 1);
  auto records = read_records(dir / "audit.log");
  ASSERT_EQ(records.size(), 1u);
  const auto& r = records[0];
  EXPECT_EQ(r["type"], "audit");
  EXPECT_EQ(r["tool"], "ceso-test");
  EXPECT_EQ(r["endpoint"], "esxi1.lab:443");
  EXPECT_EQ(r["vm"], "web01");
  EXPECT_EQ(r["vm_id"], "vm-42");
  EXPECT_EQ(r["operation"], "CreateSnapshot_Task");
  EXPECT_EQ(r["params"]["name"], "pre-upgrade");
  EXPECT_EQ(r["params"]["spec"]["password"], "[redacted]");
  EXPECT_EQ(r["result"], "ok");
  EXPECT_FALSE(r.contains("error"));
  EXPECT_TRUE(r["duration_ms"].is_number_integer());
  EXPECT_EQ(r["correlation_id"], "corr-1");
  EXPECT_EQ(gate.audit_failures(), 0u);
  EXPECT_TRUE(ceso::verify_audit_log(dir / "audit.log").ok);
}

TEST(PolicyGate, RestrictedModeRefusesAndAuditsTheRefusal) {
  TempDir dir;
  ceso::Gate gate(settings(dir, ceso::Mode::restricted));
  bool called = false;
  std::string message;
  try {
    gate.perform(snapshot_of_web01(), [&] { called = true; });
    FAIL() << "not refused";
  } catch (const ceso::Error& e) {
    EXPECT_EQ(e.code(), ceso::Exit::policy);
    message = e.what();
  }
  EXPECT_FALSE(called);
  EXPECT_NE(message.find("CreateSnapshot_Task on 'web01'"), std::string::npos) << message;
  EXPECT_NE(message.find("CESO_MODE=restricted"), std::string::npos) << message;
  EXPECT_NE(message.find("unset CESO_MODE"), std::string::npos) << message;
  auto records = read_records(dir / "audit.log");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["result"], "refused");
  EXPECT_EQ(records[0]["error"], message);
  EXPECT_EQ(records[0]["params"]["spec"]["password"], "[redacted]");
}

TEST(PolicyGate, DryRunEmitsAPlanAndCallsNoAction) {
  TempDir dir;
  std::vector<ordered_json> plans;
  ceso::Gate gate(settings(dir, ceso::Mode::standard, true), nullptr,
                  [&](const ordered_json& p) { plans.push_back(p); });
  EXPECT_TRUE(gate.dry_run());
  bool called = false;
  EXPECT_FALSE(gate.perform(snapshot_of_web01(), [&] { called = true; }));
  EXPECT_FALSE(called);
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_EQ(plans[0].dump(),
            R"({"type":"plan","tool":"ceso-test","endpoint":"esxi1.lab:443","vm":"web01",)"
            R"("vm_id":"vm-42","operation":"CreateSnapshot_Task",)"
            R"("params":{"name":"pre-upgrade","spec":{"password":"[redacted]"}}})");
  EXPECT_FALSE(fs::exists(dir / "audit.log"));  // nothing changed, nothing audited
}

TEST(PolicyGate, DryRunUnderRestrictedModePlansAndSaysItWouldBeRefused) {
  TempDir dir;
  std::vector<ordered_json> plans;
  ceso::Gate gate(settings(dir, ceso::Mode::restricted, true), nullptr,
                  [&](const ordered_json& p) { plans.push_back(p); });
  bool called = false;
  EXPECT_FALSE(gate.perform(snapshot_of_web01(), [&] { called = true; }));
  EXPECT_FALSE(called);
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_NE(plans[0]["refused"].get<std::string>().find("CESO_MODE=restricted"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir / "audit.log"));
}

TEST(PolicyGate, DefaultPlanSinkWritesARecordToStdout) {
  TempDir dir;
  ceso::Gate gate(settings(dir, ceso::Mode::standard, true));
  const std::string out_path = dir / "stdout";
  fflush(stdout);
  int saved = dup(STDOUT_FILENO);
  int fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  dup2(fd, STDOUT_FILENO);
  close(fd);
  gate.perform(snapshot_of_web01(), [] {});
  dup2(saved, STDOUT_FILENO);
  close(saved);
  auto records = read_records(out_path);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["type"], "plan");
}

TEST(PolicyGate, ActionErrorIsAuditedAndRethrownUnchanged) {
  TempDir dir;
  ceso::Gate gate(settings(dir));
  try {
    gate.perform(snapshot_of_web01(),
                 [] { throw ceso::Error("connection reset by peer", ceso::Exit::connection); });
    FAIL() << "not rethrown";
  } catch (const ceso::Error& e) {
    EXPECT_EQ(e.code(), ceso::Exit::connection);
    EXPECT_STREQ(e.what(), "connection reset by peer");
  }
  // Not a ceso::Error: still the same exception, not converted.
  EXPECT_THROW(gate.perform(snapshot_of_web01(), [] { throw std::out_of_range("index"); }),
               std::out_of_range);
  auto records = read_records(dir / "audit.log");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0]["result"], "error");
  EXPECT_EQ(records[0]["error"], "connection reset by peer");
  EXPECT_EQ(records[1]["result"], "error");
  EXPECT_EQ(records[1]["error"], "index");
  EXPECT_TRUE(ceso::verify_audit_log(dir / "audit.log").ok);
}

TEST(PolicyGate, AuditFailureNeverHidesWhatTheActionDid) {
  TempDir dir;
  std::ofstream(dir / "file") << "x";
  ceso::GateSettings s = settings(dir);
  s.audit_log = dir / "file/audit.log";  // cannot be created
  std::vector<std::string> reports;
  ceso::Gate gate(s, [&](const std::string& m) { reports.push_back(m); });
  bool called = false;
  EXPECT_TRUE(gate.perform(snapshot_of_web01(), [&] { called = true; }));
  EXPECT_TRUE(called);
  EXPECT_EQ(gate.audit_failures(), 1u);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_NE(reports[0].find("CreateSnapshot_Task on 'web01'"), std::string::npos) << reports[0];
  EXPECT_NE(reports[0].find("result: ok"), std::string::npos) << reports[0];

  // The action's own error still wins over the audit failure.
  EXPECT_THROW(gate.perform(snapshot_of_web01(), [] { throw ceso::Error("boom"); }), ceso::Error);
  EXPECT_EQ(gate.audit_failures(), 2u);
}

TEST(PolicyGate, SettingsComeFromTheEnvironment) {
  TempDir dir;
  ScopedEnv log("CESO_AUDIT_LOG", dir / "env/audit.log");
  ScopedEnv mode("CESO_MODE", "restricted");
  ScopedEnv corr("CESO_CORRELATION_ID", "pipeline-9");
  ceso::Gate gate("ceso-test", false, nullptr);
  EXPECT_EQ(gate.mode(), ceso::Mode::restricted);
  EXPECT_EQ(gate.settings().tool, "ceso-test");
  EXPECT_EQ(gate.audit_log().path(), dir / "env/audit.log");
  EXPECT_EQ(gate.settings().correlation_id, "pipeline-9");
  EXPECT_THROW(gate.perform(snapshot_of_web01(), [] {}), ceso::Error);
  auto records = read_records(dir / "env/audit.log");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["correlation_id"], "pipeline-9");
}

TEST(PolicyGate, BadEnvironmentFailsBeforeAnyChange) {
  TempDir dir;
  ScopedEnv log("CESO_AUDIT_LOG", dir / "audit.log");
  {
    ScopedEnv mode("CESO_MODE", "yolo");
    EXPECT_THROW(ceso::Gate("ceso-test", false, nullptr), ceso::Error);
  }
  {
    ScopedEnv corr("CESO_CORRELATION_ID", "bad\x01id");
    EXPECT_THROW(ceso::Gate("ceso-test", false, nullptr), ceso::Error);
  }
  std::ofstream(dir / "file") << "x";
  ScopedEnv unwritable("CESO_AUDIT_LOG", dir / "file/audit.log");
  try {
    ceso::Gate gate("ceso-test", false, nullptr);
    FAIL() << "an unwritable audit log was accepted";
  } catch (const ceso::Error& e) {
    EXPECT_EQ(e.code(), ceso::Exit::failure);
  }
  // A dry run needs no audit log.
  EXPECT_NO_THROW(ceso::Gate("ceso-test", true, nullptr));
}

// ceso-set, ceso-mkvm, ceso-clone and restores pass the ConfigSpec they send
// as XML text; the gate redacts it for plans and audit records alike, so no
// tool has to.
TEST(PolicyGate, ConfigSpecSecretsReachNeitherPlansNorTheAuditLog) {
  const std::string marker = "PolicyTestSecretMarker99";
  const std::string userdata = "#cloud-config\nwrite_files: [{path: /x, content: " + marker + "}]";
  const std::string spec =
      "<spec xsi:type=\"VirtualMachineConfigSpec\"><extraConfig xsi:type=\"OptionValue\">"
      "<key>guestinfo.userdata</key><value xsi:type=\"xsd:string\">" +
      userdata + "</value></extraConfig></spec>";
  ceso::Mutation m{"esxi1.lab:443", "web01", "vm-42", "ReconfigVM_Task", {{"spec", spec}}};
  TempDir dir;
  for (bool dry_run : {true, false}) {
    std::vector<ordered_json> plans;
    ceso::Gate gate(settings(dir, ceso::Mode::standard, dry_run), nullptr,
                    [&](const ordered_json& p) { plans.push_back(p); });
    gate.perform(m, [] {});
    for (const auto& p : plans) EXPECT_EQ(p.dump().find(marker), std::string::npos) << p.dump();
    EXPECT_EQ(gate.plan_record(m).dump().find(marker), std::string::npos);
  }
  std::ifstream in(dir / "audit.log");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find("guestinfo.userdata"), std::string::npos) << text.str();
  EXPECT_EQ(text.str().find(marker), std::string::npos) << text.str();
}

TEST(PolicyGate, SharedByThreads) {
  TempDir dir;
  ceso::Gate gate(settings(dir));
  constexpr int kThreads = 8, kEach = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&gate, t] {
      for (int i = 0; i < kEach; ++i) {
        ceso::Mutation m = snapshot_of_web01();
        m.vm = "vm" + std::to_string(t) + "-" + std::to_string(i);
        gate.perform(m, [] {});
      }
    });
  }
  for (auto& th : threads) th.join();
  auto v = ceso::verify_audit_log(dir / "audit.log");
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.lines, static_cast<size_t>(kThreads * kEach));
  std::set<std::string> vms;
  for (const auto& r : read_records(dir / "audit.log")) vms.insert(r["vm"].get<std::string>());
  EXPECT_EQ(vms.size(), static_cast<size_t>(kThreads * kEach));
}

}  // namespace
