// Password commands (password_command, CESO_PASSWORD_COMMAND) and the
// endpoint allowlist (allow_hosts) as resolve_endpoint, endpoint_for_record
// and check_host_allowed apply them.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "base/error.hpp"
#include "config/config.hpp"

namespace {

namespace fs = std::filesystem;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class Policy : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "ceso-policy-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    home_ = tmpl;
    vars_["HOME"] = home_;
  }
  void TearDown() override { fs::remove_all(home_); }

  ceso::Environment env() const {
    auto vars = vars_;
    return [vars](std::string_view name) -> std::optional<std::string> {
      auto it = vars.find(std::string(name));
      if (it == vars.end()) return std::nullopt;
      return it->second;
    };
  }
  std::string write(const std::string& relative, const std::string& text, mode_t mode = 0600) {
    fs::path p = fs::path(home_) / relative;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
    ::chmod(p.c_str(), mode);
    return p.string();
  }
  std::string config_file() const { return home_ + "/.config/ceso/config"; }
  void write_config(const std::string& text) { write(".config/ceso/config", text); }

  // A script printing `output` (printf format) and exiting with `status`,
  // which also leaves a file behind, so tests can tell whether it ran.
  std::string script(const std::string& name, const std::string& output, int status = 0) {
    std::string ran = home_ + "/" + name + ".ran";
    std::string path = write(name,
                             "#!/bin/sh\n: >'" + ran + "'\nprintf '" + output + "'\nexit " +
                                 std::to_string(status) + "\n",
                             0700);
    return path;
  }
  bool ran(const std::string& name) const { return fs::exists(home_ + "/" + name + ".ran"); }

  ceso::Endpoint resolve(ceso::HostSelection a = {}) { return ceso::resolve_endpoint(a, env()); }
  static ceso::HostSelection host(const std::string& name) {
    ceso::HostSelection a;
    a.name = name;
    return a;
  }
  static ceso::HostSelection url(const std::string& u) {
    ceso::HostSelection a;
    a.url = u;
    return a;
  }
  ceso::Error error(ceso::HostSelection a = {}) {
    try {
      resolve(a);
    } catch (const ceso::Error& e) {
      return e;
    }
    ADD_FAILURE() << "no error";
    return ceso::Error("none", ceso::Exit::ok);
  }

  std::string home_;
  std::map<std::string, std::string> vars_;
};

// ------------------------------------------------------------ password_command

TEST_F(Policy, EntryPasswordCommandGivesTheFirstLineTrimmed) {
  std::string cmd = script("pw", "s3cret  \\t\\r\\nuser: root\\nurl: x\\n");
  write_config("hosts:\n  lab:\n    url: esxi1.lab\n    password_command: " + cmd + " show lab\n");
  EXPECT_EQ(resolve(host("lab")).password, "s3cret");
  // A list of words is taken as it is.
  write_config("hosts:\n  lab:\n    url: esxi1.lab\n    password_command: ['" + cmd +
               "', 'a b', \"it's\"]\n");
  EXPECT_EQ(resolve(host("lab")).password, "s3cret");
}

TEST_F(Policy, ArgumentsArePassedWithoutAShell) {
  // printf's own format is the first argument: quotes and $ reach it intact.
  write_config(
      "hosts:\n  lab:\n    url: esxi1.lab\n    password_command: printf '%s\\n' 'a $HOME b' "
      "\"c'd\"\n");
  EXPECT_EQ(resolve(host("lab")).password, "a $HOME b");
  write_config("hosts:\n  lab:\n    url: esxi1.lab\n    password_command: printf \"x\\\\\\\"y\"\n");
  EXPECT_EQ(resolve(host("lab")).password, "x\"y");
}

TEST_F(Policy, EnvironmentPasswordCommand) {
  vars_["CESO_URL"] = "esxi1.lab";
  vars_["CESO_PASSWORD_COMMAND"] = script("pw", "from-env\\n") + " show 'lab/esxi 1'";
  EXPECT_EQ(resolve().password, "from-env");
}

