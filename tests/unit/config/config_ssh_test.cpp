// config/config: SSH access of an endpoint (ssh, ssh_identity, ssh_host_key
// in a config entry; CESO_SSH, CESO_SSH_IDENTITY, CESO_SSH_HOST_KEY), the
// SSH address grammar and host key pins. A file of its own beside
// config_test.cpp so the topics merge apart.
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
using ceso::Error;
using ceso::Exit;

const std::string kPin = "SHA256:XdxVDWV9DxxIbl50k2ahdHogegJX89cYWms6kCbdIVQ";

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(SshAddress, Forms) {
  auto a = ceso::parse_ssh_access("esxi1.lab");
  EXPECT_EQ(a.user, "root");
  EXPECT_EQ(a.host, "esxi1.lab");
  EXPECT_EQ(a.port, 22);
  a = ceso::parse_ssh_access("admin@ESXi1.Lab:2222");
  EXPECT_EQ(a.user, "admin");
  EXPECT_EQ(a.host, "esxi1.lab");
  EXPECT_EQ(a.port, 2222);
  a = ceso::parse_ssh_access("root@192.0.2.10");
  EXPECT_EQ(a.host, "192.0.2.10");
  a = ceso::parse_ssh_access("root@[2001:DB8::1]:22022");
  EXPECT_EQ(a.host, "2001:db8::1");
  EXPECT_EQ(a.port, 22022);
  a = ceso::parse_ssh_access("[2001:db8::1]");
  EXPECT_EQ(a.host, "2001:db8::1");
  EXPECT_EQ(a.port, 22);
  a = ceso::parse_ssh_access("2001:db8::2");
  EXPECT_EQ(a.host, "2001:db8::2");
  a = ceso::parse_ssh_access("user@domain@host");  // the last '@' ends the user
  EXPECT_EQ(a.user, "user@domain");
  EXPECT_EQ(a.host, "host");
}

TEST(SshAddress, BadFormsNameTheReason) {
  struct Case {
    std::string text, why;
  } cases[] = {
      {"", "no host"},
      {"root@", "no host"},
      {"@host", "empty user"},
      {"root:secret@host", "no password"},
      {"root@host:", "port"},
      {"root@host:0", "port"},
      {"root@host:65536", "port"},
      {"root@host:22x", "port"},
      {"root@host name", "space or control"},
      {"root@host\n", "space or control"},
      {"root@h/st", "characters other than"},
      {"root@[2001:db8::1", "missing ']'"},
      {"root@[192.0.2.1]", "not an IPv6"},
      {"root@[2001:db8::1]x", "after ']'"},
      {"root@2001:db8::zz", "brackets"},
      {"ssh://root@host", "no password or path"},
      {"ssh.lab/x", "characters other than"},
  };
  for (const auto& c : cases) {
    try {
      ceso::parse_ssh_access(c.text);
      ADD_FAILURE() << "accepted " << c.text;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Exit::usage);
      EXPECT_TRUE(contains(e.what(), "bad SSH address")) << e.what();
      EXPECT_TRUE(contains(e.what(), c.why)) << c.text << ": " << e.what();
      EXPECT_FALSE(contains(e.what(), "\n"));
    }
  }
}

TEST(HostKeyPin, NormalizesAndRefuses) {
  const std::string good = "SHA256:XdxVDWV9DxxIbl50k2ahdHogegJX89cYWms6kCbdIVQ";
  EXPECT_EQ(ceso::normalize_host_key_pin(good), good);
  EXPECT_EQ(ceso::normalize_host_key_pin(good + "="), good);
  EXPECT_EQ(ceso::normalize_host_key_pin("sha256:" + good.substr(7)), good);
  for (std::string bad : {std::string("XdxVDWV9DxxIbl50k2ahdHogegJX89cYWms6kCbdIVQ"),
                          std::string("SHA256:short"), good + "A", good.substr(0, 49) + "!",
                          std::string("MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48"),
                          std::string("16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48"),
                          // 43 characters whose last one sets bits past the 32 bytes
                          good.substr(0, 49) + "R"}) {
    try {
      ceso::normalize_host_key_pin(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Exit::usage);
      EXPECT_NE(std::string(e.what()).find("not a SHA-256 host key fingerprint"),
                std::string::npos);
    }
  }
}

