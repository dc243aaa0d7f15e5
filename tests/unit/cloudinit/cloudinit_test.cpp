#include "cloudinit/cloudinit.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <functional>
#include <map>
#include <set>

#include "base/error.hpp"

namespace {

using ceso::ordered_json;

const char* const kEd25519 =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMvfm9/OzeyipVPuVV2XY0Qv5ztecmF+AHxX0Mm3T/ru ops@lab";
const char* const kRsa =
    "ssh-rsa "
    "AAAAB3NzaC1yc2EAAAADAQABAAABAQDAh9r2bYzrEvTXkU/"
    "YqIgrA5F2UqwBHdJuN8Nd7a4L8b1dAZrOt8C4hJuKBrSsjYa"
    "SEZWCluSGWRr1kOcIruDx7CcXziEto4Qypv+J0ipT4VvTkEPP7TasHfd6wugwCKE2njr3CKNTpmdAedRj+"
    "yu2WZdv4yDrXo"
    "XA5RTBRm/"
    "Y26wnbqtSyWEAIJjo6V5qGYg22GvfdfYGcVvuTTFgAtpv08d7Nr9JAdM8OWi4QNz3Y6ueEnks5LDaZFpFutBz6"
    "woO338J3gDQOJ8Q5697yi00slBDIcKKhxkf+iBpwo2WHRsfhIqOANX3hp2HbOoUaviKqH+QMmS4+n0N0S2uXsRP "
    "rsa@lab";
const char* const kEcdsa256 =
    "ecdsa-sha2-nistp256 "
    "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEshNA+lH+G0xiw4fMz6t54SyZ8odXZr4MuHZN+/"
    "5bUj8XXfXdBBG59daEfDIZZjNxx5mMLwcbgICmKhDMdDC44= p256@lab";
const char* const kEcdsa521 =
    "ecdsa-sha2-nistp521 "
    "AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBAF/"
    "tquCAZ9x9yi289eGQ4PSy0t6wHMrz8PI2O2sVqrS"
    "IyeX5lbW7eyvLqW9oO0SM4GjAPpLb56QZRD8Us2BrcOQWgFjQB56oZHp2W9WvIOm33P+c8XP53U0+"
    "L2zd7sL7J13fnjUosR4"
    "+R6dCZsdPNtqSOGOX1ZJpaUAV+4rkO5PqqQPDQ== p521@lab";

// Runs fn and returns the ceso::Error it throws (code ok and empty text if none).
std::pair<ceso::Exit, std::string> error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const ceso::Error& e) {
    return {e.code(), e.what()};
  }
  return {ceso::Exit::ok, ""};
}

#define EXPECT_BAD_INPUT(stmt, needle)                                     \
  do {                                                                     \
    auto err_ = error_of([&] { stmt; });                                   \
    EXPECT_EQ(err_.first, ceso::Exit::bad_input) << #stmt;                 \
    EXPECT_NE(err_.second.find(needle), std::string::npos) << err_.second; \
  } while (0)

ceso::CloudInitSpec spec(ordered_json fields) { return ceso::SpecReader().read(fields); }

std::map<std::string, std::string, std::less<>> as_map(const ceso::GuestInfo& gi) {
  return {gi.values.begin(), gi.values.end()};
}

std::string ssh_string(std::string_view s) {
  std::string out(4, '\0');
  out[0] = char((s.size() >> 24) & 0xff);
  out[1] = char((s.size() >> 16) & 0xff);
  out[2] = char((s.size() >> 8) & 0xff);
  out[3] = char(s.size() & 0xff);
  return out + std::string(s);
}

// ------------------------------------------------------------ codecs

TEST(CloudInitCodecs, GzipBase64RoundTripAndIsReproducible) {
  std::string text = "instance-id: web01\nlocal-hostname: web01\n";
  std::string gz = ceso::gzip_compress(text);
  ASSERT_GE(gz.size(), 10u);
  EXPECT_EQ(uint8_t(gz[0]), 0x1f);
  EXPECT_EQ(uint8_t(gz[1]), 0x8b);
  EXPECT_EQ(gz, ceso::gzip_compress(text));  // mtime 0: same input, same bytes
  EXPECT_EQ(ceso::gzip_decompress(gz), text);
  EXPECT_EQ(ceso::base64_encode("hello"), "aGVsbG8=");
  EXPECT_EQ(ceso::base64_decode("aGVs\nbG8="), "hello");
  EXPECT_EQ(ceso::base64_decode("aGVsbG8h"), "hello!");
  EXPECT_EQ(ceso::base64_decode(""), "");
  EXPECT_EQ(ceso::base64_decode(ceso::base64_encode(gz)), gz);
}

TEST(CloudInitCodecs, BadDataIsBadInput) {
  EXPECT_BAD_INPUT(ceso::base64_decode("abc"), "base64");
  EXPECT_BAD_INPUT(ceso::base64_decode("ab!="), "base64");
  EXPECT_BAD_INPUT(ceso::gzip_decompress("not gzip at all"), "gzip");
  std::string gz = ceso::gzip_compress("some text that is long enough");
  EXPECT_BAD_INPUT(ceso::gzip_decompress(gz.substr(0, gz.size() / 2)), "gzip");
}