TEST_F(Policy, EnvironmentBeatsTheEntryAndTheEntryCommandDoesNotRun) {
  std::string entry = script("entry", "from-entry\\n");
  write_config("hosts:\n  lab:\n    url: esxi1.lab\n    password_command: " + entry + "\n");
  vars_["CESO_PASSWORD_COMMAND"] = script("env", "from-env\\n");
  EXPECT_EQ(resolve(host("lab")).password, "from-env");
  EXPECT_FALSE(ran("entry"));
  vars_.erase("CESO_PASSWORD_COMMAND");
  vars_["CESO_PASSWORD_FILE"] = write("pwfile", "from-file\n");
  EXPECT_EQ(resolve(host("lab")).password, "from-file");
  EXPECT_FALSE(ran("entry"));
  vars_.erase("CESO_PASSWORD_FILE");
  EXPECT_EQ(resolve(host("lab")).password, "from-entry");
  EXPECT_TRUE(ran("entry"));
}

TEST_F(Policy, EnvironmentCommandBelongsToCesoUrlsHost) {
  write_config("hosts:\n  other:\n    url: esxi2.lab\n");
  vars_["CESO_URL"] = "esxi1.lab";
  vars_["CESO_PASSWORD_COMMAND"] = script("env", "for-esxi1\\n");
  EXPECT_EQ(resolve(host("other")).password, "");
  EXPECT_FALSE(ran("env"));
  EXPECT_EQ(resolve().password, "for-esxi1");
}

TEST_F(Policy, EntryCommandIsOnlyForTheEntrysUser) {
  write_config("hosts:\n  lab:\n    url: esxi1.lab\n    user: root\n    password_command: " +
               script("entry", "root-pw\\n") + "\n");
  vars_["CESO_USER"] = "alice";
  EXPECT_EQ(resolve(host("lab")).password, "");
  EXPECT_FALSE(ran("entry"));
}

TEST_F(Policy, PasswordVariablesAreMutuallyExclusive) {
  vars_["CESO_URL"] = "esxi1.lab";
  vars_["CESO_PASSWORD_COMMAND"] = script("env", "x\\n");
  vars_["CESO_PASSWORD"] = "a";
  auto e = error();
  EXPECT_EQ(e.code(), ceso::Exit::usage);
  EXPECT_TRUE(contains(e.what(), "CESO_PASSWORD and CESO_PASSWORD_COMMAND are both set"))
      << e.what();
  vars_.erase("CESO_PASSWORD");
  vars_["CESO_PASSWORD_FILE"] = write("pwfile", "b\n");
  e = error();
  EXPECT_EQ(e.code(), ceso::Exit::usage);
  EXPECT_TRUE(contains(e.what(), "CESO_PASSWORD_FILE and CESO_PASSWORD_COMMAND are both set"))
      << e.what();
  vars_["CESO_PASSWORD"] = "a";
  e = error();
  EXPECT_EQ(e.code(), ceso::Exit::usage);
  EXPECT_TRUE(contains(e.what(), "are all set")) << e.what();
  EXPECT_FALSE(ran("env"));
}

TEST_F(Policy, EntryPasswordSourcesAreMutuallyExclusive) {
  for (const std::string other : {"password: x", "password_file: pw"}) {
    write_config("hosts:\n  lab:\n    url: esxi1.lab\n    " + other +
                 "\n    password_command: pass show lab\n");
    auto e = error(host("lab"));
    EXPECT_EQ(e.code(), ceso::Exit::bad_input) << other;
    EXPECT_TRUE(contains(e.what(),
                         "line 5: hosts.lab: give one of password, password_file and "
                         "password_command"))
        << e.what();
  }
}

TEST_F(Policy, MalformedCommandsNameTheKeyOrVariable) {
  for (const std::string bad : {"pass show 'lab", "gpg -d \"x", "pass show x | head -1", "'' a"}) {
    write_config("hosts:\n  lab:\n    url: esxi1.lab\n    password_command: >-\n      " + bad +
                 "\n");
    auto e = error(host("lab"));
    EXPECT_EQ(e.code(), ceso::Exit::bad_input) << bad;
    EXPECT_TRUE(contains(e.what(), config_file())) << e.what();
    EXPECT_TRUE(contains(e.what(), "hosts.lab.password_command: ")) << e.what();
  }
  write_config("hosts:\n  lab:\n    url: esxi1.lab\n    password_command: \"pass show 'lab\"\n");
  EXPECT_TRUE(contains(error(host("lab")).what(), "unterminated single quote"));
  for (const std::string empty : {"[]", "\"  \"", "['']"}) {
    write_config("hosts:\n  lab:\n    url: esxi1.lab\n    password_command: " + empty + "\n");
    EXPECT_EQ(error(host("lab")).code(), ceso::Exit::bad_input) << empty;
  }
  vars_["CESO_URL"] = "esxi1.lab";
  write_config("");
  vars_["CESO_PASSWORD_COMMAND"] = "pass show \"lab";
  auto e = error();
  EXPECT_EQ(e.code(), ceso::Exit::usage);
  EXPECT_TRUE(contains(e.what(), "CESO_PASSWORD_COMMAND: unterminated double quote")) << e.what();
}