// A temporary HOME and a fake environment pointing at it.
class ConfigSsh : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "ceso-config-ssh-XXXXXX").string();
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
  void write_config(const std::string& text) {
    fs::path p = fs::path(home_) / ".config/ceso/config";
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
    ::chmod(p.c_str(), 0600);
  }
  ceso::Endpoint resolve(const std::string& host) {
    ceso::HostSelection sel;
    sel.name = host;
    return ceso::resolve_endpoint(sel, env());
  }
  std::string error_of(const std::function<void()>& f, Exit code) {
    try {
      f();
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      return e.what();
    }
    ADD_FAILURE() << "no error";
    return "";
  }
  std::string home_;
  std::map<std::string, std::string> vars_;
};

TEST_F(ConfigSsh, EntryKeys) {
  write_config(
      "hosts:\n"
      "  free:\n"
      "    url: esxi1.lab\n"
      "    ssh: root@esxi1.lab:2222\n"
      "    ssh_identity: keys/esxi_ed25519\n"
      "    ssh_host_key: " +
      kPin +
      "=\n"
      "  agent:\n"
      "    url: esxi2.lab\n"
      "    ssh: '[2001:db8::5]'\n"
      "    ssh_identity: agent\n"
      "  tilde:\n"
      "    url: esxi3.lab\n"
      "    ssh: esxi3.lab\n"
      "    ssh_identity: ~/.ssh/id_ecdsa\n"
      "  api-only:\n"
      "    url: vc.lab\n");
  auto ep = resolve("free");
  ASSERT_TRUE(ep.ssh);
  EXPECT_EQ(ep.ssh->user, "root");
  EXPECT_EQ(ep.ssh->host, "esxi1.lab");
  EXPECT_EQ(ep.ssh->port, 2222);
  EXPECT_EQ(ep.ssh->identity, home_ + "/.config/ceso/keys/esxi_ed25519");  // beside the config
  EXPECT_EQ(ep.ssh->host_key, kPin);
  EXPECT_EQ(ep.ssh->source, "config 'free'");
  ep = resolve("agent");
  ASSERT_TRUE(ep.ssh);
  EXPECT_EQ(ep.ssh->host, "2001:db8::5");
  EXPECT_EQ(ep.ssh->identity, "agent");
  EXPECT_EQ(ep.ssh->host_key, "");
  ep = resolve("tilde");
  EXPECT_EQ(ep.ssh->identity, home_ + "/.ssh/id_ecdsa");
  EXPECT_FALSE(resolve("api-only").ssh);
}

TEST_F(ConfigSsh, BadEntryValuesNameFileLineAndKey) {
  struct Case {
    std::string body, part;
  } cases[] = {
      {"    ssh: root@host:99999\n", "line 4: hosts.free.ssh: bad SSH address"},
      {"    ssh: root@host\n    ssh_host_key: SHA256:short\n",
       "line 5: hosts.free.ssh_host_key: 'SHA256:short' is not a SHA-256 host key"},
      {"    ssh_identity: agent\n", "hosts.free: ssh_identity without ssh"},
      {"    ssh_host_key: " + kPin + "\n", "hosts.free: ssh_host_key without ssh"},
      {"    ssh: [a, b]\n", "hosts.free.ssh: expected a single value"},
      {"    ssh_key: x\n", "unknown key 'ssh_key'"},
  };
  for (const auto& c : cases) {
    write_config("hosts:\n  free:\n    url: esxi1.lab\n" + c.body);
    auto msg = error_of([&] { resolve("free"); }, Exit::bad_input);
    EXPECT_TRUE(contains(msg, c.part)) << msg;
  }
}