TEST(CloudInitCodecs, VmxQuotingFollowsVmwareDictionaryEscapes) {
  EXPECT_EQ(ceso::vmx_quote("H4sI+/="), "\"H4sI+/=\"");
  EXPECT_EQ(ceso::vmx_quote("a \"b\" | c\nd\te\x7f"), "\"a |22b|22 |7C c|0Ad\te|7F\"");
  EXPECT_EQ(ceso::vmx_quote("é#"), "\"é#\"");  // UTF-8 and '#' stay as they are
  EXPECT_EQ(ceso::vmx_quote("plain"), "\"plain\"");
  EXPECT_EQ(ceso::vmx_quote("multi\nline\r\n"), "\"multi|0Aline|0D|0A\"");
  EXPECT_EQ(ceso::vmx_quote("|22 literal"), "\"|7C22 literal\"");  // '|' itself is escaped
  EXPECT_EQ(ceso::vmx_quote("\"\""), "\"|22|22\"");
  EXPECT_EQ(ceso::vmx_quote("tab\tand\x01"), "\"tab\tand|01\"");
  EXPECT_EQ(ceso::vmx_quote(""), "\"\"");
}

TEST(CloudInitCodecs, ShellQuoting) {
  EXPECT_EQ(ceso::shell_quote("guestinfo.metadata=H4sI+/=="), "guestinfo.metadata=H4sI+/==");
  EXPECT_EQ(ceso::shell_quote("a b"), "'a b'");
  EXPECT_EQ(ceso::shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(ceso::shell_quote(""), "''");
  EXPECT_EQ(ceso::shell_quote("$(rm -rf /)"), "'$(rm -rf /)'");
}

// ------------------------------------------------------------ SSH keys

TEST(CloudInitSsh, AcceptsRealKeys) {
  for (const char* k : {kEd25519, kRsa, kEcdsa256, kEcdsa521})
    EXPECT_NO_THROW(ceso::check_ssh_public_key(k)) << k;
  // Without a comment, too.
  EXPECT_NO_THROW(ceso::check_ssh_public_key(std::string(kEd25519).substr(0, 80)));
}

TEST(CloudInitSsh, AcceptsSecurityKeyTypes) {
  std::string blob = ssh_string("sk-ssh-ed25519@openssh.com") + ssh_string(std::string(32, 'k')) +
                     ssh_string("ssh:");
  EXPECT_NO_THROW(ceso::check_ssh_public_key("sk-ssh-ed25519@openssh.com " +
                                             ceso::base64_encode(blob) + " yubikey"));
  std::string point(65, 'p');
  point[0] = 4;
  std::string ec = ssh_string("sk-ecdsa-sha2-nistp256@openssh.com") + ssh_string("nistp256") +
                   ssh_string(point) + ssh_string("ssh:");
  EXPECT_NO_THROW(
      ceso::check_ssh_public_key("sk-ecdsa-sha2-nistp256@openssh.com " + ceso::base64_encode(ec)));
}

TEST(CloudInitSsh, RejectsMalformedKeys) {
  std::string ed = kEd25519;
  std::string body = ed.substr(12, 68);
  EXPECT_BAD_INPUT(ceso::check_ssh_public_key("ssh-rsa " + body), "is a 'ssh-ed25519' key");
  EXPECT_BAD_INPUT(ceso::check_ssh_public_key("ssh-dsa " + body), "key type");
  EXPECT_BAD_INPUT(ceso::check_ssh_public_key("ssh-ed25519"), "no key data");
  EXPECT_BAD_INPUT(ceso::check_ssh_public_key("ssh-ed25519 AAAA$$$$"), "base64");
  EXPECT_BAD_INPUT(ceso::check_ssh_public_key("ssh-ed25519 " + body.substr(0, 62)), "base64");
  EXPECT_BAD_INPUT(ceso::check_ssh_public_key("-----BEGIN OPENSSH PRIVATE KEY-----"),
                   "private key");
  EXPECT_BAD_INPUT(ceso::check_ssh_public_key(ed + "\nssh-rsa x"), "one line");
  // Right type string, truncated key.
  std::string short_blob = ssh_string("ssh-ed25519") + ssh_string(std::string(31, 'k'));
  EXPECT_BAD_INPUT(ceso::check_ssh_public_key("ssh-ed25519 " + ceso::base64_encode(short_blob)),
                   "well-formed");
  // Trailing bytes after the key.
  std::string long_blob = ssh_string("ssh-ed25519") + ssh_string(std::string(32, 'k')) + "x";
  EXPECT_BAD_INPUT(ceso::check_ssh_public_key("ssh-ed25519 " + ceso::base64_encode(long_blob)),
                   "well-formed");
}

TEST(CloudInitSsh, KeysFromTextSkipCommentsAndNameTheLine) {
  std::string text = std::string("# team\n\n") + kEd25519 + "\r\n  " + kRsa + "\n";
  auto keys = ceso::ssh_keys_from_text(text, "'keys.pub'");
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0], kEd25519);
  EXPECT_EQ(keys[1], kRsa);
  EXPECT_BAD_INPUT(ceso::ssh_keys_from_text(std::string(kEd25519) + "\nnot a key\n", "'k.pub'"),
                   "'k.pub' line 2");
  EXPECT_BAD_INPUT(ceso::ssh_keys_from_text("# nothing\n", "'k.pub'"), "no SSH public key");
}

// ------------------------------------------------------------ spec records

TEST(CloudInitSpec, MinimalSpecGetsAFreshInstanceId) {
  auto s = spec({{"hostname", "web01"}});
  EXPECT_EQ(s.hostname, "web01");
  EXPECT_EQ(s.name, "web01");
  EXPECT_EQ(s.instance_id.rfind("web01-", 0), 0u) << s.instance_id;
  EXPECT_EQ(s.instance_id.size(), std::string("web01-20250101T000000Z-0123456789ab").size());
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) ids.insert(ceso::new_instance_id("h"));
  EXPECT_EQ(ids.size(), 1000u);
  EXPECT_EQ(spec({{"hostname", "web01"}, {"instance_id", "i-given"}}).instance_id, "i-given");
  EXPECT_EQ(spec({{"type", "spec"}, {"hostname", "a"}, {"name", "VM a"}}).name, "VM a");
}