TEST_F(Policy, FailingCommandsNameKeyAndProgramButNeverTheOutput) {
  std::string cmd = script("fails", "CesoLeakMarker\\n", 2);
  write_config("hosts:\n  lab:\n    url: esxi1.lab\n    password_command: " + cmd + "\n");
  auto e = error(host("lab"));
  EXPECT_EQ(e.code(), ceso::Exit::failure);
  EXPECT_TRUE(
      contains(e.what(), "config 'lab' password_command: '" + cmd + "' exited with status 2"))
      << e.what();
  EXPECT_FALSE(contains(e.what(), "CesoLeakMarker"));
  vars_["CESO_URL"] = "esxi1.lab";
  vars_["CESO_PASSWORD_COMMAND"] = "ceso-no-such-password-program";
  e = error();
  EXPECT_EQ(e.code(), ceso::Exit::failure);
  EXPECT_TRUE(contains(e.what(),
                       "CESO_PASSWORD_COMMAND: cannot run "
                       "'ceso-no-such-password-program'"))
      << e.what();
}

TEST_F(Policy, EmptyOutputIsAnError) {
  vars_["CESO_URL"] = "esxi1.lab";
  for (const std::string out : {"", "\\n", " \\t\\r\\n", "\\nsecond line\\n"}) {
    vars_["CESO_PASSWORD_COMMAND"] = script("empty", out);
    auto e = error();
    EXPECT_EQ(e.code(), ceso::Exit::failure) << out;
    EXPECT_TRUE(contains(e.what(), "printed no password")) << e.what();
  }
}

// ------------------------------------------------------------ allow_hosts

TEST_F(Policy, NoAllowListAllowsEveryHost) {
  write_config("hosts:\n  lab:\n    url: 192.0.2.10\n");
  EXPECT_EQ(resolve(host("lab")).host, "192.0.2.10");
  EXPECT_NO_THROW(ceso::check_host_allowed("anything.example", "backup target", env()));
}

TEST_F(Policy, AllowedHostsPassEveryWayIn) {
  write_config(
      "allow_hosts: [esxi1.lab, 192.0.2.0/24, '2001:db8::/32']\n"
      "hosts:\n  lab:\n    url: ESXI1.lab.\n  net:\n    url: https://192.0.2.77:8443/sdk\n");
  EXPECT_EQ(resolve(host("lab")).host, "esxi1.lab.");
  EXPECT_EQ(resolve(host("net")).port, 8443);
  EXPECT_EQ(resolve(url("[2001:db8::5]:443")).host, "2001:db8::5");
  vars_["CESO_URL"] = "esxi1.lab";
  EXPECT_EQ(resolve().host, "esxi1.lab");
  vars_.erase("CESO_URL");
  vars_["GOVC_URL"] = "192.0.2.1";
  EXPECT_EQ(resolve().host, "192.0.2.1");
}

TEST_F(Policy, OtherHostsAreRefusedFromEveryWayIn) {
  write_config(
      "# only the lab\nallow_hosts:\n  - esxi1.lab\n  - 192.0.2.0/24\n"
      "hosts:\n  other:\n    url: esxi2.lab\n  addr:\n    url: 198.51.100.1\n"
      "default: other\n");
  auto expect_refused = [&](ceso::HostSelection a, const std::string& source,
                            const std::string& h) {
    auto e = error(a);
    EXPECT_EQ(e.code(), ceso::Exit::policy) << e.what();
    EXPECT_EQ(std::string(e.what()), source + ": host '" + h +
                                         "' is not in allow_hosts (config file '" + config_file() +
                                         "', line 2); not connecting");
  };
  expect_refused(url("esxi9.lab"), "--url", "esxi9.lab");
  expect_refused(url("https://127.0.0.1:8989/sdk"), "--url", "127.0.0.1");
  expect_refused(url("localhost"), "--url", "localhost");
  expect_refused(url("[::ffff:198.51.100.1]"), "--url", "::ffff:198.51.100.1");
  expect_refused(url("lab.esxi1.lab"), "--url", "lab.esxi1.lab");
  expect_refused(host("other"), "config 'other'", "esxi2.lab");
  expect_refused(host("addr"), "config 'addr'", "198.51.100.1");
  expect_refused({}, "config 'other'", "esxi2.lab");  // default
  vars_["CESO_URL"] = "esxi3.lab";
  expect_refused({}, "CESO_URL", "esxi3.lab");
  vars_.erase("CESO_URL");
  vars_["GOVC_URL"] = "user:pw@203.0.113.9";
  expect_refused({}, "GOVC_URL", "203.0.113.9");
}