TEST_F(ConfigSsh, EnvironmentBeforeTheEntry) {
  write_config(
      "hosts:\n  free:\n    url: esxi1.lab\n    ssh: root@esxi1.lab\n"
      "    ssh_identity: agent\n    ssh_host_key: " +
      kPin + "\n");
  vars_["CESO_SSH"] = "admin@192.0.2.7:2200";
  vars_["CESO_SSH_IDENTITY"] = "~/.ssh/id_ed25519";
  vars_["CESO_SSH_HOST_KEY"] = "sha256:" + kPin.substr(7);
  auto ep = resolve("free");
  ASSERT_TRUE(ep.ssh);
  EXPECT_EQ(ep.ssh->user, "admin");
  EXPECT_EQ(ep.ssh->host, "192.0.2.7");
  EXPECT_EQ(ep.ssh->port, 2200);
  EXPECT_EQ(ep.ssh->identity, home_ + "/.ssh/id_ed25519");
  EXPECT_EQ(ep.ssh->host_key, kPin);
  EXPECT_EQ(ep.ssh->source, "CESO_SSH");
  // One setting from the environment, the others from the entry.
  vars_.erase("CESO_SSH");
  vars_.erase("CESO_SSH_HOST_KEY");
  ep = resolve("free");
  EXPECT_EQ(ep.ssh->host, "esxi1.lab");
  EXPECT_EQ(ep.ssh->identity, home_ + "/.ssh/id_ed25519");
  EXPECT_EQ(ep.ssh->host_key, kPin);
}

TEST_F(ConfigSsh, EnvironmentAloneWithCesoUrl) {
  vars_["CESO_URL"] = "esxi9.lab";
  vars_["CESO_SSH"] = "esxi9.lab";
  ceso::HostSelection none;
  auto ep = ceso::resolve_endpoint(none, env());
  ASSERT_TRUE(ep.ssh);
  EXPECT_EQ(ep.ssh->host, "esxi9.lab");
  EXPECT_EQ(ep.ssh->identity, "");
  // CESO_* describe CESO_URL's host: not another one named with --url.
  ceso::HostSelection other;
  other.url = "esxi8.lab";
  EXPECT_FALSE(ceso::resolve_endpoint(other, env()).ssh);
  // The identity alone makes no SSH access.
  vars_.erase("CESO_SSH");
  vars_["CESO_SSH_IDENTITY"] = "agent";
  EXPECT_FALSE(ceso::resolve_endpoint(none, env()).ssh);
}

TEST_F(ConfigSsh, BadEnvironmentValuesNameTheVariable) {
  vars_["CESO_URL"] = "esxi9.lab";
  ceso::HostSelection none;
  vars_["CESO_SSH"] = "root@";
  auto msg = error_of([&] { ceso::resolve_endpoint(none, env()); }, Exit::usage);
  EXPECT_TRUE(contains(msg, "CESO_SSH: bad SSH address")) << msg;
  vars_["CESO_SSH"] = "root@esxi9.lab";
  vars_["CESO_SSH_HOST_KEY"] = "aa:bb:cc";
  msg = error_of([&] { ceso::resolve_endpoint(none, env()); }, Exit::usage);
  EXPECT_TRUE(contains(msg, "CESO_SSH_HOST_KEY:")) << msg;
  EXPECT_TRUE(contains(msg, "MD5")) << msg;
  vars_.erase("CESO_SSH_HOST_KEY");
  vars_["CESO_SSH_IDENTITY"] = "relative/key";
  msg = error_of([&] { ceso::resolve_endpoint(none, env()); }, Exit::usage);
  EXPECT_TRUE(contains(msg, "CESO_SSH_IDENTITY")) << msg;
}

TEST_F(ConfigSsh, KnownHostsFiles) {
  EXPECT_EQ(ceso::ssh_known_hosts_files(env()),
            (std::vector<std::string>{home_ + "/.ssh/known_hosts",
                                      home_ + "/.local/state/ceso/known_hosts"}));
  vars_["XDG_STATE_HOME"] = home_ + "/state";
  EXPECT_EQ(ceso::ssh_record_file(env()), home_ + "/state/ceso/known_hosts");
  EXPECT_EQ(ceso::ssh_known_hosts_files(env()).back(), home_ + "/state/ceso/known_hosts");
}

}  // namespace