TEST(CloudInitSpec, IdentityErrorsNameTheField) {
  EXPECT_BAD_INPUT(spec(ordered_json::object()), "field \"hostname\" is required");
  EXPECT_BAD_INPUT(spec({{"hostname", "web_01"}}), "field \"hostname\"");
  EXPECT_BAD_INPUT(spec({{"hostname", "web01.lab"}}), "as fqdn");
  EXPECT_BAD_INPUT(spec({{"hostname", 5}}), "field \"hostname\": must be a string");
  EXPECT_BAD_INPUT(spec({{"hostname", "a"}, {"fqdn", "nodots"}}), "field \"fqdn\"");
  EXPECT_BAD_INPUT(spec({{"hostname", "a"}, {"instance_id", "../x"}}), "field \"instance_id\"");
  EXPECT_BAD_INPUT(spec({{"hostname", "a"}, {"colour", "red"}}), "field \"colour\": unknown field");
  EXPECT_BAD_INPUT(spec({{"type", "vm"}, {"hostname", "a"}}), "type 'vm'");
  auto f = spec({{"fqdn", "db1.lab.example"}});
  EXPECT_EQ(f.hostname, "db1");
  EXPECT_EQ(f.fqdn, "db1.lab.example");
}

TEST(CloudInitSpec, FlagStyleNamesOptions) {
  ceso::SpecReader reader;
  ordered_json flags = {{"hostname", "a"}, {"ip", {"10.0.0.300/24"}}};
  auto err = error_of([&] { reader.read(flags, ceso::FieldStyle::flag); });
  EXPECT_NE(err.second.find("--ip: '10.0.0.300/24'"), std::string::npos) << err.second;
  err = error_of([&] {
    reader.read({{"hostname", "a"}, {"ssh_key_file", {"/nonexistent/k.pub"}}},
                ceso::FieldStyle::flag);
  });
  EXPECT_EQ(err.first, ceso::Exit::bad_input);
  EXPECT_NE(err.second.find("--ssh-key-file: cannot read '/nonexistent/k.pub'"), std::string::npos)
      << err.second;
}

TEST(CloudInitSpec, StaticNetworkChecks) {
  auto s = spec({{"hostname", "a"},
                 {"ip", {"10.0.0.5/24", "2001:db8::5/64"}},
                 {"gateway", "10.0.0.1"},
                 {"gateway6", "fe80::1"},
                 {"dns", {"1.1.1.1", "2606:4700:4700::1111"}},
                 {"search", "lab.example"},
                 {"mtu", 9000},
                 {"route", {"192.168.0.0/16=10.0.0.254", "2001:db8:1::/48=2001:db8::1"}}});
  ASSERT_EQ(s.nics.size(), 1u);
  EXPECT_EQ(s.nics[0].addresses.size(), 2u);
  EXPECT_EQ(s.nics[0].routes.size(), 2u);
  EXPECT_EQ(s.nics[0].mtu, 9000);
  EXPECT_FALSE(s.nics[0].dhcp4);
  EXPECT_EQ(spec({{"hostname", "a"}, {"ip", "10.0.0.5/24"}, {"mtu", "1500"}}).nics[0].mtu, 1500);

  ordered_json base = {{"hostname", "a"}, {"ip", "10.0.0.5/24"}};
  auto with = [&](const char* k, ordered_json v) {
    ordered_json j = base;
    j[k] = v;
    return spec(j);
  };
  EXPECT_BAD_INPUT(with("gateway", "10.0.1.1"), "outside every subnet of the NIC (10.0.0.0/24)");
  EXPECT_BAD_INPUT(with("gateway", "2001:db8::1"), "give it as gateway6");
  EXPECT_BAD_INPUT(with("gateway6", "2001:db8::1"), "no static IPv6 address");
  EXPECT_BAD_INPUT(with("ip", "10.0.0.0/24"), "network address");
  EXPECT_BAD_INPUT(with("ip", "10.0.0.255/24"), "broadcast");
  EXPECT_BAD_INPUT(with("ip", "127.0.0.1/8"), "cannot be an interface address");
  EXPECT_BAD_INPUT(with("ip", "10.0.0.5"), "no prefix length");
  EXPECT_BAD_INPUT(with("dns", "one.one.one.one"), "field \"dns\"");
  EXPECT_BAD_INPUT(with("search", "bad_domain"), "field \"search\"");
  EXPECT_BAD_INPUT(with("mtu", 20), "field \"mtu\"");
  EXPECT_BAD_INPUT(with("route", "192.168.1.0/16=10.0.0.254"),
                   "host bits set (did you mean 192.168.0.0/16?)");
  EXPECT_BAD_INPUT(with("route", "192.168.0.0/16"), "DEST=VIA");
  EXPECT_BAD_INPUT(with("route", "192.168.0.0/16=10.9.0.1"), "outside every subnet");
  EXPECT_BAD_INPUT(with("route", "2001:db8::/32=10.0.0.1"), "not the same IP version");
  EXPECT_BAD_INPUT(with("mac", "00:50:56:zz:00:01"), "field \"mac\"");
  EXPECT_BAD_INPUT(with("dhcp", "v5"), "field \"dhcp\"");
  ordered_json two_defaults = base;
  two_defaults["gateway"] = "10.0.0.1";
  two_defaults["route"] = ordered_json::array({"default=10.0.0.2"});
  EXPECT_BAD_INPUT(spec(two_defaults), "second default IPv4 route");
  // Route objects work too.
  EXPECT_EQ(with("route", {{{"to", "default"}, {"via", "10.0.0.1"}}}).nics[0].routes.size(), 1u);
}

