#include "vm/net.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "base/error.hpp"
#include "base/xml.hpp"

namespace {

ceso::Exit code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ceso::Error& e) {
    return e.code();
  }
  return ceso::Exit::ok;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ceso::Error& e) {
    return e.what();
  }
  return "";
}

TEST(Vlan, Range) {
  EXPECT_EQ(ceso::parse_vlan("0"), 0);
  EXPECT_EQ(ceso::parse_vlan("1"), 1);
  EXPECT_EQ(ceso::parse_vlan("4094"), 4094);
  EXPECT_EQ(ceso::parse_vlan("4095"), 4095);
  for (const char* bad : {"", "4096", "5000", "-1", "abc", "1.5", " 10", "10 ", "+10", "0x10",
                          "99999999999999999999", "10\n"})
    EXPECT_EQ(code_of([&] { ceso::parse_vlan(bad); }), ceso::Exit::usage) << bad;
  EXPECT_NE(message_of([] { ceso::parse_vlan("4096"); }).find("--vlan"), std::string::npos);
  EXPECT_NE(message_of([] { ceso::parse_vlan("4096"); }).find("4095"), std::string::npos);
}

TEST(PortgroupName, Rule) {
  using ceso::Exit;
  auto check = [](std::string_view n) {
    return code_of([&] { ceso::check_portgroup_name(n, "PORTGROUP", Exit::usage); });
  };
  EXPECT_EQ(check("VLAN 10"), Exit::ok);
  EXPECT_EQ(check("a/b\\c%d"), Exit::ok);  // not inventory names: no escaping
  EXPECT_EQ(check(std::string(59, 'x')), Exit::ok);
  EXPECT_EQ(check("netz-\xc3\xa4"), Exit::ok);
  for (std::string bad :
       {std::string(), std::string(60, 'x'), std::string("a\nb"), std::string("a\tb"),
        std::string("\x7f"), std::string(" lead"), std::string("trail "), std::string("bad\xff"),
        std::string("rtl\xe2\x80\xae")})
    EXPECT_EQ(check(bad), Exit::usage) << bad;
  EXPECT_NE(message_of([] {
              ceso::check_portgroup_name("", "PORTGROUP", ceso::Exit::usage);
            }).find("PORTGROUP: portgroup name is empty"),
            std::string::npos);
  EXPECT_NE(message_of([] {
              ceso::check_portgroup_name(std::string(60, 'x'), "F", ceso::Exit::bad_input);
            }).find("at most 59"),
            std::string::npos);
}

TEST(PortgroupSpec, WsdlOrderAndEscaping) {
  EXPECT_EQ(ceso::portgroup_spec_xml({"a<b&", 4095, "vSwitch0"}),
            "<portgrp><name>a&lt;b&amp;</name><vlanId>4095</vlanId>"
            "<vswitchName>vSwitch0</vswitchName><policy></policy></portgrp>");
}

TEST(DvPortgroupSpec, VlanIdOrTrunk) {
  EXPECT_EQ(
      ceso::dvportgroup_spec_xml("web", 10),
      "<spec><name>web</name><numPorts>8</numPorts>"
      "<defaultPortConfig xsi:type=\"VMwareDVSPortSetting\">"
      "<vlan xsi:type=\"VmwareDistributedVirtualSwitchVlanIdSpec\"><inherited>false</inherited>"
      "<vlanId>10</vlanId></vlan></defaultPortConfig>"
      "<type>earlyBinding</type><autoExpand>true</autoExpand></spec>");
  std::string trunk = ceso::dvportgroup_spec_xml("t&", 4095);
  EXPECT_NE(trunk.find("<name>t&amp;</name>"), std::string::npos);
  EXPECT_NE(trunk.find("VmwareDistributedVirtualSwitchTrunkVlanSpec\"><inherited>false</inherited>"
                       "<vlanId><start>0</start><end>4094</end></vlanId>"),
            std::string::npos);
}

