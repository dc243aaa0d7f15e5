#include "cloudinit/netcfg.hpp"

#include <gtest/gtest.h>

#include <functional>

#include "base/error.hpp"

namespace {

using ceso::parse_ip_address;
using ceso::parse_ip_prefix;

ceso::Exit code_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const ceso::Error& e) {
    return e.code();
  }
  return ceso::Exit::ok;
}

TEST(NetCfg, ParsesAndPrintsCanonicalAddresses) {
  EXPECT_EQ(parse_ip_address("10.0.0.5").text(), "10.0.0.5");
  EXPECT_FALSE(parse_ip_address("10.0.0.5").v6);
  auto a = parse_ip_address("2001:DB8:0:0::5");
  EXPECT_TRUE(a.v6);
  EXPECT_EQ(a.text(), "2001:db8::5");
}

TEST(NetCfg, RejectsBadAddressesAsBadInput) {
  for (const char* bad : {"10.0.0.300", "10.0.0", "", "fe80::1%eth0", "2001:db8:::1", "host"}) {
    EXPECT_EQ(code_of([&] { parse_ip_address(bad); }), ceso::Exit::bad_input) << bad;
  }
}

TEST(NetCfg, PrefixNeedsLengthInRange) {
  auto p = parse_ip_prefix("10.0.0.5/24");
  EXPECT_EQ(p.length, 24u);
  EXPECT_EQ(p.text(), "10.0.0.5/24");
  EXPECT_EQ(parse_ip_prefix("2001:db8::5/64").length, 64u);
  for (const char* bad : {"10.0.0.5", "10.0.0.5/33", "10.0.0.5/", "10.0.0.5/x", "::1/129",
                          "10.0.0.5/-1", "10.0.0.300/24"}) {
    EXPECT_EQ(code_of([&] { parse_ip_prefix(bad); }), ceso::Exit::bad_input) << bad;
  }
}

TEST(NetCfg, MessageQuotesTheWholeText) {
  try {
    parse_ip_prefix("10.0.0.300/24");
    FAIL();
  } catch (const ceso::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'10.0.0.300/24'"), std::string::npos) << e.what();
  }
}

TEST(NetCfg, SubnetMembership) {
  auto p = parse_ip_prefix("10.0.0.5/24");
  EXPECT_TRUE(p.contains(parse_ip_address("10.0.0.1")));
  EXPECT_TRUE(p.contains(parse_ip_address("10.0.0.255")));
  EXPECT_FALSE(p.contains(parse_ip_address("10.0.1.1")));
  EXPECT_FALSE(p.contains(parse_ip_address("::1")));
  auto q = parse_ip_prefix("10.0.0.5/21");
  EXPECT_EQ(q.network().text(), "10.0.0.0");
  EXPECT_TRUE(q.contains(parse_ip_address("10.0.7.254")));
  EXPECT_FALSE(q.contains(parse_ip_address("10.0.8.1")));
  auto v6 = parse_ip_prefix("2001:db8:1:2::5/60");
  EXPECT_EQ(v6.network().text(), "2001:db8:1::");
  EXPECT_TRUE(v6.contains(parse_ip_address("2001:db8:1:f::1")));
  EXPECT_FALSE(v6.contains(parse_ip_address("2001:db8:1:10::1")));
}

TEST(NetCfg, NetworkAndBroadcastAddresses) {
  EXPECT_TRUE(parse_ip_prefix("10.0.0.0/24").is_network());
  EXPECT_FALSE(parse_ip_prefix("10.0.0.1/24").is_network());
  EXPECT_TRUE(parse_ip_prefix("10.0.0.255/24").is_broadcast());
  EXPECT_FALSE(parse_ip_prefix("10.0.0.255/23").is_broadcast());
  EXPECT_FALSE(parse_ip_prefix("10.0.0.1/31").is_broadcast());
  EXPECT_FALSE(parse_ip_prefix("2001:db8::ffff/112").is_broadcast());
}

TEST(NetCfg, AddressKinds) {
  EXPECT_TRUE(parse_ip_address("fe80::1").is_link_local());
  EXPECT_TRUE(parse_ip_address("169.254.1.1").is_link_local());
  EXPECT_FALSE(parse_ip_address("2001:db8::1").is_link_local());
  EXPECT_TRUE(parse_ip_address("::").is_unspecified());
  EXPECT_TRUE(parse_ip_address("0.0.0.0").is_unspecified());
  EXPECT_TRUE(parse_ip_address("127.0.0.2").is_loopback());
  EXPECT_TRUE(parse_ip_address("::1").is_loopback());
  EXPECT_TRUE(parse_ip_address("224.0.0.1").is_multicast());
  EXPECT_TRUE(parse_ip_address("ff02::1").is_multicast());
}

TEST(NetCfg, MacAddresses) {
  EXPECT_EQ(ceso::normalize_mac("00:50:56:AB:cd:EF"), "00:50:56:ab:cd:ef");
  EXPECT_EQ(ceso::normalize_mac("00-50-56-ab-cd-ef"), "00:50:56:ab:cd:ef");
  for (const char* bad : {"00:50:56:ab:cd", "00:50:56:ab:cd:eg", "00:50-56:ab:cd:ef",
                          "0050.56ab.cdef", "01:00:5e:00:00:01"}) {
    EXPECT_EQ(code_of([&] { ceso::normalize_mac(bad); }), ceso::Exit::bad_input) << bad;
  }
}

TEST(NetCfg, HostNamesAndDomains) {
  EXPECT_TRUE(ceso::is_host_label("web01"));
  EXPECT_TRUE(ceso::is_host_label("1web"));
  EXPECT_TRUE(ceso::is_host_label(std::string(63, 'a')));
  EXPECT_FALSE(ceso::is_host_label(std::string(64, 'a')));
  EXPECT_FALSE(ceso::is_host_label("-web"));
  EXPECT_FALSE(ceso::is_host_label("web-"));
  EXPECT_FALSE(ceso::is_host_label("web_01"));
  EXPECT_FALSE(ceso::is_host_label("web.lab"));
  EXPECT_FALSE(ceso::is_host_label(""));
  EXPECT_TRUE(ceso::is_domain_name("web01.lab.example"));
  EXPECT_TRUE(ceso::is_domain_name("lab"));
  EXPECT_FALSE(ceso::is_domain_name("web01..lab"));
  EXPECT_FALSE(ceso::is_domain_name("web01.lab."));
  EXPECT_FALSE(ceso::is_domain_name(std::string(250, 'a') + ".com"));
}

}  // namespace