TEST(CloudInitSpec, NicWithoutAddressesUsesDhcp) {
  auto s = spec({{"hostname", "a"}, {"mac", "00:50:56:00:00:01"}});
  EXPECT_TRUE(s.nics[0].dhcp4);
  auto d = spec({{"hostname", "a"}, {"dhcp", "v6"}});
  EXPECT_FALSE(d.nics[0].dhcp4);
  EXPECT_TRUE(d.nics[0].dhcp6);
  EXPECT_TRUE(spec({{"hostname", "a"}}).nics.empty());  // no network settings at all
}

TEST(CloudInitSpec, SeveralNics) {
  auto s = spec({{"hostname", "a"},
                 {"dns", "10.0.0.2"},
                 {"nics",
                  {{{"mac", "00:50:56:00:00:01"}, {"ip", "10.0.0.5/24"}, {"gateway", "10.0.0.1"}},
                   {{"mac", "00:50:56:00:00:02"}, {"ip", "10.1.0.5/24"}, {"dns", "10.1.0.2"}}}}});
  ASSERT_EQ(s.nics.size(), 2u);
  EXPECT_EQ(s.nics[0].dns[0].text(), "10.0.0.2");  // top-level default
  EXPECT_EQ(s.nics[1].dns[0].text(), "10.1.0.2");  // its own
  EXPECT_BAD_INPUT(
      spec({{"hostname", "a"}, {"nics", {{{"ip", "10.0.0.5/24"}}, {{"ip", "10.1.0.5/24"}}}}}),
      "needs \"mac\" or \"nic\"");
  EXPECT_BAD_INPUT(spec({{"hostname", "a"}, {"ip", "10.0.0.5/24"}, {"nics", {{{"dhcp", "v4"}}}}}),
                   "field \"ip\": cannot be combined with \"nics\"");
  EXPECT_BAD_INPUT(spec({{"hostname", "a"}, {"nics", {{{"mac", "00:50:56:00:00:01"}, {"x", 1}}}}}),
                   "field \"nics[0].x\": unknown field");
  EXPECT_BAD_INPUT(spec({{"hostname", "a"},
                         {"nics", {{{"mac", "00:50:56:00:00:01"}, {"gateway", "10.0.0.1"}}}}}),
                   "field \"nics[0].gateway\"");
  EXPECT_BAD_INPUT(spec({{"hostname", "a"},
                         {"nics", {{{"nic", "ens192"}}, {{"nic", "ens192"}, {"dhcp", "v6"}}}}}),
                   "two NICs are named 'ens192'");
}

TEST(CloudInitSpec, UsersAndSystem) {
  auto s = spec({{"hostname", "a"},
                 {"ssh_key", {kEd25519, kRsa}},
                 {"sudo", true},
                 {"groups", "adm, docker"},
                 {"shell", "/bin/bash"},
                 {"password_hash", "$6$rounds=4096$salt$abcdefghijklmnop"},
                 {"package", {"nginx", "jq=1.6-2"}},
                 {"runcmd", "systemctl enable --now nginx"},
                 {"timezone", "Europe/Paris"},
                 {"locale", "en_US.UTF-8"},
                 {"cleanup", true}});
  EXPECT_EQ(s.user.ssh_keys.size(), 2u);
  EXPECT_EQ(s.user.sudo, "ALL=(ALL) NOPASSWD:ALL");
  EXPECT_EQ(s.user.groups, (std::vector<std::string>{"adm", "docker"}));
  EXPECT_TRUE(s.cleanup);
  EXPECT_BAD_INPUT(spec({{"hostname", "a"}, {"ssh_key", "ssh-ed25519 AAAA"}}), "field \"ssh_key\"");
  EXPECT_BAD_INPUT(spec({{"hostname", "a"}, {"password_hash", "hunter2"}}), "crypt(3)");
  EXPECT_BAD_INPUT(spec({{"hostname", "a"}, {"user", "Root User"}}), "field \"user\"");
  EXPECT_BAD_INPUT(spec({{"hostname", "a"}, {"groups", "adm,Bad Group"}}), "field \"groups\"");
  EXPECT_BAD_INPUT(spec({{"hostname", "a"}, {"shell", "bash"}}), "absolute path");
  EXPECT_BAD_INPUT(spec({{"hostname", "a"}, {"package", "two words"}}), "field \"package\"");
  EXPECT_BAD_INPUT(spec({{"hostname", "a"}, {"timezone", "../../etc/passwd"}}),
                   "field \"timezone\"");
  EXPECT_BAD_INPUT(spec({{"hostname", "a"}, {"write_file", "relative=/etc/hosts"}}),
                   "field \"write_file\"");
  EXPECT_BAD_INPUT(spec({{"hostname", "a"}, {"write_file", "/etc/x=/nonexistent/file"}}),
                   "cannot read '/nonexistent/file'");
  EXPECT_BAD_INPUT(spec({{"hostname", "a"}, {"cleanup", "yes"}}), "field \"cleanup\"");
}

