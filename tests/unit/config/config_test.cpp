#include "config/config.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "backup/catalog.hpp"
#include "base/error.hpp"

namespace {

namespace fs = std::filesystem;

const std::string kSha256Lower = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string kSha256 =
    "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:"
    "CD:EF";
const std::string kOtherSha256 =
    "FF:EE:DD:CC:BB:AA:99:88:77:66:55:44:33:22:11:00:FF:EE:DD:CC:BB:AA:99:88:77:66:55:44:33:22:"
    "11:00";
const std::string kSha1 = "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD";

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A temporary HOME with a fake environment pointing at it; files are written
// with an explicit mode.
class Fixture : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "ceso-config-test-XXXXXX").string();
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
  std::string write_config(const std::string& text, mode_t mode = 0600) {
    return write(".config/ceso/config", text, mode);
  }

  // Three hosts: esxi1 (default, password file), esxi2 (password in file),
  // vc (no credentials).
  void write_lab_config() {
    write(".config/ceso/esxi1.password", "pw-esxi1\n");
    write_config(R"(default: esxi1
hosts:
  esxi1:
    url: esxi1.lab
    password_file: esxi1.password
    thumbprint: ")" +
                 kSha256Lower + R"("
  esxi2:
    url: https://esxi2.lab:8443/sdk
    user: admin
    password: pw-esxi2
    insecure: true
  vc:
    url: https://vcenter.example/sdk
    user: administrator@vsphere.local
backup:
  target: file:///srv/backups
)");
  }

  // The host named on the command line: "url" (--url) and "host" (-H).
  static ceso::HostSelection args(
      const std::vector<std::pair<std::string, std::string>>& options = {}) {
    ceso::HostSelection a;
    for (const auto& [k, v] : options) (k == "url" ? a.url : a.name) = v;
    return a;
  }

  ceso::Endpoint resolve(const ceso::HostSelection& a) { return ceso::resolve_endpoint(a, env()); }
  ceso::Endpoint resolve() { return resolve(args()); }

  // The error resolve() throws, or a failure.
  ceso::Error resolve_error(const ceso::HostSelection& a) {
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

class ConfigUrl : public ::testing::Test {};
class ConfigThumbprint : public ::testing::Test {};
class ConfigPaths : public Fixture {};
class ConfigPrecedence : public Fixture {};
class ConfigGovc : public Fixture {};
class ConfigPasswordFile : public Fixture {};
class ConfigKnownHosts : public Fixture {};
class ConfigFile : public Fixture {};
class ConfigRecord : public Fixture {};

ceso::Error url_error(const std::string& text) {
  try {
    ceso::parse_endpoint_url(text);
  } catch (const ceso::Error& e) {
    return e;
  }
  ADD_FAILURE() << "no error for " << text;
  return ceso::Error("none", ceso::Exit::ok);
}

// ------------------------------------------------------------------ URLs

TEST_F(ConfigUrl, BareHost) {
  auto ep = ceso::parse_endpoint_url("esxi1.lab");
  EXPECT_EQ(ep.url, "https://esxi1.lab/sdk");
  EXPECT_EQ(ep.scheme, "https");
  EXPECT_EQ(ep.host, "esxi1.lab");
  EXPECT_EQ(ep.port, 443);
  EXPECT_EQ(ep.id, "esxi1.lab:443");
}

TEST_F(ConfigUrl, HostAndPort) {
  auto ep = ceso::parse_endpoint_url("esxi1.lab:8443");
  EXPECT_EQ(ep.url, "https://esxi1.lab:8443/sdk");
  EXPECT_EQ(ep.port, 8443);
  EXPECT_EQ(ep.id, "esxi1.lab:8443");
}

TEST_F(ConfigUrl, HttpsWithSdkPath) {
  auto ep = ceso::parse_endpoint_url("https://esxi1.lab/sdk");
  EXPECT_EQ(ep.url, "https://esxi1.lab/sdk");
  EXPECT_EQ(ep.id, "esxi1.lab:443");
}

TEST_F(ConfigUrl, HttpsWithPortAndPath) {
  auto ep = ceso::parse_endpoint_url("https://esxi1.lab:9443/sdk");
  EXPECT_EQ(ep.url, "https://esxi1.lab:9443/sdk");
  EXPECT_EQ(ep.id, "esxi1.lab:9443");
}

TEST_F(ConfigUrl, SimulatorHttp) {
  auto ep = ceso::parse_endpoint_url("http://127.0.0.1:8989/sdk");
  EXPECT_EQ(ep.url, "http://127.0.0.1:8989/sdk");
  EXPECT_EQ(ep.scheme, "http");
  EXPECT_EQ(ep.port, 8989);
  EXPECT_EQ(ep.id, "127.0.0.1:8989");
}

TEST_F(ConfigUrl, HttpDefaultsToPort80) {
  auto ep = ceso::parse_endpoint_url("http://localhost");
  EXPECT_EQ(ep.url, "http://localhost/sdk");
  EXPECT_EQ(ep.id, "localhost:80");
}

TEST_F(ConfigUrl, DefaultPortIsDroppedFromUrlButKeptInId) {
  auto ep = ceso::parse_endpoint_url("https://esxi1.lab:443/sdk");
  EXPECT_EQ(ep.url, "https://esxi1.lab/sdk");
  EXPECT_EQ(ep.id, "esxi1.lab:443");
}

TEST_F(ConfigUrl, SchemeAndHostAreCaseInsensitive) {
  auto ep = ceso::parse_endpoint_url("HTTPS://ESXi1.Lab/sdk");
  EXPECT_EQ(ep.url, "https://esxi1.lab/sdk");
  EXPECT_EQ(ep.id, "esxi1.lab:443");
}

TEST_F(ConfigUrl, BareSlashMeansSdk) {
  EXPECT_EQ(ceso::parse_endpoint_url("https://esxi1.lab/").url, "https://esxi1.lab/sdk");
}

TEST_F(ConfigUrl, OtherPathKept) {
  EXPECT_EQ(ceso::parse_endpoint_url("https://vc.example/other/sdk").url,
            "https://vc.example/other/sdk");
}

TEST_F(ConfigUrl, EmbeddedCredentialsAreDecodedAndNotInUrl) {
  auto ep = ceso::parse_endpoint_url("https://alice:p%40ss%3Aword@esxi1.lab/sdk");
  EXPECT_EQ(ep.user, "alice");
  EXPECT_EQ(ep.password, "p@ss:word");
  EXPECT_EQ(ep.url, "https://esxi1.lab/sdk");
}

TEST_F(ConfigUrl, UserWithDomainSplitsAtLastAt) {
  auto ep = ceso::parse_endpoint_url("administrator@vsphere.local@vc.example");
  EXPECT_EQ(ep.user, "administrator@vsphere.local");
  EXPECT_EQ(ep.host, "vc.example");
}

TEST_F(ConfigUrl, Ipv6InBrackets) {
  auto ep = ceso::parse_endpoint_url("[2001:DB8::1]");
  EXPECT_EQ(ep.host, "2001:db8::1");
  EXPECT_EQ(ep.url, "https://[2001:db8::1]/sdk");
  EXPECT_EQ(ep.id, "[2001:db8::1]:443");
}

TEST_F(ConfigUrl, Ipv6WithPortAndScheme) {
  auto ep = ceso::parse_endpoint_url("http://[::1]:8989/sdk");
  EXPECT_EQ(ep.host, "::1");
  EXPECT_EQ(ep.url, "http://[::1]:8989/sdk");
  EXPECT_EQ(ep.id, "[::1]:8989");
}

TEST_F(ConfigUrl, BareIpv6Literal) {
  auto ep = ceso::parse_endpoint_url("fe80::1");
  EXPECT_EQ(ep.url, "https://[fe80::1]/sdk");
  EXPECT_EQ(ep.id, "[fe80::1]:443");
}

TEST_F(ConfigUrl, Ipv4) {
  auto ep = ceso::parse_endpoint_url("10.0.0.5:444");
  EXPECT_EQ(ep.url, "https://10.0.0.5:444/sdk");
  EXPECT_EQ(ep.id, "10.0.0.5:444");
}

TEST_F(ConfigUrl, Ipv6WithoutSchemeWithAndWithoutPort) {
  auto ep = ceso::parse_endpoint_url("[2001:db8::1]:8443");
  EXPECT_EQ(ep.url, "https://[2001:db8::1]:8443/sdk");
  EXPECT_EQ(ep.id, "[2001:db8::1]:8443");
  ep = ceso::parse_endpoint_url("root@[2001:db8::1]");
  EXPECT_EQ(ep.user, "root");
  EXPECT_EQ(ep.url, "https://[2001:db8::1]/sdk");
  EXPECT_EQ(ep.id, "[2001:db8::1]:443");
  ep = ceso::parse_endpoint_url("root@2001:db8::1");  // bare, with a user
  EXPECT_EQ(ep.user, "root");
  EXPECT_EQ(ep.id, "[2001:db8::1]:443");
  ep = ceso::parse_endpoint_url("https://2001:DB8::2/sdk");  // bare, with a scheme
  EXPECT_EQ(ep.url, "https://[2001:db8::2]/sdk");
}

// A zone id is written %25 in a URL; the host keeps it as "%zone", and the
// zone (an interface name, which is case-sensitive) keeps its case.
TEST_F(ConfigUrl, Ipv6ZoneIds) {
  for (const char* text :
       {"[fe80::1%25eth0]:8443", "https://[fe80::1%25eth0]:8443/sdk", "[FE80::1%eth0]:8443"}) {
    auto ep = ceso::parse_endpoint_url(text);
    EXPECT_EQ(ep.host, "fe80::1%eth0") << text;
    EXPECT_EQ(ep.url, "https://[fe80::1%25eth0]:8443/sdk") << text;
    EXPECT_EQ(ep.id, "[fe80::1%eth0]:8443") << text;
  }
  auto ep = ceso::parse_endpoint_url("fe80::1%enP1s0");  // bare, no port
  EXPECT_EQ(ep.host, "fe80::1%enP1s0");
  EXPECT_EQ(ep.url, "https://[fe80::1%25enP1s0]/sdk");
  EXPECT_EQ(ceso::parse_endpoint_url(ep.url).id, ep.id);
}

TEST_F(ConfigUrl, PercentEncodedUserAndPath) {
  auto ep = ceso::parse_endpoint_url("alice%40corp.example@esxi1.lab");
  EXPECT_EQ(ep.user, "alice@corp.example");
  EXPECT_EQ(ep.url, "https://esxi1.lab/sdk");
  ep = ceso::parse_endpoint_url("https://svc%2Bbackup:p%20w@vc.example/my%20sdk");
  EXPECT_EQ(ep.user, "svc+backup");
  EXPECT_EQ(ep.password, "p w");
  EXPECT_EQ(ep.url, "https://vc.example/my%20sdk");  // the path is sent as written
}

TEST_F(ConfigUrl, UppercaseSchemeAndDefaultPorts) {
  auto ep = ceso::parse_endpoint_url("HTTP://127.0.0.1:8989/sdk");
  EXPECT_EQ(ep.scheme, "http");
  EXPECT_EQ(ep.url, "http://127.0.0.1:8989/sdk");
  EXPECT_EQ(ceso::parse_endpoint_url("Https://vc.example").id, "vc.example:443");
  EXPECT_EQ(ceso::parse_endpoint_url("hTTp://vc.example").id, "vc.example:80");
  EXPECT_EQ(ceso::parse_endpoint_url("http://vc.example:80/sdk").url, "http://vc.example/sdk");
  // The other scheme's default port is not a default: it stays in the URL.
  EXPECT_EQ(ceso::parse_endpoint_url("https://vc.example:80/sdk").url, "https://vc.example:80/sdk");
  EXPECT_EQ(ceso::parse_endpoint_url("http://vc.example:443").url, "http://vc.example:443/sdk");
}

// An IPv4 address in a form inet_aton reads (as the connection would) is
// one endpoint: the same id as its dotted quad.
TEST_F(ConfigUrl, Ipv4ShortFormsAreNormalized) {
  for (const char* text :
       {"http://127.1:8989/sdk", "http://0x7f.0.0.1:8989/sdk", "http://127.0.0.1:8989/sdk"}) {
    auto ep = ceso::parse_endpoint_url(text);
    EXPECT_EQ(ep.host, "127.0.0.1") << text;
    EXPECT_EQ(ep.id, "127.0.0.1:8989") << text;
  }
}

TEST_F(ConfigUrl, TrailingSlashes) {
  EXPECT_EQ(ceso::parse_endpoint_url("esxi1.lab/").url, "https://esxi1.lab/sdk");
  EXPECT_EQ(ceso::parse_endpoint_url("esxi1.lab:8443/").url, "https://esxi1.lab:8443/sdk");
  EXPECT_EQ(ceso::parse_endpoint_url("[::1]:8989/").url, "https://[::1]:8989/sdk");
  EXPECT_EQ(ceso::parse_endpoint_url("https://vc.example/sdk/").url, "https://vc.example/sdk/");
}

// What libcurl's URL parser accepts and an endpoint must not be: an empty
// host (curl reads "https:///sdk" as the host "sdk"), port 0, an empty
// query or fragment, malformed %-escapes, escaped control characters, an
// unbracketed IPv6 address with a port.
TEST_F(ConfigUrl, WhatCurlAcceptsIsStillRefused) {
  for (const char* bad : {"https:///sdk",
                          "https:///",
                          "esxi1:0",
                          "https://esxi1:0/sdk",
                          "https://esxi1:00000",
                          "https://esxi1?",
                          "https://esxi1/sdk#",
                          "https://esxi1/sdk#top",
                          "esxi1?x",
                          "https://esxi1/a%zz",
                          "https://esxi1/a%2",
                          "https://a%zz@esxi1",
                          "https://a:b%g1@esxi1",
                          "https://root:a%0Ab@esxi1",
                          "https://ro%00ot@esxi1",
                          "https://esxi1/a%0d%0aX:1",
                          "fe80::1:443:",
                          "2001:db8::1]:443",
                          "https://esxi1:+443",
                          "https://esxi1:-1",
                          "https://es%78i1",
                          "https://b%C3%BCcher.example",
                          "esxi1\t",
                          "\x7f"}) {
    auto e = url_error(bad);
    EXPECT_EQ(e.code(), ceso::Exit::usage) << bad;
    EXPECT_TRUE(contains(e.what(), "bad URL")) << bad << ": " << e.what();
  }
}

TEST_F(ConfigUrl, ReasonsNameTheFault) {
  EXPECT_TRUE(contains(url_error("https:///sdk").what(), "no host"));
  EXPECT_TRUE(contains(url_error("esxi1:0").what(), "port"));
  EXPECT_TRUE(contains(url_error("esxi1/sdk#x").what(), "query or fragment"));
  EXPECT_TRUE(contains(url_error("https://a:b%zz@esxi1").what(), "%-escape in the password"));
  EXPECT_TRUE(contains(url_error("https://a%0a@esxi1").what(), "%-escape in the user name"));
  EXPECT_TRUE(contains(url_error("2001:db8::zz").what(), "needs brackets"));
  EXPECT_TRUE(contains(url_error("ftp://esxi1").what(), "use https:// or http://"));
  EXPECT_TRUE(contains(url_error("bad!host").what(), "characters other than"));
}

TEST_F(ConfigUrl, MalformedUrlsAreUsageErrors) {
  for (const char* bad : {"", "ftp://esxi1", "esxi1:0", "esxi1:65536", "esxi1:https",
                          "esxi1:", "[::1", "[zz::1]", "[::1]x", "2001:db8::zz", "esxi1/sdk?x=1",
                          "bad host", "bad!host", "https:///sdk", "https://user@"}) {
    auto e = url_error(bad);
    EXPECT_EQ(e.code(), ceso::Exit::usage) << bad;
    EXPECT_TRUE(contains(e.what(), "bad URL")) << bad << ": " << e.what();
  }
}

TEST_F(ConfigUrl, ErrorsNeverShowThePassword) {
  auto e = url_error("https://root:s3cret@esxi1:99999/sdk");
  EXPECT_FALSE(contains(e.what(), "s3cret")) << e.what();
  EXPECT_TRUE(contains(e.what(), "https://***@esxi1:99999/sdk")) << e.what();
}

// Malformed URLs that carry user information, the host forgotten
// (CESO_URL=user:pass), or a password with characters that end the
// authority early: no error shows the password, nor the user information.
TEST_F(ConfigUrl, NoErrorEchoesUserInformation) {
  const std::string pw = "Pw9sEcReT";
  for (const std::string& bad : {"root:" + pw,
                                 "root:" + pw + "@",
                                 "https://root:" + pw + "@",
                                 "https://root:" + pw + "@/sdk",
                                 "root:" + pw + "@esxi1:99999",
                                 "https://root:" + pw + "@bad!host/sdk",
                                 "https://root:" + pw + "@esxi1/sdk?x=1",
                                 "https://root:pa#" + pw + "@esxi1/sdk",
                                 "https://root:pa?" + pw + "@esxi1",
                                 "https://root:pa/" + pw + "@esxi1",
                                 "root:pa/" + pw,
                                 "root:12#" + pw,
                                 "ftp://root:" + pw + "@esxi1",
                                 "root:" + pw + "@esxi1://x",
                                 "https://root:" + pw + "%zz@esxi1",
                                 "https://" + pw + "@",
                                 "https://root:" + pw + " x@esxi1",
                                 "https://root:" + pw + "@esxi1:0",
                                 "https://root:" + pw + "%0a@esxi1",
                                 "https://root:" + pw + "@esxi1/sdk#",
                                 "https://root:" + pw + "@/sdk",
                                 "https://root:" + pw + "@[::1/sdk",
                                 "root:" + pw + "@fe80::1:443:",
                                 "https://root:" + pw + "@es%78i1"}) {
    auto e = url_error(bad);
    EXPECT_EQ(e.code(), ceso::Exit::usage) << bad;
    EXPECT_FALSE(contains(e.what(), pw)) << bad << " -> " << e.what();
    // With an '@' the user is known to be one; without, "root" may be the host.
    if (contains(bad, "@")) EXPECT_FALSE(contains(e.what(), "root")) << bad << " -> " << e.what();
  }
}

TEST_F(ConfigUrl, RedactUrlKeepsWhatIsNotUserInformation) {
  EXPECT_EQ(ceso::redact_url("https://esxi1.lab:8443/sdk"), "https://esxi1.lab:8443/sdk");
  EXPECT_EQ(ceso::redact_url("esxi1:443"), "esxi1:443");
  EXPECT_EQ(ceso::redact_url("esxi1:"), "esxi1:");
  EXPECT_EQ(ceso::redact_url("[fe80::1]:443"), "[fe80::1]:443");
  EXPECT_EQ(ceso::redact_url("fe80::1"), "fe80::1");
  EXPECT_EQ(ceso::redact_url("file:///srv/backups"), "file:///srv/backups");
  EXPECT_EQ(ceso::redact_url("sftp://backup@nas:2222/srv"), "sftp://***@nas:2222/srv");
  EXPECT_EQ(ceso::redact_url("sftp://u:pw@nas/srv"), "sftp://***@nas/srv");
  EXPECT_EQ(ceso::redact_url("user:pw"), "user:***");
  EXPECT_EQ(ceso::redact_url("esxi1:https"), "esxi1:***");  // cannot tell: hidden
}

TEST_F(ConfigPrecedence, ConfigFileUrlErrorsDoNotShowThePassword) {
  write_config("hosts:\n  lab:\n    url: root:Pw9sEcReT\n");
  auto e = resolve_error(args({{"host", "lab"}}));
  EXPECT_EQ(e.code(), ceso::Exit::bad_input);
  EXPECT_TRUE(contains(e.what(), "line 3")) << e.what();
  EXPECT_FALSE(contains(e.what(), "Pw9sEcReT")) << e.what();
}

TEST_F(ConfigPrecedence, EnvironmentUrlErrorsDoNotShowThePassword) {
  for (const char* var : {"CESO_URL", "GOVC_URL"}) {
    vars_[var] = "root:Pw9sEcReT";
    auto e = resolve_error(args());
    EXPECT_EQ(e.code(), ceso::Exit::usage) << var;
    EXPECT_TRUE(contains(e.what(), var)) << e.what();
    EXPECT_FALSE(contains(e.what(), "Pw9sEcReT")) << e.what();
    vars_.erase(var);
  }
}

// ------------------------------------------------------------ thumbprints

TEST_F(ConfigThumbprint, LowerCaseWithoutColons) {
  EXPECT_EQ(ceso::normalize_thumbprint(kSha256Lower), kSha256);
}

TEST_F(ConfigThumbprint, MixedCaseWithColons) {
  EXPECT_EQ(ceso::normalize_thumbprint(
                "01:23:45:67:89:ab:CD:ef:01:23:45:67:89:AB:cd:EF:01:23:45:67:89:ab:cd:ef:01:23:"
                "45:67:89:ab:cd:ef"),
            kSha256);
}

TEST_F(ConfigThumbprint, Sha1IsNamedAndRejected) {
  try {
    ceso::normalize_thumbprint(kSha1);
    FAIL() << "no error";
  } catch (const ceso::Error& e) {
    EXPECT_EQ(e.code(), ceso::Exit::usage);
    EXPECT_TRUE(contains(e.what(), "SHA-1")) << e.what();
  }
}

TEST_F(ConfigThumbprint, MalformedRejected) {
  const std::vector<std::string> cases{
      "",
      "xyz",
      kSha256Lower + "00",                    // 33 bytes
      kSha256Lower.substr(1),                 // odd number of digits
      "0" + kSha256,                          // a 3-digit group
      kSha256.substr(0, kSha256.size() - 3),  // 31 bytes
      "0:1" + kSha256.substr(3),              // colons not between bytes
      kSha256 + ":",
      "zz" + kSha256Lower.substr(2),
  };
  for (const auto& bad : cases) EXPECT_THROW(ceso::normalize_thumbprint(bad), ceso::Error) << bad;
}

// ------------------------------------------------------------------ paths

TEST_F(ConfigPaths, XdgDefaultsUnderHome) {
  EXPECT_EQ(ceso::config_path(env()), home_ + "/.config/ceso/config");
  EXPECT_EQ(ceso::cache_dir(env()), home_ + "/.cache/ceso");
  EXPECT_EQ(ceso::state_dir(env()), home_ + "/.local/state/ceso");
}

TEST_F(ConfigPaths, XdgVariablesWin) {
  vars_["XDG_CONFIG_HOME"] = "/etc/xdg-c";
  vars_["XDG_CACHE_HOME"] = "/var/xdg-cache";
  vars_["XDG_STATE_HOME"] = "/var/xdg-state";
  EXPECT_EQ(ceso::config_path(env()), "/etc/xdg-c/ceso/config");
  EXPECT_EQ(ceso::cache_dir(env()), "/var/xdg-cache/ceso");
  EXPECT_EQ(ceso::state_dir(env()), "/var/xdg-state/ceso");
}

TEST_F(ConfigPaths, RelativeAndEmptyXdgValuesAreIgnored) {
  vars_["XDG_CONFIG_HOME"] = "relative/dir";
  vars_["XDG_CACHE_HOME"] = "";
  EXPECT_EQ(ceso::config_path(env()), home_ + "/.config/ceso/config");
  EXPECT_EQ(ceso::cache_dir(env()), home_ + "/.cache/ceso");
}

TEST_F(ConfigPaths, TildeExpansion) {
  EXPECT_EQ(ceso::expand_home("~", env()), home_);
  EXPECT_EQ(ceso::expand_home("~/x/y", env()), home_ + "/x/y");
  EXPECT_EQ(ceso::expand_home("/abs/~", env()), "/abs/~");
  EXPECT_EQ(ceso::expand_home("~other/x", env()), "~other/x");
}

// ------------------------------------------------------------- precedence

TEST_F(ConfigPrecedence, NoHostAnywhereIsUsageError) {
  auto e = resolve_error(args());
  EXPECT_EQ(e.code(), ceso::Exit::usage);
  EXPECT_EQ(std::string(e.what()),
            "no host given: use --url, -H NAME, CESO_URL, or a default in " + config_file());
}

TEST_F(ConfigPrecedence, NoHostMessageListsConfiguredNames) {
  write_config("hosts:\n  a:\n    url: a.lab\n  b:\n    url: b.lab\n");
  auto e = resolve_error(args());
  EXPECT_EQ(e.code(), ceso::Exit::usage);
  EXPECT_TRUE(contains(e.what(), "-H NAME (a, b)")) << e.what();
  EXPECT_EQ(ceso::resolve_endpoint_if_given(args(), env()), std::nullopt);
}

TEST_F(ConfigPrecedence, UrlOptionBeatsEverything) {
  write_lab_config();
  vars_["CESO_URL"] = "ceso.lab";
  vars_["GOVC_URL"] = "govc.lab";
  auto ep = resolve(args({{"url", "cli.lab"}}));
  EXPECT_EQ(ep.id, "cli.lab:443");
  EXPECT_EQ(ep.source, "--url");
  EXPECT_EQ(ep.config_name, "");
}

TEST_F(ConfigPrecedence, HostOptionBeatsEnvironmentUrl) {
  write_lab_config();
  vars_["CESO_URL"] = "ceso.lab";
  auto ep = resolve(args({{"host", "esxi2"}}));
  EXPECT_EQ(ep.url, "https://esxi2.lab:8443/sdk");
  EXPECT_EQ(ep.config_name, "esxi2");
  EXPECT_EQ(ep.source, "config 'esxi2'");
  EXPECT_EQ(ep.user, "admin");
  EXPECT_EQ(ep.password, "pw-esxi2");
  EXPECT_TRUE(ep.insecure);
}

TEST_F(ConfigPrecedence, UrlAndHostTogetherIsUsageError) {
  write_lab_config();
  EXPECT_EQ(resolve_error(args({{"url", "a.lab"}, {"host", "esxi1"}})).code(), ceso::Exit::usage);
}

TEST_F(ConfigPrecedence, CesoUrlBeatsGovcUrlAndConfigDefault) {
  write_lab_config();
  vars_["CESO_URL"] = "ceso.lab";
  vars_["GOVC_URL"] = "govc.lab";
  auto ep = resolve();
  EXPECT_EQ(ep.id, "ceso.lab:443");
  EXPECT_EQ(ep.source, "CESO_URL");
}

TEST_F(ConfigPrecedence, GovcUrlBeatsConfigDefault) {
  write_lab_config();
  vars_["GOVC_URL"] = "govc.lab";
  auto ep = resolve();
  EXPECT_EQ(ep.id, "govc.lab:443");
  EXPECT_EQ(ep.source, "GOVC_URL");
}

TEST_F(ConfigPrecedence, ConfigDefaultIsTheLastResort) {
  write_lab_config();
  auto ep = resolve();
  EXPECT_EQ(ep.url, "https://esxi1.lab/sdk");
  EXPECT_EQ(ep.id, "esxi1.lab:443");
  EXPECT_EQ(ep.source, "config 'esxi1'");
  EXPECT_EQ(ep.config_name, "esxi1");
  EXPECT_EQ(ep.user, "root");
  EXPECT_EQ(ep.password, "pw-esxi1");
  EXPECT_EQ(ep.thumbprint, kSha256);
  EXPECT_FALSE(ep.insecure);
}

TEST_F(ConfigPrecedence, UserDefaultsToRoot) {
  vars_["CESO_URL"] = "esxi9.lab";
  auto ep = resolve();
  EXPECT_EQ(ep.user, "root");
  EXPECT_EQ(ep.password, "");
}

TEST_F(ConfigPrecedence, UserInUrlOptionBeatsCesoUser) {
  vars_["CESO_USER"] = "bob";
  EXPECT_EQ(resolve(args({{"url", "alice@esxi1.lab"}})).user, "alice");
}

TEST_F(ConfigPrecedence, CesoUserBeatsUserInCesoUrl) {
  vars_["CESO_URL"] = "alice@esxi1.lab";
  EXPECT_EQ(resolve().user, "alice");
  vars_["CESO_USER"] = "bob";
  EXPECT_EQ(resolve().user, "bob");
}

TEST_F(ConfigPrecedence, PasswordInCesoUrlIsAccepted) {
  vars_["CESO_URL"] = "https://root:s3cret@esxi1.lab/sdk";
  auto ep = resolve();
  EXPECT_EQ(ep.password, "s3cret");
  EXPECT_EQ(ep.url, "https://esxi1.lab/sdk");
  vars_["CESO_PASSWORD"] = "from-variable";
  EXPECT_EQ(resolve().password, "from-variable");
}

TEST_F(ConfigPrecedence, PasswordInUrlOptionIsRefused) {
  vars_["CESO_PASSWORD"] = "irrelevant";
  auto e = resolve_error(args({{"url", "https://root:s3cret@esxi1.lab/sdk"}}));
  EXPECT_EQ(e.code(), ceso::Exit::usage);
  EXPECT_FALSE(contains(e.what(), "s3cret")) << e.what();
  EXPECT_TRUE(contains(e.what(), "command line")) << e.what();
  EXPECT_TRUE(contains(e.what(), "CESO_PASSWORD")) << e.what();
}

TEST_F(ConfigPrecedence, EmptyPasswordInUrlOptionIsRefusedToo) {
  EXPECT_EQ(resolve_error(args({{"url", "root:@esxi1.lab"}})).code(), ceso::Exit::usage);
}

TEST_F(ConfigPrecedence, UrlOptionTakesPasswordFromEnvironment) {
  vars_["CESO_PASSWORD"] = "pw";
  auto ep = resolve(args({{"url", "esxi7.lab"}}));
  EXPECT_EQ(ep.password, "pw");
}

TEST_F(ConfigPrecedence, EnvironmentBeatsHostEntryWhenNoEnvironmentUrl) {
  write_lab_config();
  vars_["CESO_PASSWORD"] = "one-off";
  vars_["CESO_INSECURE"] = "1";
  vars_["CESO_THUMBPRINT"] = kOtherSha256;
  auto ep = resolve(args({{"host", "esxi1"}}));
  EXPECT_EQ(ep.password, "one-off");
  EXPECT_TRUE(ep.insecure);
  EXPECT_EQ(ep.thumbprint, kOtherSha256);
}

TEST_F(ConfigPrecedence, EnvironmentSettingsStayWithCesoUrlHost) {
  write_lab_config();
  vars_["CESO_URL"] = "esxi1.lab";
  vars_["CESO_USER"] = "alice";
  vars_["CESO_PASSWORD"] = "for-esxi1-only";
  vars_["CESO_INSECURE"] = "1";
  vars_["CESO_THUMBPRINT"] = kOtherSha256;
  auto ep = resolve(args({{"host", "vc"}}));
  EXPECT_EQ(ep.id, "vcenter.example:443");
  EXPECT_EQ(ep.user, "administrator@vsphere.local");
  EXPECT_EQ(ep.password, "");
  EXPECT_FALSE(ep.insecure);
  EXPECT_EQ(ep.thumbprint, "");
  // Also for --url naming another host.
  auto other = resolve(args({{"url", "esxi5.lab"}}));
  EXPECT_EQ(other.user, "root");
  EXPECT_EQ(other.password, "");
}

TEST_F(ConfigPrecedence, EnvironmentAppliesWhenCommandLineNamesTheSameHost) {
  write_lab_config();
  vars_["CESO_URL"] = "https://ESXI1.lab:443/sdk";
  vars_["CESO_PASSWORD"] = "env-pw";
  auto ep = resolve(args({{"host", "esxi1"}}));
  EXPECT_EQ(ep.password, "env-pw");
  EXPECT_EQ(ep.config_name, "esxi1");
}

TEST_F(ConfigPrecedence, EnvironmentUrlPicksUpMatchingConfigEntry) {
  write_lab_config();
  vars_["CESO_URL"] = "https://esxi1.lab/sdk";
  auto ep = resolve();
  EXPECT_EQ(ep.source, "CESO_URL");
  EXPECT_EQ(ep.config_name, "esxi1");
  EXPECT_EQ(ep.password, "pw-esxi1");
  EXPECT_EQ(ep.thumbprint, kSha256);
}

TEST_F(ConfigPrecedence, EntryPasswordIsOnlyForItsUser) {
  write_lab_config();
  vars_["CESO_USER"] = "alice";
  auto ep = resolve(args({{"host", "esxi1"}}));
  EXPECT_EQ(ep.user, "alice");
  EXPECT_EQ(ep.password, "");
  EXPECT_EQ(ep.thumbprint, kSha256);  // host settings still apply
}

TEST_F(ConfigPrecedence, MatchingEntryPrefersTheSameUser) {
  write_config(R"(hosts:
  esxi1-root:
    url: esxi1.lab
    password: root-pw
  esxi1-backup:
    url: esxi1.lab
    user: backup
    password: backup-pw
)");
  vars_["CESO_URL"] = "backup@esxi1.lab";
  auto ep = resolve();
  EXPECT_EQ(ep.config_name, "esxi1-backup");
  EXPECT_EQ(ep.password, "backup-pw");
  vars_["CESO_URL"] = "esxi1.lab";
  EXPECT_EQ(resolve().password, "root-pw");
}

TEST_F(ConfigPrecedence, CesoInsecureZeroBeatsEntry) {
  write_lab_config();
  vars_["CESO_INSECURE"] = "0";
  EXPECT_FALSE(resolve(args({{"host", "esxi2"}})).insecure);
  vars_["CESO_INSECURE"] = "TRUE";
  EXPECT_TRUE(resolve(args({{"host", "esxi1"}})).insecure);
}

TEST_F(ConfigPrecedence, BadCesoInsecureNamesVariable) {
  vars_["CESO_URL"] = "esxi1.lab";
  vars_["CESO_INSECURE"] = "maybe";
  auto e = resolve_error(args());
  EXPECT_EQ(e.code(), ceso::Exit::usage);
  EXPECT_TRUE(contains(e.what(), "CESO_INSECURE")) << e.what();
}

TEST_F(ConfigPrecedence, CesoThumbprintIsNormalized) {
  vars_["CESO_URL"] = "esxi1.lab";
  vars_["CESO_THUMBPRINT"] = kSha256Lower;
  EXPECT_EQ(resolve().thumbprint, kSha256);
}

TEST_F(ConfigPrecedence, BadCesoThumbprintNamesVariable) {
  vars_["CESO_URL"] = "esxi1.lab";
  vars_["CESO_THUMBPRINT"] = kSha1;
  auto e = resolve_error(args());
  EXPECT_EQ(e.code(), ceso::Exit::usage);
  EXPECT_TRUE(std::string(e.what()).starts_with("CESO_THUMBPRINT: ")) << e.what();
}

TEST_F(ConfigPrecedence, BadCesoUrlNamesVariable) {
  vars_["CESO_URL"] = "esxi1.lab:http";
  auto e = resolve_error(args());
  EXPECT_EQ(e.code(), ceso::Exit::usage);
  EXPECT_TRUE(std::string(e.what()).starts_with("CESO_URL: bad URL")) << e.what();
}

TEST_F(ConfigPrecedence, BothPasswordVariablesIsUsageError) {
  vars_["CESO_URL"] = "esxi1.lab";
  vars_["CESO_PASSWORD"] = "a";
  vars_["CESO_PASSWORD_FILE"] = write("pw", "b\n");
  EXPECT_EQ(resolve_error(args()).code(), ceso::Exit::usage);
}

TEST_F(ConfigPrecedence, PlainHttpOnlyToLoopbackUnlessInsecure) {
  vars_["CESO_URL"] = "http://127.0.0.1:8989/sdk";
  EXPECT_EQ(resolve().url, "http://127.0.0.1:8989/sdk");
  vars_["CESO_URL"] = "http://[::1]:8989/sdk";
  EXPECT_EQ(resolve().id, "[::1]:8989");
  vars_["CESO_URL"] = "http://vcsim.ci:8989/sdk";
  EXPECT_EQ(resolve_error(args()).code(), ceso::Exit::policy);
  vars_["CESO_INSECURE"] = "1";
  EXPECT_EQ(resolve().id, "vcsim.ci:8989");
}

TEST_F(ConfigPrecedence, CaFile) {
  vars_["CESO_URL"] = "esxi1.lab";
  vars_["CESO_CA_FILE"] = "~/ca.pem";
  EXPECT_EQ(resolve_error(args()).code(), ceso::Exit::failure);
  write("ca.pem", "-----BEGIN CERTIFICATE-----\n", 0644);
  EXPECT_EQ(resolve().ca_file, home_ + "/ca.pem");
}

TEST_F(ConfigPrecedence, ConfigCaFileIsRelativeToConfigDir) {
  write(".config/ceso/lab-ca.pem", "x", 0644);
  write_config("default: a\nhosts:\n  a:\n    url: a.lab\n    ca_file: lab-ca.pem\n", 0644);
  EXPECT_EQ(resolve().ca_file, home_ + "/.config/ceso/lab-ca.pem");
}

// ------------------------------------------------------------------- govc

TEST_F(ConfigGovc, UrlWithCredentials) {
  vars_["GOVC_URL"] = "user:pass@esxi1.lab";
  auto ep = resolve();
  EXPECT_EQ(ep.url, "https://esxi1.lab/sdk");
  EXPECT_EQ(ep.user, "user");
  EXPECT_EQ(ep.password, "pass");
  EXPECT_EQ(ep.source, "GOVC_URL");
}

TEST_F(ConfigGovc, UsernamePasswordInsecure) {
  vars_["GOVC_URL"] = "esxi1.lab";
  vars_["GOVC_USERNAME"] = "gu";
  vars_["GOVC_PASSWORD"] = "gp";
  vars_["GOVC_INSECURE"] = "true";
  auto ep = resolve();
  EXPECT_EQ(ep.user, "gu");
  EXPECT_EQ(ep.password, "gp");
  EXPECT_TRUE(ep.insecure);
}

TEST_F(ConfigGovc, GovcUsernameBeatsUserInGovcUrlLikeGovc) {
  vars_["GOVC_URL"] = "u1:p1@esxi1.lab";
  vars_["GOVC_USERNAME"] = "u2";
  vars_["GOVC_PASSWORD"] = "p2";
  auto ep = resolve();
  EXPECT_EQ(ep.user, "u2");
  EXPECT_EQ(ep.password, "p2");
}

TEST_F(ConfigGovc, CesoVariablesWin) {
  vars_["CESO_URL"] = "ceso.lab";
  vars_["CESO_USER"] = "cu";
  vars_["CESO_PASSWORD"] = "cp";
  vars_["CESO_INSECURE"] = "0";
  vars_["GOVC_URL"] = "ceso.lab";
  vars_["GOVC_USERNAME"] = "gu";
  vars_["GOVC_PASSWORD"] = "gp";
  vars_["GOVC_INSECURE"] = "1";
  auto ep = resolve();
  EXPECT_EQ(ep.user, "cu");
  EXPECT_EQ(ep.password, "cp");
  EXPECT_FALSE(ep.insecure);
}

TEST_F(ConfigGovc, FallbacksFillUnsetCesoVariables) {
  vars_["CESO_URL"] = "esxi1.lab";
  vars_["GOVC_USERNAME"] = "gu";
  vars_["GOVC_PASSWORD"] = "gp";
  vars_["GOVC_INSECURE"] = "1";
  auto ep = resolve();
  EXPECT_EQ(ep.user, "gu");
  EXPECT_EQ(ep.password, "gp");
  EXPECT_TRUE(ep.insecure);
}

TEST_F(ConfigGovc, GovcInsecureFollowsGovcRule) {
  vars_["GOVC_URL"] = "esxi1.lab";
  vars_["GOVC_INSECURE"] = "yes";  // govc: only 1 and true mean true
  EXPECT_FALSE(resolve().insecure);
}

TEST_F(ConfigGovc, GovcCredentialsStayWithGovcUrlHost) {
  write_lab_config();
  vars_["GOVC_URL"] = "vcenter.example";
  vars_["GOVC_USERNAME"] = "administrator@vsphere.local";
  vars_["GOVC_PASSWORD"] = "vc-password";
  auto ep = resolve(args({{"host", "esxi2"}}));
  EXPECT_EQ(ep.user, "admin");
  EXPECT_EQ(ep.password, "pw-esxi2");
  // …but they do apply to the vc entry, which is the same host.
  auto vc = resolve(args({{"host", "vc"}}));
  EXPECT_EQ(vc.password, "vc-password");
}

TEST_F(ConfigGovc, UnparsableGovcUrlMattersOnlyWhenUsed) {
  vars_["GOVC_URL"] = "ftp://weird";
  vars_["CESO_URL"] = "esxi1.lab";
  EXPECT_EQ(resolve().id, "esxi1.lab:443");
  vars_.erase("CESO_URL");
  auto e = resolve_error(args());
  EXPECT_EQ(e.code(), ceso::Exit::usage);
  EXPECT_TRUE(std::string(e.what()).starts_with("GOVC_URL: bad URL")) << e.what();
}

// ---------------------------------------------------------- password files

TEST_F(ConfigPasswordFile, PrivateFileAccepted) {
  vars_["CESO_URL"] = "esxi1.lab";
  vars_["CESO_PASSWORD_FILE"] = write("pw", "secret\n", 0600);
  EXPECT_EQ(resolve().password, "secret");
}

TEST_F(ConfigPasswordFile, OnlyOneTrailingNewlineStripped) {
  vars_["CESO_URL"] = "esxi1.lab";
  vars_["CESO_PASSWORD_FILE"] = write("pw", "secret \n\n", 0400);
  EXPECT_EQ(resolve().password, "secret \n");
  vars_["CESO_PASSWORD_FILE"] = write("pw2", "dos\r\n", 0600);
  EXPECT_EQ(resolve().password, "dos");
  vars_["CESO_PASSWORD_FILE"] = write("pw3", "no-newline", 0600);
  EXPECT_EQ(resolve().password, "no-newline");
}

TEST_F(ConfigPasswordFile, PipeIsNotModeChecked) {
  // CESO_PASSWORD_FILE=<(pass show esxi1): a pipe, private to the process.
  std::string fifo = home_ + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  // The writer waits (non-blocking, bounded) for the reader, so a broken
  // resolve() fails the test instead of hanging it.
  std::thread writer([fifo] {
    for (int i = 0; i < 30000; ++i) {
      int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
      if (fd >= 0) {
        EXPECT_EQ(::write(fd, "from-pipe\n", 10), 10);
        ::close(fd);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  vars_["CESO_URL"] = "esxi1.lab";
  vars_["CESO_PASSWORD_FILE"] = fifo;
  std::string password;
  EXPECT_NO_THROW(password = resolve().password);
  writer.join();
  EXPECT_EQ(password, "from-pipe");
}

TEST_F(ConfigPasswordFile, TildeIsExpanded) {
  vars_["CESO_URL"] = "esxi1.lab";
  write("secrets/esxi1", "x\n");
  vars_["CESO_PASSWORD_FILE"] = "~/secrets/esxi1";
  EXPECT_EQ(resolve().password, "x");
}

TEST_F(ConfigPasswordFile, ReadableByOthersRefused) {
  vars_["CESO_URL"] = "esxi1.lab";
  std::string path = write("pw", "secret\n", 0644);
  vars_["CESO_PASSWORD_FILE"] = path;
  auto e = resolve_error(args());
  EXPECT_EQ(e.code(), ceso::Exit::policy);
  std::string msg = e.what();
  EXPECT_TRUE(contains(msg, "CESO_PASSWORD_FILE")) << msg;
  EXPECT_TRUE(contains(msg, "'" + path + "'")) << msg;
  EXPECT_TRUE(contains(msg, "0644")) << msg;
  EXPECT_TRUE(contains(msg, "chmod 600")) << msg;
  EXPECT_FALSE(contains(msg, "secret")) << msg;
}

TEST_F(ConfigPasswordFile, GroupReadableRefused) {
  vars_["CESO_URL"] = "esxi1.lab";
  vars_["CESO_PASSWORD_FILE"] = write("pw", "secret\n", 0640);
  EXPECT_EQ(resolve_error(args()).code(), ceso::Exit::policy);
}

TEST_F(ConfigPasswordFile, MissingFileNamed) {
  vars_["CESO_URL"] = "esxi1.lab";
  vars_["CESO_PASSWORD_FILE"] = home_ + "/nope";
  auto e = resolve_error(args());
  EXPECT_EQ(e.code(), ceso::Exit::failure);
  EXPECT_TRUE(contains(e.what(), home_ + "/nope")) << e.what();
}

TEST_F(ConfigPasswordFile, ConfigPasswordFileModeChecked) {
  write_lab_config();
  ::chmod((home_ + "/.config/ceso/esxi1.password").c_str(), 0604);
  auto e = resolve_error(args());
  EXPECT_EQ(e.code(), ceso::Exit::policy);
  EXPECT_TRUE(contains(e.what(), "config 'esxi1' password_file")) << e.what();
  EXPECT_TRUE(contains(e.what(), "0604")) << e.what();
}

// ------------------------------------------------------------- known hosts

TEST_F(ConfigKnownHosts, Sha256EntryForTheHostIsUsed) {
  vars_["CESO_URL"] = "esxi1.lab";
  vars_["GOVC_TLS_KNOWN_HOSTS"] = write("known_hosts",
                                        "# govc about.cert -k -thumbprint >> file\n"
                                        "other.lab " +
                                            kOtherSha256 +
                                            "\n"
                                            "\n"
                                            "esxi1.lab " +
                                            kSha256Lower + "\n",
                                        0644);
  auto ep = resolve();
  EXPECT_EQ(ep.thumbprint, kSha256);
  EXPECT_EQ(ep.thumbprint_sha1, "");
}

TEST_F(ConfigKnownHosts, Sha1EntryAsGovcWritesIt) {
  vars_["CESO_URL"] = "esxi1.lab";
  vars_["GOVC_TLS_KNOWN_HOSTS"] = write("known_hosts", "esxi1.lab " + kSha1 + "\n");
  auto ep = resolve();
  EXPECT_EQ(ep.thumbprint, "");
  EXPECT_EQ(ep.thumbprint_sha1, kSha1);
}

TEST_F(ConfigKnownHosts, HostWithPortAndLastMatchWins) {
  vars_["CESO_URL"] = "https://esxi1.lab:8443/sdk";
  vars_["GOVC_TLS_KNOWN_HOSTS"] = write("known_hosts",
                                        "esxi1.lab " + kOtherSha256 +
                                            "\n"  // port 443
                                            "esxi1.lab:8443 " +
                                            kOtherSha256 +
                                            "\n"
                                            "esxi1.lab:8443 " +
                                            kSha256 + "\n");
  EXPECT_EQ(resolve().thumbprint, kSha256);
}

TEST_F(ConfigKnownHosts, FileListAndMissingFiles) {
  vars_["CESO_URL"] = "[2001:db8::5]";
  std::string a = write("kh-a", "esxi1.lab " + kOtherSha256 + "\n");
  std::string b = write("kh-b", "[2001:db8::5]:443 " + kSha256 + "\n");
  vars_["GOVC_TLS_KNOWN_HOSTS"] = a + ":" + home_ + "/missing:" + b;
  EXPECT_EQ(resolve().thumbprint, kSha256);
}

TEST_F(ConfigKnownHosts, ExplicitThumbprintAndInsecureWin) {
  vars_["CESO_URL"] = "esxi1.lab";
  vars_["GOVC_TLS_KNOWN_HOSTS"] = write("known_hosts", "esxi1.lab " + kSha256 + "\n");
  vars_["CESO_THUMBPRINT"] = kOtherSha256;
  EXPECT_EQ(resolve().thumbprint, kOtherSha256);
  vars_.erase("CESO_THUMBPRINT");
  vars_["CESO_INSECURE"] = "1";
  auto ep = resolve();
  EXPECT_TRUE(ep.insecure);
  EXPECT_EQ(ep.thumbprint, "");
}

TEST_F(ConfigKnownHosts, ConfigThumbprintBeatsKnownHosts) {
  write_lab_config();
  vars_["GOVC_TLS_KNOWN_HOSTS"] = write("known_hosts", "esxi1.lab " + kOtherSha256 + "\n");
  EXPECT_EQ(resolve().thumbprint, kSha256);
}

TEST_F(ConfigKnownHosts, BadThumbprintForTheHostNamesFileAndLine) {
  vars_["CESO_URL"] = "esxi1.lab";
  std::string path = write("known_hosts", "other.lab junk\nesxi1.lab 12:34\n");
  vars_["GOVC_TLS_KNOWN_HOSTS"] = path;
  auto e = resolve_error(args());
  EXPECT_EQ(e.code(), ceso::Exit::bad_input);
  EXPECT_TRUE(contains(e.what(), "'" + path + "', line 2")) << e.what();
}

// ------------------------------------------------------------- config file

TEST_F(ConfigFile, SeveralHostsAndHostOption) {
  write_lab_config();
  EXPECT_EQ(ceso::config_host_names(env()), (std::vector<std::string>{"esxi1", "esxi2", "vc"}));
  auto vc = resolve(args({{"host", "vc"}}));
  EXPECT_EQ(vc.url, "https://vcenter.example/sdk");
  EXPECT_EQ(vc.user, "administrator@vsphere.local");
  EXPECT_EQ(vc.config_name, "vc");
  auto e1 = resolve(args({{"host", "esxi1"}}));
  EXPECT_EQ(e1.password, "pw-esxi1");
}

TEST_F(ConfigFile, UnknownHostNameListsKnownNames) {
  write_lab_config();
  auto e = resolve_error(args({{"host", "esxi3"}}));
  EXPECT_EQ(e.code(), ceso::Exit::usage);
  std::string msg = e.what();
  EXPECT_TRUE(contains(msg, "'esxi3'")) << msg;
  EXPECT_TRUE(contains(msg, "esxi1, esxi2, vc")) << msg;
  EXPECT_TRUE(contains(msg, config_file())) << msg;
}

TEST_F(ConfigFile, UnknownHostNameWithoutConfigFile) {
  auto e = resolve_error(args({{"host", "esxi1"}}));
  EXPECT_EQ(e.code(), ceso::Exit::usage);
  EXPECT_TRUE(contains(e.what(), "no such file")) << e.what();
}

TEST_F(ConfigFile, MalformedYamlReportsLine) {
  write_config("hosts:\n  esxi1:\n    url: [unclosed\n");
  auto e = resolve_error(args({{"url", "x.lab"}}));
  EXPECT_EQ(e.code(), ceso::Exit::bad_input);
  EXPECT_TRUE(contains(e.what(), "config file '" + config_file() + "', line ")) << e.what();
}

TEST_F(ConfigFile, UnknownKeyReportsLineAndKey) {
  write_config("hosts:\n  esxi1:\n    url: esxi1.lab\n    pasword: x\n");
  auto e = resolve_error(args({{"host", "esxi1"}}));
  EXPECT_EQ(e.code(), ceso::Exit::bad_input);
  std::string msg = e.what();
  EXPECT_TRUE(contains(msg, "line 4")) << msg;
  EXPECT_TRUE(contains(msg, "hosts.esxi1")) << msg;
  EXPECT_TRUE(contains(msg, "'pasword'")) << msg;
}

TEST_F(ConfigFile, UnknownTopLevelKey) {
  write_config("defualt: esxi1\n");
  auto e = resolve_error(args());
  EXPECT_EQ(e.code(), ceso::Exit::bad_input);
  EXPECT_TRUE(contains(e.what(), "line 1: unknown key 'defualt'")) << e.what();
}

TEST_F(ConfigFile, DuplicateKeyRefused) {
  write_config("hosts:\n  a:\n    url: a.lab\n    url: b.lab\n");
  auto e = resolve_error(args());
  EXPECT_EQ(e.code(), ceso::Exit::bad_input);
  EXPECT_TRUE(contains(e.what(), "line 4: duplicate key 'hosts.a.url'")) << e.what();
}

TEST_F(ConfigFile, SchemaErrors) {
  struct Case {
    const char* text;
    const char* expect;
  };
  for (const Case& c : {
           Case{"- a\n- b\n", "line 1: expected a mapping"},
           Case{"hosts:\n  a:\n    user: x\n", "line 2: hosts.a: missing url"},
           Case{"hosts:\n  a:\n", "line 2: hosts.a: expected a mapping"},
           Case{"hosts:\n  a:\n    url: a.lab:99999\n", "line 3: hosts.a.url: bad URL"},
           Case{"hosts:\n  a:\n    url: a.lab\n    insecure: maybe\n",
                "line 4: hosts.a.insecure: expected true or false"},
           Case{"hosts:\n  a:\n    url: a.lab\n    thumbprint: abc\n",
                "line 4: hosts.a.thumbprint: 'abc' is not a SHA-256"},
           Case{"hosts:\n  a:\n    url: [a, b]\n", "line 3: hosts.a.url: expected a single value"},
           Case{"default: b\nhosts:\n  a:\n    url: a.lab\n", "line 1: default: 'b' is not a host"},
           Case{"hosts:\n  a:\n    url: a.lab\n    password: x\n    password_file: f\n",
                "line 5: hosts.a: give one of password, password_file and password_command"},
           Case{"backup:\n  target: x\n  keep: 3\n", "line 3: backup: unknown key 'keep'"},
       }) {
    write_config(c.text);
    try {
      ceso::config_host_names(env());
      ADD_FAILURE() << "no error for:\n" << c.text;
    } catch (const ceso::Error& e) {
      EXPECT_EQ(e.code(), ceso::Exit::bad_input) << c.text;
      EXPECT_TRUE(contains(e.what(), c.expect)) << e.what() << "\nwanted: " << c.expect;
    }
  }
}

TEST_F(ConfigFile, EmptyFileIsFine) {
  write_config("", 0644);
  EXPECT_TRUE(ceso::config_host_names(env()).empty());
  write_config("# only comments\n", 0644);
  EXPECT_TRUE(ceso::config_host_names(env()).empty());
}

TEST_F(ConfigFile, PasswordInReadableConfigRefused) {
  std::string path = write_config("hosts:\n  a:\n    url: a.lab\n    password: x\n", 0644);
  auto e = resolve_error(args({{"url", "unrelated.lab"}}));
  EXPECT_EQ(e.code(), ceso::Exit::policy);
  EXPECT_TRUE(contains(e.what(), "'" + path + "' has mode 0644")) << e.what();
  EXPECT_TRUE(contains(e.what(), "chmod 600")) << e.what();
}

TEST_F(ConfigFile, PasswordInReadableConfigUrlRefused) {
  write_config("hosts:\n  a:\n    url: root:x@a.lab\n", 0640);
  EXPECT_EQ(resolve_error(args({{"host", "a"}})).code(), ceso::Exit::policy);
}

TEST_F(ConfigFile, PrivateConfigWithPasswordAccepted) {
  write_config("default: a\nhosts:\n  a:\n    url: a.lab\n    password: \"0123\"\n", 0600);
  EXPECT_EQ(resolve().password, "0123");
}

TEST_F(ConfigFile, ReadableConfigWithoutPasswordAccepted) {
  write_config("default: a\nhosts:\n  a:\n    url: a.lab\n    insecure: yes\n", 0644);
  auto ep = resolve();
  EXPECT_EQ(ep.id, "a.lab:443");
  EXPECT_TRUE(ep.insecure);
}

TEST_F(ConfigFile, XdgConfigHomeIsUsed) {
  vars_["XDG_CONFIG_HOME"] = home_ + "/xdg";
  write("xdg/ceso/config", "default: x\nhosts:\n  x:\n    url: x.lab\n", 0644);
  EXPECT_EQ(resolve().id, "x.lab:443");
}

TEST_F(ConfigFile, BackupTarget) {
  EXPECT_EQ(ceso::config_backup_target(env()), std::nullopt);
  write_lab_config();
  EXPECT_EQ(ceso::config_backup_target(env()), "file:///srv/backups");
}

TEST_F(ConfigFile, PromotionFiles) {
  // Defaults: next to the config file.
  auto files = ceso::promotion_files(env());
  EXPECT_EQ(files.key, home_ + "/.config/ceso/promotion.pub");
  EXPECT_EQ(files.revoked, home_ + "/.config/ceso/revoked-promotions");
  write(".config/ceso/config", "promotion:\n  key: keys/op.pub\n  revoked: ~/rev\n", 0644);
  files = ceso::promotion_files(env());
  EXPECT_EQ(files.key, home_ + "/.config/ceso/keys/op.pub");
  EXPECT_EQ(files.revoked, home_ + "/rev");
  EXPECT_NE(files.key_source.find("promotion.key"), std::string::npos);
  write(".config/ceso/config", "promotion:\n  kee: x\n", 0644);
  try {
    ceso::promotion_files(env());
    ADD_FAILURE();
  } catch (const ceso::Error& e) {
    EXPECT_NE(std::string(e.what()).find("promotion: unknown key 'kee'"), std::string::npos);
  }
}

TEST_F(ConfigFile, MetricsSettings) {
  // Nothing set: no metrics.
  EXPECT_EQ(ceso::metrics_settings(env()).dir, "");
  EXPECT_FALSE(ceso::metrics_settings(env()).vm_labels);
  // From the config file: a relative dir is relative to the file's directory.
  write_config("metrics:\n  dir: prom\n  vm_labels: true\n");
  auto m = ceso::metrics_settings(env());
  EXPECT_EQ(m.dir, home_ + "/.config/ceso/prom");
  EXPECT_TRUE(m.vm_labels);
  EXPECT_TRUE(contains(m.source, "metrics.dir")) << m.source;
  // The variables win, each on its own.
  vars_["CESO_METRICS_DIR"] = "~/textfile";
  m = ceso::metrics_settings(env());
  EXPECT_EQ(m.dir, home_ + "/textfile");
  EXPECT_TRUE(m.vm_labels);
  EXPECT_EQ(m.source, "CESO_METRICS_DIR");
  vars_["CESO_METRICS_VM_LABELS"] = "off";
  EXPECT_FALSE(ceso::metrics_settings(env()).vm_labels);
  vars_["CESO_METRICS_VM_LABELS"] = "maybe";
  EXPECT_THROW(ceso::metrics_settings(env()), ceso::Error);
  vars_.erase("CESO_METRICS_VM_LABELS");
  vars_["CESO_METRICS_DIR"] = "relative/dir";
  try {
    ceso::metrics_settings(env());
    FAIL();
  } catch (const ceso::Error& e) {
    EXPECT_TRUE(contains(e.what(), "CESO_METRICS_DIR: 'relative/dir' is not an absolute path"))
        << e.what();
    EXPECT_EQ(e.code(), ceso::Exit::usage);
  }
  vars_.erase("CESO_METRICS_DIR");
  // Strict like the rest of the file.
  write_config("metrics:\n  directory: /x\n");
  try {
    ceso::metrics_settings(env());
    FAIL();
  } catch (const ceso::Error& e) {
    EXPECT_TRUE(contains(e.what(),
                         "line 2: metrics: unknown key 'directory' (expected dir, "
                         "vm_labels)"))
        << e.what();
  }
  write_config("metrics:\n  vm_labels: sometimes\n");
  EXPECT_THROW(ceso::metrics_settings(env()), ceso::Error);
  write_config("metrics: /x\n");
  EXPECT_THROW(ceso::metrics_settings(env()), ceso::Error);
}

// ------------------------------------------------------------------ records

TEST_F(ConfigRecord, SameEndpointReturnsDefault) {
  write_lab_config();
  auto def = resolve();
  def.password = "marker";
  EXPECT_EQ(ceso::endpoint_for_record("esxi1.lab:443", def, env()).password, "marker");
}

TEST_F(ConfigRecord, ConfigEntryByEndpointId) {
  write_lab_config();
  auto def = resolve();
  auto ep = ceso::endpoint_for_record("esxi2.lab:8443", def, env());
  EXPECT_EQ(ep.config_name, "esxi2");
  EXPECT_EQ(ep.user, "admin");
  EXPECT_EQ(ep.password, "pw-esxi2");
  EXPECT_EQ(ep.source, "config 'esxi2'");
}

TEST_F(ConfigRecord, EnvironmentHostByEndpointId) {
  write_lab_config();
  vars_["CESO_URL"] = "http://127.0.0.1:8989/sdk";
  vars_["CESO_PASSWORD"] = "sim";
  auto def = resolve(args({{"host", "esxi2"}}));
  auto ep = ceso::endpoint_for_record("127.0.0.1:8989", def, env());
  EXPECT_EQ(ep.url, "http://127.0.0.1:8989/sdk");
  EXPECT_EQ(ep.password, "sim");
  EXPECT_EQ(ep.source, "CESO_URL");
}

TEST_F(ConfigRecord, WithoutDefaultEndpoint) {
  write_lab_config();
  auto ep = ceso::endpoint_for_record("vcenter.example:443", std::nullopt, env());
  EXPECT_EQ(ep.config_name, "vc");
}

TEST_F(ConfigRecord, UnknownHostGetsNoCredentials) {
  write_lab_config();
  vars_["CESO_PASSWORD"] = "must-not-leak";
  auto def = resolve();
  try {
    ceso::endpoint_for_record("evil.example:443", def, env());
    FAIL() << "no error";
  } catch (const ceso::Error& e) {
    EXPECT_EQ(e.code(), ceso::Exit::failure);
    EXPECT_EQ(std::string(e.what()),
              "record is from host 'evil.example:443' but no credentials for it are configured; "
              "add it to " +
                  config_file() + " or set CESO_URL");
  }
}

TEST_F(ConfigRecord, MalformedEndpointIsBadInput) {
  try {
    ceso::endpoint_for_record("esxi1:notaport", std::nullopt, env());
    FAIL() << "no error";
  } catch (const ceso::Error& e) {
    EXPECT_EQ(e.code(), ceso::Exit::bad_input);
    EXPECT_TRUE(contains(e.what(), "'esxi1:notaport'")) << e.what();
  }
}

// ------------------------------------------------------------------ limits

class ConfigLimits : public Fixture {};

TEST_F(ConfigLimits, Defaults) {
  vars_["CESO_URL"] = "esxi9.lab";
  auto ep = resolve();
  EXPECT_EQ(ep.idle_timeout_s, 60);
  EXPECT_EQ(ep.call_timeout_s, 300);
  EXPECT_EQ(ep.max_answer_bytes, 64ull << 20);
}

TEST_F(ConfigLimits, EnvironmentBeatsConfigEntryBeatsDefault) {
  write_config(R"(hosts:
  esxi1:
    url: esxi1.lab
    idle_timeout: 30
    call_timeout: 0
    max_answer_mib: 256
)");
  auto ep = resolve(args({{"host", "esxi1"}}));
  EXPECT_EQ(ep.idle_timeout_s, 30);
  EXPECT_EQ(ep.call_timeout_s, 0);  // 0: no limit
  EXPECT_EQ(ep.max_answer_bytes, 256ull << 20);
  vars_["CESO_IDLE_TIMEOUT"] = "5";
  vars_["CESO_CALL_TIMEOUT"] = "7";
  vars_["CESO_MAX_ANSWER_MIB"] = "2";
  ep = resolve(args({{"host", "esxi1"}}));
  EXPECT_EQ(ep.idle_timeout_s, 5);
  EXPECT_EQ(ep.call_timeout_s, 7);
  EXPECT_EQ(ep.max_answer_bytes, 2ull << 20);
}

TEST_F(ConfigLimits, EnvironmentAppliesToAHostChosenElsewhere) {
  // Not credentials: CESO_URL naming another host does not keep them away.
  vars_["CESO_URL"] = "esxi1.lab";
  vars_["CESO_CALL_TIMEOUT"] = "9";
  EXPECT_EQ(resolve(args({{"url", "esxi2.lab"}})).call_timeout_s, 9);
}

TEST_F(ConfigLimits, MalformedEnvironmentValuesAreUsageErrors) {
  vars_["CESO_URL"] = "esxi1.lab";
  for (auto [var, value] : std::vector<std::pair<std::string, std::string>>{
           {"CESO_IDLE_TIMEOUT", "abc"},
           {"CESO_IDLE_TIMEOUT", "-1"},
           {"CESO_CALL_TIMEOUT", "1.5"},
           {"CESO_CALL_TIMEOUT", "604801"},
           {"CESO_MAX_ANSWER_MIB", "0"},
           {"CESO_MAX_ANSWER_MIB", "4097"},
           {"CESO_MAX_ANSWER_MIB", "99999999999999999999"}}) {
    auto saved = vars_;
    vars_[var] = value;
    auto e = resolve_error(args());
    EXPECT_EQ(e.code(), ceso::Exit::usage) << var << "=" << value;
    EXPECT_TRUE(contains(e.what(), var + ": '" + value + "'")) << e.what();
    vars_ = saved;
  }
}

TEST_F(ConfigLimits, MalformedConfigValuesNameFileLineAndKey) {
  write_config(R"(hosts:
  esxi1:
    url: esxi1.lab
    idle_timeout: soon
)");
  auto e = resolve_error(args({{"host", "esxi1"}}));
  EXPECT_EQ(e.code(), ceso::Exit::bad_input);
  EXPECT_TRUE(contains(e.what(), "line 4: hosts.esxi1.idle_timeout: 'soon' is not a whole number"))
      << e.what();
}

}  // namespace

// ------------------------------------------------------------ private files

namespace {

class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : old_(::umask(mask)) {}
  ~ScopedUmask() { ::umask(old_); }
  ScopedUmask(const ScopedUmask&) = delete;
  ScopedUmask& operator=(const ScopedUmask&) = delete;

 private:
  mode_t old_;
};

mode_t mode_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 01000;  // no such file: never a valid mode
  return st.st_mode & 07777;
}

}  // namespace

class ConfigPrivateFiles : public Fixture {};

TEST_F(ConfigPrivateFiles, NewDirectoriesAre0700AndNewFiles0600WhateverTheUmask) {
  for (mode_t mask : {000, 022, 077, 0277}) {
    ScopedUmask scoped(mask);
    const std::string base = home_ + "/umask" + std::to_string(mask);
    ceso::make_private_dirs(base + "/state/ceso");
    EXPECT_EQ(mode_of(base), 0700u) << std::oct << mask;
    EXPECT_EQ(mode_of(base + "/state"), 0700u) << std::oct << mask;
    EXPECT_EQ(mode_of(base + "/state/ceso"), 0700u) << std::oct << mask;
    // A file whose directories are missing: they are made too.
    int fd = ceso::open_private_file(base + "/cache/ceso/sessions/x.json", O_WRONLY | O_TRUNC);
    ASSERT_GE(fd, 0) << std::oct << mask << ": " << std::strerror(errno);
    EXPECT_EQ(::write(fd, "x", 1), 1);
    ::close(fd);
    EXPECT_EQ(mode_of(base + "/cache/ceso/sessions/x.json"), 0600u) << std::oct << mask;
    EXPECT_EQ(mode_of(base + "/cache/ceso/sessions"), 0700u) << std::oct << mask;
    EXPECT_EQ(mode_of(base + "/cache"), 0700u) << std::oct << mask;
  }
}

TEST_F(ConfigPrivateFiles, ExistingFilesAndDirectoriesKeepTheirModeAndContent) {
  ScopedUmask scoped(000);
  const std::string dir = home_ + "/shared";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  ::chmod(dir.c_str(), 0755);
  std::string file = write("shared/log", "kept\n", 0640);
  ceso::make_private_dirs(dir);
  int fd = ceso::open_private_file(file, O_RDWR | O_APPEND);
  ASSERT_GE(fd, 0);
  ::close(fd);
  EXPECT_EQ(mode_of(dir), 0755u);
  EXPECT_EQ(mode_of(file), 0640u);
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "kept");
}

TEST_F(ConfigPrivateFiles, FailuresNameThePathOrSetErrno) {
  std::string file = write("plain", "x");
  try {
    ceso::make_private_dirs(file + "/below");
    ADD_FAILURE() << "no error";
  } catch (const ceso::Error& e) {
    EXPECT_TRUE(contains(e.what(), file + "/below")) << e.what();
  }
  errno = 0;
  EXPECT_EQ(ceso::open_private_file(home_ + "/plain/below/x", O_RDWR), -1);
  EXPECT_EQ(errno, ENOTDIR);
}

// The backup catalog is SQLite in WAL mode: the database and the -wal and
// -shm files SQLite makes beside it while it is open must be private too.
TEST_F(ConfigPrivateFiles, BackupCatalogAndItsSqliteFilesArePrivate) {
  for (mode_t mask : {000, 022}) {
    ScopedUmask scoped(mask);
    const std::string path = home_ + "/m" + std::to_string(mask) + "/.local/state/ceso/backups.db";
    ceso::Catalog catalog(path);
    ceso::CatalogEntry e;
    e.id = "x";
    e.target = "file:///t";
    e.endpoint = "esxi1:443";
    e.status = "ok";
    e.mode = "hot";
    catalog.put(e);
    EXPECT_EQ(catalog.list().size(), 1u);
    for (const std::string& f : {path, path + "-wal", path + "-shm"})
      EXPECT_EQ(mode_of(f), 0600u) << f << " umask " << std::oct << mask;
    EXPECT_EQ(mode_of(home_ + "/m" + std::to_string(mask) + "/.local/state/ceso"), 0700u);
    EXPECT_EQ(mode_of(home_ + "/m" + std::to_string(mask) + "/.local"), 0700u);
  }
}

// A process that has read a password leaves no core dump: it is not
// dumpable, and its core size limit is 0. Checked in a child, because both
// last for the rest of the process.
TEST_F(ConfigPasswordFile, LoadingAPasswordForbidsCoreDumps) {
  write(".pw", "secret\n");
  vars_["CESO_URL"] = "esxi1.lab";
  vars_["CESO_PASSWORD_FILE"] = home_ + "/.pw";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);  // this test binary may have resolved before
    int status = 0;
    if (::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 1) status |= 1;
    try {
      if (resolve().password != "secret") status |= 2;
    } catch (...) {
      status |= 4;
    }
    if (::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0) status |= 8;
    struct rlimit rl {};
    if (::getrlimit(RLIMIT_CORE, &rl) != 0 || rl.rlim_cur != 0 || rl.rlim_max != 0) status |= 16;
    ::_exit(status);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "bits: 1 dumpable before, 2 password, 4 threw, "
                                       "8 still dumpable, 16 core limit";
}