TEST_F(Policy, RefusalComesBeforeThePasswordIsFetched) {
  write_config(
      "allow_hosts: [esxi1.lab]\nhosts:\n  other:\n    url: esxi2.lab\n"
      "    password_command: " +
      script("entry", "pw\\n") + "\n");
  EXPECT_EQ(error(host("other")).code(), ceso::Exit::policy);
  EXPECT_FALSE(ran("entry"));
  vars_["CESO_PASSWORD_COMMAND"] = script("env", "pw\\n");
  EXPECT_EQ(error(url("esxi7.lab")).code(), ceso::Exit::policy);
  EXPECT_FALSE(ran("env"));
}

TEST_F(Policy, EmptyAllowListRefusesEverything) {
  write_config("allow_hosts: []\nhosts:\n  lab:\n    url: 127.0.0.1\n");
  EXPECT_EQ(error(host("lab")).code(), ceso::Exit::policy);
  EXPECT_EQ(error(url("localhost")).code(), ceso::Exit::policy);
}

TEST_F(Policy, RecordsFromHostsNotAllowedAreRefused) {
  write_config(
      "allow_hosts: [esxi1.lab]\nhosts:\n  lab:\n    url: esxi1.lab\n"
      "  two:\n    url: esxi2.lab\n");
  ceso::Endpoint def = resolve(host("lab"));
  EXPECT_EQ(ceso::endpoint_for_record("esxi1.lab:443", def, env()).host, "esxi1.lab");
  for (const std::string id : {"esxi2.lab:443", "esxi9.lab:443", "192.0.2.1:443"}) {
    try {
      ceso::endpoint_for_record(id, def, env());
      ADD_FAILURE() << "no error for " << id;
    } catch (const ceso::Error& e) {
      EXPECT_EQ(e.code(), ceso::Exit::policy) << e.what();
      EXPECT_TRUE(contains(e.what(), "record endpoint '" + id + "': host '")) << e.what();
      EXPECT_TRUE(contains(e.what(), "allow_hosts")) << e.what();
    }
  }
}

TEST_F(Policy, CheckHostAllowedForOtherTransports) {
  write_config("allow_hosts: [backup.lab, 192.0.2.0/24]\n");
  EXPECT_NO_THROW(ceso::check_host_allowed("BACKUP.lab", "backup target", env()));
  EXPECT_NO_THROW(ceso::check_host_allowed("[192.0.2.4]", "backup target", env()));
  try {
    ceso::check_host_allowed("nas.lab", "backup target", env());
    ADD_FAILURE() << "no error";
  } catch (const ceso::Error& e) {
    EXPECT_EQ(e.code(), ceso::Exit::policy);
    EXPECT_TRUE(contains(e.what(), "backup target: host 'nas.lab' is not in allow_hosts"))
        << e.what();
  }
}

TEST_F(Policy, MalformedAllowListNamesFileLineAndEntry) {
  struct Case {
    std::string yaml, expect;
  };
  for (const auto& c : std::vector<Case>{
           {"allow_hosts:\n", "line 1: allow_hosts: expected a list"},
           {"allow_hosts: esxi1.lab\n", "line 1: allow_hosts: expected a list"},
           {"allow_hosts:\n  - esxi1.lab\n  - 192.0.2.1/24\n",
            "line 3: allow_hosts: '192.0.2.1/24': host bits are set"},
           {"allow_hosts: ['*.lab']\n", "line 1: allow_hosts: '*.lab': wildcards"},
           {"allow_hosts: [10.1]\n", "line 1: allow_hosts: '10.1': a short or numeric IPv4 form"},
           {"allow_hosts: [[a]]\n", "line 1: allow_hosts: expected a single value"},
       }) {
    write_config(c.yaml + "hosts:\n  lab:\n    url: esxi1.lab\n");
    auto e = error(host("lab"));
    EXPECT_EQ(e.code(), ceso::Exit::bad_input) << c.yaml;
    EXPECT_TRUE(contains(e.what(), config_file() + "', " + c.expect)) << e.what();
  }
}

}  // namespace