TEST(CloudInitSpec, MergeFlagsIntoRecords) {
  ordered_json flags = {{"ssh_key_file", {"k.pub"}},
                        {"gateway", "10.0.0.1"},
                        {"dns", {"10.0.0.2"}},
                        {"ip", {"10.0.0.9/24"}}};
  auto m = ceso::merge_spec_fields(flags, {{"hostname", "a"}, {"ip", {"10.0.0.5/24"}}});
  EXPECT_EQ(m["ip"], ordered_json({"10.0.0.5/24"}));  // the record's wins
  EXPECT_EQ(m["gateway"], "10.0.0.1");                // the flag stays a default
  EXPECT_EQ(m["ssh_key_file"], ordered_json({"k.pub"}));
  auto n = ceso::merge_spec_fields(flags, {{"hostname", "a"}, {"nics", ordered_json::array()}});
  EXPECT_FALSE(n.contains("gateway"));  // a record with nics brings its own NICs
  EXPECT_FALSE(n.contains("ip"));
  EXPECT_EQ(n["dns"], ordered_json({"10.0.0.2"}));  // shared defaults stay
  auto c = ceso::merge_spec_fields(flags, {{"hostname", "a"}, {"network_config", "n.yaml"}});
  EXPECT_FALSE(c.contains("dns"));
  EXPECT_FALSE(c.contains("gateway"));
}

TEST(CloudInitSpec, ReaderReadsEachFileOnce) {
  char dir[] = "/tmp/ceso-cloudinit-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/keys.pub";
  std::ofstream(path) << kEd25519 << "\n";
  ceso::SpecReader reader;
  auto a = reader.read({{"hostname", "a"}, {"ssh_key_file", path}});
  std::ofstream(path) << "garbage\n";  // a second read would fail
  auto b = reader.read({{"hostname", "b"}, {"ssh_key_file", path}});
  EXPECT_EQ(b.user.ssh_keys, a.user.ssh_keys);
  unlink(path.c_str());
  rmdir(dir);
}

// ------------------------------------------------------------ documents

TEST(CloudInitGuestInfo, KeysDocumentsAndRoundTrip) {
  auto s = spec({{"hostname", "web01"},
                 {"instance_id", "i-1"},
                 {"ip", {"10.0.0.5/24", "2001:db8::5/64"}},
                 {"gateway", "10.0.0.1"},
                 {"mac", "52:54:00:12:34:56"},
                 {"ssh_key", kEd25519},
                 {"cleanup", true}});
  for (auto enc : {ceso::GuestInfoEncoding::gzip_base64, ceso::GuestInfoEncoding::base64,
                   ceso::GuestInfoEncoding::none}) {
    auto gi = ceso::build_guestinfo(s, enc);
    std::vector<std::string> keys;
    for (const auto& kv : gi.values) keys.push_back(kv.first);
    EXPECT_EQ(keys,
              (std::vector<std::string>{"guestinfo.metadata", "guestinfo.metadata.encoding",
                                        "guestinfo.userdata", "guestinfo.userdata.encoding"}));
    EXPECT_EQ(*gi.find("guestinfo.metadata.encoding"),
              enc == ceso::GuestInfoEncoding::none ? "" : std::string(ceso::encoding_name(enc)));
    EXPECT_EQ(gi.instance_id, "i-1");
    auto back = ceso::decode_guestinfo(as_map(gi));
    EXPECT_EQ(back.documents.metadata, gi.documents.metadata);
    EXPECT_EQ(back.documents.userdata, gi.documents.userdata);
    EXPECT_EQ(YAML::Dump(YAML::Load(back.documents.network)),
              YAML::Dump(YAML::Load(gi.documents.network)));
    EXPECT_EQ(back.instance_id, "i-1");
    EXPECT_EQ(back.hostname, "web01");
    // Re-encoding the decoded documents gives the same guestinfo.
    EXPECT_EQ(ceso::encode_guestinfo(gi.documents, enc).values, gi.values);
  }
  auto gi = ceso::build_guestinfo(s, ceso::GuestInfoEncoding::none);
  const std::string& md = *gi.find("guestinfo.metadata");
  YAML::Node m = YAML::Load(md);
  EXPECT_EQ(m["instance-id"].as<std::string>(), "i-1");
  EXPECT_EQ(m["local-hostname"].as<std::string>(), "web01");
  EXPECT_EQ(m["cleanup-guestinfo"][0].as<std::string>(), "userdata");
  EXPECT_EQ(m["network"]["version"].as<int>(), 2);
  YAML::Node eth = m["network"]["ethernets"]["eth0"];
  EXPECT_EQ(eth["set-name"].as<std::string>(), "eth0");
  EXPECT_EQ(eth["routes"][0]["to"].as<std::string>(), "default");
  EXPECT_EQ(eth["routes"][0]["via"].as<std::string>(), "10.0.0.1");
  EXPECT_FALSE(eth["gateway4"]);
  // A MAC that YAML 1.1 would read as a base-60 number is quoted.
  EXPECT_NE(md.find("macaddress: \"52:54:00:12:34:56\""), std::string::npos) << md;
  EXPECT_EQ(gi.documents.metadata.find("network"), std::string::npos);
}

TEST(CloudInitGuestInfo, EncodedNetworkCarriesItsEncoding) {
  auto s = spec({{"hostname", "a"}, {"instance_id", "i"}, {"dhcp", "both"}});
  auto gi = ceso::build_guestinfo(s, ceso::GuestInfoEncoding::base64);
  YAML::Node m = YAML::Load(ceso::base64_decode(*gi.find("guestinfo.metadata")));
  EXPECT_EQ(m["network.encoding"].as<std::string>(), "base64");
  YAML::Node n = YAML::Load(ceso::base64_decode(m["network"].as<std::string>()));
  EXPECT_TRUE(n["ethernets"]["nic0"]["dhcp4"].as<bool>());
  EXPECT_EQ(n["ethernets"]["nic0"]["match"]["name"].as<std::string>(), "en*");
}

