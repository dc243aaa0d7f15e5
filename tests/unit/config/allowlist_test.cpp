#include "config/allowlist.hpp"

#include <gtest/gtest.h>

#include <initializer_list>

namespace {

using ceso::AllowEntry;

std::vector<AllowEntry> list(std::initializer_list<const char*> texts) {
  std::vector<AllowEntry> out;
  for (const char* t : texts) {
    std::string why;
    auto e = ceso::parse_allow_entry(t, &why);
    EXPECT_TRUE(e.has_value()) << t << ": " << why;
    if (e) out.push_back(*e);
  }
  return out;
}

std::string refusal(const char* text) {
  std::string why;
  auto e = ceso::parse_allow_entry(text, &why);
  EXPECT_FALSE(e.has_value()) << text;
  return why;
}

bool allowed(const std::vector<AllowEntry>& l, const char* host) {
  return ceso::host_allowed(l, host);
}

TEST(AllowList, NamesMatchCaseInsensitivelyWithoutTrailingDot) {
  auto l = list({"ESXi1.Lab.Example", "vc.example."});
  EXPECT_TRUE(allowed(l, "esxi1.lab.example"));
  EXPECT_TRUE(allowed(l, "ESXI1.LAB.EXAMPLE"));
  EXPECT_TRUE(allowed(l, "esxi1.lab.example."));
  EXPECT_TRUE(allowed(l, "vc.example"));
  EXPECT_TRUE(allowed(l, "VC.example."));
  EXPECT_FALSE(allowed(l, "esxi2.lab.example"));
  EXPECT_FALSE(allowed(l, "lab.example"));             // no suffix matching
  EXPECT_FALSE(allowed(l, "x.esxi1.lab.example"));     // no subdomains
  EXPECT_FALSE(allowed(l, "esxi1.lab.example.evil"));  // no prefix matching
  EXPECT_FALSE(allowed(l, "esxi1.lab.example.."));     // one trailing dot only
  EXPECT_FALSE(allowed(l, ""));
}

TEST(AllowList, ANameIsNeverMatchedByAddressNorAnAddressByName) {
  // No DNS: a listed name does not allow its address, a listed address does
  // not allow a name that might resolve to it.
  auto l = list({"localhost", "192.0.2.10"});
  EXPECT_TRUE(allowed(l, "localhost"));
  EXPECT_FALSE(allowed(l, "127.0.0.1"));
  EXPECT_FALSE(allowed(l, "::1"));
  EXPECT_TRUE(allowed(l, "192.0.2.10"));
  EXPECT_FALSE(allowed(l, "host-192-0-2-10.example"));
  // localhost and loopback are not special.
  auto none = list({"esxi1.lab"});
  EXPECT_FALSE(allowed(none, "localhost"));
  EXPECT_FALSE(allowed(none, "127.0.0.1"));
  EXPECT_FALSE(allowed(none, "::1"));
}

TEST(AllowList, IPv4AddressesAndNetworks) {
  auto l = list({"192.0.2.0/24", "198.51.100.7", "203.0.113.128/25"});
  EXPECT_TRUE(allowed(l, "192.0.2.0"));
  EXPECT_TRUE(allowed(l, "192.0.2.255"));
  EXPECT_FALSE(allowed(l, "192.0.3.0"));
  EXPECT_FALSE(allowed(l, "192.0.1.255"));
  EXPECT_TRUE(allowed(l, "198.51.100.7"));
  EXPECT_FALSE(allowed(l, "198.51.100.8"));
  EXPECT_TRUE(allowed(l, "203.0.113.200"));
  EXPECT_FALSE(allowed(l, "203.0.113.127"));
  auto all = list({"0.0.0.0/0"});
  EXPECT_TRUE(allowed(all, "198.18.0.1"));
  EXPECT_FALSE(allowed(all, "2001:db8::1"));
  EXPECT_FALSE(allowed(all, "esxi1.lab"));
}

TEST(AllowList, ShortAndNumericIPv4FormsAreTheAddressesTheResolverReads) {
  // getaddrinfo and curl read these as 127.0.0.1: they must not pass as names
  // nor dodge a network check.
  auto loop = list({"127.0.0.0/8"});
  for (const char* h : {"127.1", "127.0.1", "2130706433", "0x7f000001", "0x7f.1", "0177.0.0.1"})
    EXPECT_TRUE(allowed(loop, h)) << h;
  auto names = list({"192.0.2.0/24"});
  for (const char* h : {"127.1", "2130706433", "0x7f000001", "0177.0.0.1"})
    EXPECT_FALSE(allowed(names, h)) << h;
}

TEST(AllowList, IPv6AddressesNetworksZonesAndMappedIPv4) {
  auto l = list({"2001:db8::/32", "fe80::1", "[2001:db8:ffff::5]", "192.0.2.0/24"});
  EXPECT_TRUE(allowed(l, "2001:db8::1"));
  EXPECT_TRUE(allowed(l, "2001:DB8:0:0::abcd"));
  EXPECT_TRUE(allowed(l, "[2001:db8::1]"));
  EXPECT_FALSE(allowed(l, "2001:db9::1"));
  // A zone id is ignored: the listed address matches on any interface.
  EXPECT_TRUE(allowed(l, "fe80::1%eth0"));
  EXPECT_TRUE(allowed(l, "[fe80::1%eth0]"));
  EXPECT_FALSE(allowed(l, "fe80::2%eth0"));
  // IPv4-mapped IPv6 is the IPv4 address, both ways.
  EXPECT_TRUE(allowed(l, "::ffff:192.0.2.1"));
  EXPECT_TRUE(allowed(l, "::FFFF:c000:0201"));
  EXPECT_FALSE(allowed(l, "::ffff:198.51.100.1"));
  EXPECT_FALSE(allowed(l, "::192.0.2.1"));  // IPv4-compatible: another address
  auto mapped = list({"::ffff:198.51.100.0/120"});
  EXPECT_TRUE(allowed(mapped, "198.51.100.9"));
  EXPECT_FALSE(allowed(mapped, "198.51.101.9"));
  // Garbage with colons is neither an address nor a name.
  EXPECT_FALSE(allowed(l, "2001:db8::1::2"));
  EXPECT_FALSE(allowed(l, "[2001:db8::1"));
}

TEST(AllowList, EmptyListAllowsNothing) {
  std::vector<AllowEntry> none;
  EXPECT_FALSE(allowed(none, "esxi1.lab"));
  EXPECT_FALSE(allowed(none, "127.0.0.1"));
  EXPECT_FALSE(allowed(none, "::1"));
}

TEST(AllowList, MalformedEntriesAreRefusedWithAReason) {
  EXPECT_NE(refusal("192.0.2.1/24").find("host bits are set; the network is 192.0.2.0/24"),
            std::string::npos);
  EXPECT_NE(refusal("2001:db8::1/32").find("2001:db8::/32"), std::string::npos);
  EXPECT_NE(refusal("192.0.2.0/33").find("0 to 32"), std::string::npos);
  EXPECT_NE(refusal("2001:db8::/129").find("0 to 128"), std::string::npos);
  EXPECT_NE(refusal("192.0.2.0/").find("prefix length"), std::string::npos);
  EXPECT_NE(refusal("192.0.2.0/x").find("prefix length"), std::string::npos);
  EXPECT_NE(refusal("192.0.2.0/-1").find("prefix length"), std::string::npos);
  EXPECT_NE(refusal("esxi1/24").find("ADDRESS/BITS"), std::string::npos);
  EXPECT_NE(refusal("fe80::1%eth0").find("zone id"), std::string::npos);
  EXPECT_NE(refusal("10.1").find("short or numeric IPv4"), std::string::npos);
  EXPECT_NE(refusal("2130706433").find("short or numeric IPv4"), std::string::npos);
  EXPECT_NE(refusal("0x0a000001").find("short or numeric IPv4"), std::string::npos);
  EXPECT_NE(refusal("*.lab.example").find("wildcards"), std::string::npos);
  EXPECT_NE(refusal("").find("empty"), std::string::npos);
  for (const char* bad : {"esxi 1", "a..b", ".lab", "host:443", "https://esxi1", "a/b/c", "é.lab"})
    EXPECT_FALSE(refusal(bad).empty()) << bad;
}

}  // namespace