// A VLAN change sends only the configVersion read and the VLAN: every other
// field of the portgroup stays as it is on vCenter.
TEST(DvPortgroupSpec, VlanChangeCarriesTheConfigVersion) {
  EXPECT_EQ(ceso::dvportgroup_vlan_spec_xml("7", 20),
            "<spec><configVersion>7</configVersion>"
            "<defaultPortConfig xsi:type=\"VMwareDVSPortSetting\">"
            "<vlan xsi:type=\"VmwareDistributedVirtualSwitchVlanIdSpec\"><inherited>false"
            "</inherited><vlanId>20</vlanId></vlan></defaultPortConfig></spec>");
  std::string trunk = ceso::dvportgroup_vlan_spec_xml("<&>", 4095);
  EXPECT_NE(trunk.find("<configVersion>&lt;&amp;&gt;</configVersion>"), std::string::npos);
  EXPECT_NE(trunk.find("TrunkVlanSpec"), std::string::npos);
  EXPECT_EQ(trunk.find("<name>"), std::string::npos);
}

const char* kNetworkInfo = R"(<val xsi:type="HostNetworkInfo">
  <vswitch><name>vSwitch0</name><key>key-vim.host.VirtualSwitch-vSwitch0</key>
    <numPorts>1536</numPorts><mtu>1500</mtu>
    <portgroup>key-vim.host.PortGroup-VM Network</portgroup>
    <pnic>key-vim.host.PhysicalNic-vmnic0</pnic></vswitch>
  <vswitch><name>vSwitch1</name><key>key-vim.host.VirtualSwitch-vSwitch1</key><mtu>9000</mtu></vswitch>
  <portgroup><key>key-vim.host.PortGroup-VM Network</key>
    <vswitch>key-vim.host.VirtualSwitch-vSwitch0</vswitch>
    <spec><name>VM Network</name><vlanId>0</vlanId><vswitchName>vSwitch0</vswitchName><policy/></spec></portgroup>
  <portgroup><key>key-vim.host.PortGroup-Management Network</key>
    <port><key>p1</key><type>host</type></port>
    <spec><name>Management Network</name><vlanId>4095</vlanId><vswitchName>vSwitch0</vswitchName><policy/></spec></portgroup>
  <portgroup><key>key-vim.host.PortGroup-odd</key>
    <spec><name>odd</name><vlanId>5000</vlanId><vswitchName>vSwitch1</vswitchName><policy/></spec></portgroup>
</val>)";

TEST(HostNet, FromNetworkInfo) {
  auto info = ceso::xml::parse(kNetworkInfo);
  ceso::HostNet h;
  h.name = "esx1";
  ceso::host_net_from(h, info);
  ASSERT_EQ(h.vswitches.size(), 2u);
  ASSERT_EQ(h.portgroups.size(), 3u);
  const auto* vs0 = h.vswitch("vSwitch0");
  ASSERT_NE(vs0, nullptr);
  EXPECT_EQ(vs0->ports, 1536);
  EXPECT_EQ(vs0->mtu, 1500);
  EXPECT_EQ(vs0->uplinks, std::vector<std::string>{"vmnic0"});
  EXPECT_EQ(vs0->portgroups, (std::vector<std::string>{"VM Network", "Management Network"}));
  const auto* mgmt = h.portgroup("Management Network");
  ASSERT_NE(mgmt, nullptr);
  EXPECT_TRUE(mgmt->vmkernel);
  EXPECT_EQ(mgmt->vlan, 4095);
  auto r = ceso::net_record(*mgmt, "esx1:443");
  EXPECT_EQ(r["type"], "net");
  EXPECT_EQ(r["kind"], "portgroup");
  EXPECT_EQ(r["vlan"], 4095);
  EXPECT_EQ(r["trunk"], true);
  EXPECT_EQ(r["vswitch"], "vSwitch0");
  EXPECT_EQ(r["host"], "esx1");
  EXPECT_EQ(r["clients"], 0);
  // A VLAN id out of range from the host is shown as unknown, not trusted.
  const auto* odd = h.portgroup("odd");
  ASSERT_NE(odd, nullptr);
  EXPECT_FALSE(odd->vlan.has_value());
  EXPECT_TRUE(ceso::net_record(*odd, "e")["vlan"].is_null());
  EXPECT_EQ(h.portgroup("nope"), nullptr);
}

TEST(NetRecord, ClientsCountPoweredOn) {
  ceso::NetEntry e;
  e.kind = "portgroup";
  e.name = "web";
  e.vlan = 10;
  e.clients = {{"vm-1", "a", "on"}, {"vm-2", "b", "off"}};
  auto r = ceso::net_record(e, "x");
  EXPECT_EQ(r["clients"], 1);
  EXPECT_EQ(r["vms"], (ceso::ordered_json{"a", "b"}));
  EXPECT_EQ(r["trunk"], false);
}

}  // namespace