TEST(CloudInitGuestInfo, NoNetworkSettingsMeansNoNetworkKey) {
  auto gi = ceso::build_guestinfo(spec({{"hostname", "a"}}), ceso::GuestInfoEncoding::none);
  EXPECT_FALSE(YAML::Load(*gi.find("guestinfo.metadata"))["network"]);
  EXPECT_EQ(gi.documents.userdata, "#cloud-config\n{}\n");
}

TEST(CloudInitGuestInfo, ValuesMustStayUnder64KiB) {
  // ~100 KB that gzip cannot shrink much: pseudo-random printable text.
  std::string noise;
  uint32_t x = 12345;
  for (int i = 0; i < 100000; ++i) {
    x = x * 1103515245u + 12345u;
    noise += static_cast<char>('!' + (x >> 16) % 90);
  }
  auto s = spec({{"hostname", "a"}, {"runcmd", noise}});
  EXPECT_BAD_INPUT(ceso::build_guestinfo(s, ceso::GuestInfoEncoding::gzip_base64),
                   "guestinfo.userdata: the encoded value is");
  // The same amount of repetitive text compresses well enough.
  auto ok = spec({{"hostname", "a"}, {"runcmd", std::string(100000, 'a')}});
  EXPECT_NO_THROW(ceso::build_guestinfo(ok, ceso::GuestInfoEncoding::gzip_base64));
  EXPECT_BAD_INPUT(ceso::build_guestinfo(ok, ceso::GuestInfoEncoding::base64), "64 KiB");
}

TEST(CloudInitGuestInfo, AUserDataThatFitsOnlyAtTheBestLevelIsAccepted) {
  // Words from a small random vocabulary: the best level finds more of the
  // repeats than the fast one. Find a length where only the best fits.
  std::vector<std::string> vocabulary;
  uint32_t x = 7;
  auto next = [&x] { return x = x * 1103515245u + 12345u, (x >> 16) & 0x7fff; };
  for (int i = 0; i < 3000; ++i) {
    std::string w;
    for (int n = 3 + int(next() % 6); n > 0; --n) w += char('a' + next() % 26);
    vocabulary.push_back(w);
  }
  std::string words;
  while (words.size() < 400000) words += vocabulary[next() % vocabulary.size()] + ' ';
  auto encoded = [&](size_t n, ceso::GzipLevel level) {
    return ceso::base64_encode(
               ceso::gzip_compress("#cloud-config\nruncmd:\n  - \"" + words.substr(0, n) + "\"\n",
                                   level))
        .size();
  };
  size_t lo = 1000, hi = words.size();  // fast fits at lo, not at hi
  ASSERT_GE(encoded(hi, ceso::GzipLevel::fast), ceso::kGuestInfoValueLimit);
  while (hi - lo > 1) {
    size_t mid = (lo + hi) / 2;
    (encoded(mid, ceso::GzipLevel::fast) < ceso::kGuestInfoValueLimit ? lo : hi) = mid;
  }
  // hi: the shortest text whose fast encoding is too large; the best one fits.
  ASSERT_LT(encoded(hi, ceso::GzipLevel::best), ceso::kGuestInfoValueLimit);
  auto s = spec({{"hostname", "a"}, {"runcmd", words.substr(0, hi)}});
  ceso::GuestInfo gi;
  ASSERT_NO_THROW(gi = ceso::build_guestinfo(s, ceso::GuestInfoEncoding::gzip_base64));
  EXPECT_LT(gi.find("guestinfo.userdata")->size(), ceso::kGuestInfoValueLimit);
  EXPECT_EQ(ceso::decode_guestinfo(as_map(gi)).documents.userdata, gi.documents.userdata);
}

TEST(CloudInitGuestInfo, WriteFilesKeepModeAndBinaryGoesBase64) {
  ceso::CloudInitSpec s = spec({{"hostname", "a"}, {"instance_id", "i"}});
  s.write_files.push_back({"/etc/motd", "hello\nworld\n", 0644});
  s.write_files.push_back({"/usr/local/bin/x",
                           std::string("\x7f"
                                       "ELF\0\1",
                                       6),
                           0755});
  auto docs = ceso::render_documents(s);
  YAML::Node cc = YAML::Load(docs.userdata);
  EXPECT_EQ(cc["write_files"][0]["content"].as<std::string>(), "hello\nworld\n");
  EXPECT_EQ(cc["write_files"][0]["permissions"].as<std::string>(), "0644");
  EXPECT_NE(docs.userdata.find("permissions: \"0644\""), std::string::npos) << docs.userdata;
  EXPECT_NE(docs.userdata.find("content: |\n"), std::string::npos) << docs.userdata;
  EXPECT_EQ(cc["write_files"][1]["encoding"].as<std::string>(), "b64");
  EXPECT_EQ(ceso::base64_decode(cc["write_files"][1]["content"].as<std::string>()),
            std::string("\x7f"
                        "ELF\0\1",
                        6));
  EXPECT_EQ(cc["write_files"][1]["permissions"].as<std::string>(), "0755");
}

TEST(CloudInitGuestInfo, EncodingNoneNeedsText) {
  ceso::CloudInitSpec s = spec({{"hostname", "a"}, {"instance_id", "i"}});
  s.user_data = ceso::load_user_data(std::string("\x1f\x8b\x08\x00garbage", 11), "'ud.gz'");
  EXPECT_BAD_INPUT(ceso::build_guestinfo(s, ceso::GuestInfoEncoding::none), "not UTF-8 text");
  EXPECT_NO_THROW(ceso::build_guestinfo(s, ceso::GuestInfoEncoding::base64));
}

TEST(CloudInitGuestInfo, DecodeRejectsUnknownEncodings) {
  std::map<std::string, std::string, std::less<>> v = {
      {"guestinfo.metadata", "aW5zdGFuY2UtaWQ6IGkK"}, {"guestinfo.metadata.encoding", "base65"}};
  EXPECT_BAD_INPUT(ceso::decode_guestinfo(v), "guestinfo.metadata.encoding: 'base65'");
  v["guestinfo.metadata.encoding"] = "b64";
  EXPECT_EQ(ceso::decode_guestinfo(v).instance_id, "i");
  v["guestinfo.metadata"] = "---";
  EXPECT_BAD_INPUT(ceso::decode_guestinfo(v), "missing");
}

// ------------------------------------------------------------ user-data

TEST(CloudInitUserData, MergeTheirsWinsListsConcatenate) {
  ceso::CloudInitSpec s = spec({{"hostname", "a"},
                                {"instance_id", "i"},
                                {"ssh_key", kEd25519},
                                {"sudo", true},
                                {"package", "nginx"},
                                {"runcmd", "echo ours"},
                                {"timezone", "UTC"}});
  s.user_data = ceso::load_user_data(
      "#cloud-config\n"
      "timezone: Europe/Paris\n"
      "packages: [jq]\n"
      "runcmd:\n  - echo theirs\n"
      "users:\n"
      "  - default\n"
      "  - name: ubuntu\n"
      "    ssh_authorized_keys: [\"" +
          std::string(kRsa) +
          "\"]\n"
          "    shell: /bin/zsh\n"
          "  - name: alice\n"
          "write_files:\n"
          "  - path: /etc/x\n"
          "    permissions: '0600'\n"
          "    content: 'yes'\n"
          "package_upgrade: true\n",
      "'ud.yaml'");
  std::string text = ceso::render_documents(s).userdata;
  ASSERT_EQ(text.rfind("#cloud-config\n", 0), 0u);
  YAML::Node cc = YAML::Load(text);
  EXPECT_EQ(cc["timezone"].as<std::string>(), "Europe/Paris");
  EXPECT_EQ(cc["packages"][0].as<std::string>(), "nginx");
  EXPECT_EQ(cc["packages"][1].as<std::string>(), "jq");
  EXPECT_EQ(cc["runcmd"].size(), 2u);
  EXPECT_TRUE(cc["package_upgrade"].as<bool>());
  ASSERT_EQ(cc["users"].size(), 3u);  // ubuntu (merged), default, alice
  EXPECT_EQ(cc["users"][0]["name"].as<std::string>(), "ubuntu");
  EXPECT_EQ(cc["users"][0]["shell"].as<std::string>(), "/bin/zsh");
  EXPECT_EQ(cc["users"][0]["sudo"].as<std::string>(), "ALL=(ALL) NOPASSWD:ALL");
  EXPECT_EQ(cc["users"][0]["ssh_authorized_keys"].size(), 2u);
  EXPECT_EQ(cc["users"][1].as<std::string>(), "default");
  EXPECT_EQ(cc["users"][2]["name"].as<std::string>(), "alice");
  // Quoted scalars stay strings for a YAML 1.1 reader.
  EXPECT_NE(text.find("permissions: \"0600\""), std::string::npos) << text;
  EXPECT_NE(text.find("content: \"yes\""), std::string::npos) << text;
  // The shared parsed file is not changed by merging.
  std::string again = ceso::render_documents(s).userdata;
  EXPECT_EQ(again, text);
}

// Every kind of scalar, written by us (runcmd) and from their file, reads
// back as the same string: plain where safe, quoted or escaped where not, in
// short and long (always quoted) forms, with the special character at the
// start, inside a printable run and at the end.
const std::vector<std::string>& scalar_classes() {
  static const std::vector<std::string> v = {
      "",
      " ",
      "plain",
      "yes",
      "no",
      "on",
      "off",
      "y",
      "n",
      "true",
      "False",
      "~",
      "null",
      "NULL",
      "0644",
      "1.5",
      "-1",
      "+1",
      ".5",
      "1_000",
      "0x1f",
      "1e3",
      "2001-01-01",
      "=",
      "<<",
      " leading",
      "trailing ",
      "a: b",
      "a:b",
      "e:",
      ":x",
      "#c",
      "x #y",
      "x#y",
      "- y",
      "-x",
      "?x",
      "[x",
      "{x",
      "x]",
      "a,b",
      "*a",
      "&a",
      "!x",
      "%x",
      "@x",
      "`x",
      "'x",
      "\"x",
      "|x",
      ">x",
      "back\\slash",
      "quote\"inside",
      "tab\tx",
      "ctl\x01x",
      "del\x7fx",
      "cr\rx",
      "bell\ax",
      "é ü 日本",
      "nbsp\u00a0x",
      "bom\ufeffx",
      "nel\u0085x",
      "ls\u2028x",
      "ps\u2029x",
      "emoji \U0001F600",
      "multi\nline\n",
      "multi\nline no end",
      "\nleading newline",
      "trailing blank\n\n",
      " leading space\n",
      "a string longer than sixteen characters",
      "a long string with \"quotes\" and \\ and \t and é inside it",
      std::string(300, 'x'),
      std::string(40, 'x') + "\x01",
      "\x02" + std::string(40, 'y'),
      "echo vm00001 > /etc/motd",
      "ALL=(ALL) NOPASSWD:ALL"};
  return v;
}

TEST(CloudInitYaml, EveryScalarClassRoundTripsThroughYamlCpp) {
  const auto& want = scalar_classes();
  ceso::CloudInitSpec s = spec({{"hostname", "a"}, {"instance_id", "i"}});
  s.runcmd = want;
  std::string ours = ceso::render_documents(s).userdata;
  YAML::Node cc = YAML::Load(ours);
  ASSERT_EQ(cc["runcmd"].size(), want.size()) << ours;
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(cc["runcmd"][i].Scalar(), want[i]) << ours;
  }
  // What a YAML 1.1 reader takes for a boolean, null or number is quoted.
  for (size_t i : {0, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17})
    EXPECT_EQ(cc["runcmd"][i].Tag(), "!") << want[i];

  // The same strings in their file, as values and as keys, come out the same
  // after the merge (the file written by yaml-cpp, every string double-quoted).
  YAML::Emitter e;
  e << YAML::BeginMap << YAML::Key << "bootcmd" << YAML::Value << YAML::BeginSeq;
  for (const auto& v : want) e << YAML::DoubleQuoted << v;
  e << YAML::EndSeq << YAML::Key << "meta" << YAML::Value << YAML::BeginMap;
  for (const auto& v : want) e << YAML::Key << YAML::DoubleQuoted << v << YAML::Value << v;
  e << YAML::EndMap << YAML::EndMap;
  ASSERT_TRUE(e.good()) << e.GetLastError();
  std::string file = std::string("#cloud-config\n") + e.c_str() + "\n";
  s.user_data = ceso::load_user_data(file, "'scalars.yaml'");
  std::string text = ceso::render_documents(s).userdata;
  YAML::Node in = YAML::Load(file), out = YAML::Load(text);
  ASSERT_EQ(out["bootcmd"].size(), want.size()) << text;
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(in["bootcmd"][i].Scalar(), want[i]);  // the file is what we think it is
    EXPECT_EQ(out["bootcmd"][i].Scalar(), want[i]) << text;
    EXPECT_EQ(out["runcmd"][i].Scalar(), want[i]) << text;
  }
  std::map<std::string, std::string> in_keys, out_keys;
  for (const auto& kv : in["meta"]) in_keys[kv.first.Scalar()] = kv.second.Scalar();
  for (const auto& kv : out["meta"]) out_keys[kv.first.Scalar()] = kv.second.Scalar();
  EXPECT_EQ(out_keys, in_keys) << text;
  EXPECT_EQ(in_keys.size(), std::set<std::string>(want.begin(), want.end()).size());
}

TEST(CloudInitUserData, PassThroughAndErrors) {
  // Not cloud-config: passed on as written, not merged with generated settings.
  ceso::CloudInitSpec s = spec({{"hostname", "a"}, {"instance_id", "i"}});
  s.user_data = ceso::load_user_data("#!/bin/sh\necho hi\n", "'s.sh'");
  EXPECT_EQ(ceso::render_documents(s).userdata, "#!/bin/sh\necho hi\n");
  std::string mime = "Content-Type: multipart/mixed; boundary=\"X\"\nMIME-Version: 1.0\n\n--X--\n";
  s.user_data = ceso::load_user_data(mime, "'m'");
  EXPECT_EQ(ceso::render_documents(s).userdata, mime);
  EXPECT_BAD_INPUT(ceso::load_user_data("#cloud-config\nusers: [\n", "'bad.yaml'"),
                   "'bad.yaml': invalid YAML at line");
  EXPECT_BAD_INPUT(ceso::load_user_data("#cloud-config\n- a\n", "'l.yaml'"), "mapping");
  EXPECT_BAD_INPUT(ceso::load_user_data("packages: [jq]\n", "'nohdr.yaml'"), "#cloud-config");
  EXPECT_BAD_INPUT(ceso::load_user_data("#cloud-config\nnetwork: {version: 2}\n", "'n.yaml'"),
                   "network_config");
  // An empty cloud-config is merged: the same document as no user-data at all.
  s.user_data = nullptr;
  std::string generated = ceso::render_documents(s).userdata;
  s.user_data = ceso::load_user_data("#cloud-config\n", "'e'");
  EXPECT_EQ(ceso::render_documents(s).userdata, generated);
}

TEST(CloudInitUserData, ScriptCannotBeCombinedWithGeneratedSettings) {
  char dir[] = "/tmp/ceso-cloudinit-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/s.sh";
  std::ofstream(path) << "#!/bin/sh\necho hi\n";
  EXPECT_BAD_INPUT(spec({{"hostname", "a"}, {"user_data", path}, {"package", "jq"}}),
                   "cannot be combined with field \"package\"");
  EXPECT_NO_THROW(spec({{"hostname", "a"}, {"user_data", path}, {"ip", "10.0.0.5/24"}}));
  unlink(path.c_str());
  rmdir(dir);
}

TEST(CloudInitNetworkConfig, UsedAsIs) {
  std::string text = "network:\n  version: 2\n  ethernets:\n    ens192: {dhcp4: true}\n";
  ceso::CloudInitSpec s = spec({{"hostname", "a"}, {"instance_id", "i"}});
  s.network_config = ceso::load_network_config(text, "'n.yaml'");
  auto gi = ceso::build_guestinfo(s, ceso::GuestInfoEncoding::gzip_base64);
  EXPECT_EQ(gi.documents.network, text);
  YAML::Node m =
      YAML::Load(ceso::gzip_decompress(ceso::base64_decode(*gi.find("guestinfo.metadata"))));
  EXPECT_EQ(ceso::gzip_decompress(ceso::base64_decode(m["network"].as<std::string>())), text);
  EXPECT_BAD_INPUT(ceso::load_network_config("ethernets: {}\n", "'n.yaml'"), "version");
  EXPECT_BAD_INPUT(ceso::load_network_config("version: 2\n  bad: [\n", "'n.yaml'"), "invalid YAML");
}

}  // namespace
