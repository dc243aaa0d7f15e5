#include "vm/pci.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "base/error.hpp"
#include "base/xml.hpp"
#include "vm/spec.hpp"

namespace {

using ceso::PciIds;

ceso::Exit code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ceso::Error& e) {
    return e.code();
  }
  return ceso::Exit::ok;
}

TEST(PciAddress, CanonicalForms) {
  EXPECT_EQ(ceso::parse_pci_address("0000:3b:00.0"), "0000:3b:00.0");
  EXPECT_EQ(ceso::parse_pci_address("3b:00.0"), "0000:3b:00.0");
  EXPECT_EQ(ceso::parse_pci_address("0000:AF:1F.7"), "0000:af:1f.7");
  EXPECT_EQ(ceso::parse_pci_address("abcd:ff:00.1"), "abcd:ff:00.1");
}

TEST(PciAddress, RefusedWithUsageAndReason) {
  for (const char* bad : {"", "3b:00", "0000:3b:00.8", "0000:3b:20.0", "zz:00.0", "../3b:00.0",
                          "0000:3b:00.0.0", "00000:3b:00.0", "3b.00.0", "3b:0.0", "0000:3b:00.",
                          "0000:3b:00.0\n", " 3b:00.0", "0x3b:00.0", "0000:3b:00.-1"}) {
    EXPECT_EQ(code_of([&] { ceso::parse_pci_address(bad, "ADDRESS"); }), ceso::Exit::usage) << bad;
  }
  try {
    ceso::parse_pci_address("0000:3b:00.9", "ADDRESS");
    FAIL();
  } catch (const ceso::Error& e) {
    EXPECT_NE(std::string(e.what()).find("ADDRESS: '0000:3b:00.9' is not a PCI address"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("function is 0 to 7"), std::string::npos);
  }
  std::string huge(100000, 'a');
  EXPECT_EQ(code_of([&] { ceso::parse_pci_address(huge); }), ceso::Exit::usage);
}

TEST(PciIds, HexOnly) {
  EXPECT_EQ(ceso::parse_pci_ids("10de:1eb8"), (PciIds{0x10de, 0x1eb8}));
  EXPECT_EQ(ceso::parse_pci_ids("0x10DE:0x1EB8"), (PciIds{0x10de, 0x1eb8}));
  EXPECT_EQ(ceso::parse_pci_ids("8086:1"), (PciIds{0x8086, 0x0001}));
  for (const char* bad : {"", "10de", "10de:", ":1eb8", "10de:1eb8:0", "g0de:1eb8", "10de:12345",
                          "0000:1eb8", "ffff:1eb8", "-1:1", "10de 1eb8", "0x:1"})
    EXPECT_EQ(code_of([&] { ceso::parse_pci_ids(bad); }), ceso::Exit::usage) << bad;
  EXPECT_EQ(ceso::pci_ids_text({0x10de, 0x1eb8}), "10de:1eb8");
  EXPECT_EQ(ceso::hex4(0x0a), "000a");
}

TEST(PciIds, DecimalReadingForTheHint) {
  // govc 0.24 wrote 0x10de:0x1eb8 as 4318:7864.
  EXPECT_EQ(ceso::decimal_reading("4318:7864"), (PciIds{0x10de, 0x1eb8}));
  EXPECT_FALSE(ceso::decimal_reading("10de:1eb8"));
  EXPECT_FALSE(ceso::decimal_reading("70000:1"));
  EXPECT_FALSE(ceso::decimal_reading("1"));
  EXPECT_FALSE(ceso::decimal_reading(":1"));
}

TEST(PciClass, NamesAndGpus) {
  EXPECT_EQ(ceso::pci_class_name(0x0302), "3D controller");
  EXPECT_EQ(ceso::pci_class_name(0x0200), "Ethernet controller");
  EXPECT_EQ(ceso::pci_class_name(0x0c99), "class 0x0c99");
  EXPECT_TRUE(ceso::is_gpu_class(0x0300));
  EXPECT_TRUE(ceso::is_gpu_class(0x0302));
  EXPECT_FALSE(ceso::is_gpu_class(0x0403));
}

// hardware.pciDevice and config.pciPassthruInfo as the simulator (and ESXi)
// send them: signed 16-bit ids.
const char* kHostDevices =
    R"(<val xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="ArrayOfHostPciDevice">
<HostPciDevice xsi:type="HostPciDevice"><id>0000:18:00.0</id><classId>512</classId><bus>24</bus><slot>0</slot><function>0</function><vendorId>-32634</vendorId><subVendorId>-32634</subVendorId><vendorName>Intel Corporation</vendorName><deviceId>5490</deviceId><subDeviceId>6</subDeviceId><deviceName>Ethernet Controller X710 for 10GbE SFP+</deviceName></HostPciDevice>
<HostPciDevice xsi:type="HostPciDevice"><id>0000:3b:00.0</id><classId>770</classId><bus>59</bus><slot>0</slot><function>0</function><vendorId>4318</vendorId><subVendorId>4318</subVendorId><vendorName>NVIDIA Corporation</vendorName><deviceId>7864</deviceId><subDeviceId>4770</subDeviceId><deviceName>TU104GL [Tesla T4]</deviceName></HostPciDevice>
</val>)";
const char* kPassthruInfo =
    R"(<val xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="ArrayOfHostPciPassthruInfo">
<HostPciPassthruInfo xsi:type="HostPciPassthruInfo"><id>0000:18:00.0</id><dependentDevice>0000:18:00.0</dependentDevice><passthruEnabled>true</passthruEnabled><passthruCapable>true</passthruCapable><passthruActive>false</passthruActive></HostPciPassthruInfo>
<HostPciPassthruInfo xsi:type="HostPciPassthruInfo"><id>0000:3b:00.0</id><dependentDevice>0000:3b:00.0</dependentDevice><passthruEnabled>true</passthruEnabled><passthruCapable>true</passthruCapable><passthruActive>true</passthruActive></HostPciPassthruInfo>
</val>)";

TEST(PciDevices, FromHostProperties) {
  auto devs = ceso::xml::parse(kHostDevices);
  auto info = ceso::xml::parse(kPassthruInfo);
  auto d = ceso::pci_devices_from(&devs, &info);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].id, "0000:18:00.0");
  EXPECT_EQ(d[0].ids, (PciIds{0x8086, 0x1572}));  // -32634 read through uint16
  EXPECT_EQ(d[0].class_id, 0x0200);
  EXPECT_TRUE(d[0].capable && d[0].enabled && !d[0].active);
  EXPECT_FALSE(d[0].assignable());
  EXPECT_EQ(d[1].ids, (PciIds{0x10de, 0x1eb8}));
  EXPECT_TRUE(d[1].assignable());
  d[1].users.push_back({"vm-9", "gpu01", "on"});
  EXPECT_FALSE(d[1].assignable());
  auto r = ceso::pci_record(d[1], "esx1:443");
  EXPECT_EQ(r["type"], "pci");
  EXPECT_EQ(r["address"], "0000:3b:00.0");
  EXPECT_EQ(r["ids"], "10de:1eb8");
  EXPECT_EQ(r["class"], "3D controller");
  EXPECT_EQ(r["vm"], "gpu01");
  EXPECT_EQ(r["passthrough"]["reboot_needed"], false);
  EXPECT_EQ(ceso::pci_record(d[0], "e")["passthrough"]["reboot_needed"], true);
  // Without passthrough info: not capable; without devices: nothing.
  EXPECT_FALSE(ceso::pci_devices_from(&devs, nullptr)[0].capable);
  EXPECT_TRUE(ceso::pci_devices_from(nullptr, &info).empty());
}

TEST(PciDevices, HostileNumbersAreRefused) {
  std::string bad = kHostDevices;
  bad.replace(bad.find("<vendorId>4318"), 14, "<vendorId>99999");
  auto devs = ceso::xml::parse(bad);
  EXPECT_EQ(code_of([&] { ceso::pci_devices_from(&devs, nullptr); }), ceso::Exit::failure);
}

const char* kVmDevices =
    R"(<val xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="ArrayOfVirtualDevice">
<VirtualDevice xsi:type="VirtualVmxnet3"><key>4000</key></VirtualDevice>
<VirtualDevice xsi:type="VirtualPCIPassthrough"><key>13000</key><deviceInfo><label>PCI device 0</label></deviceInfo><backing xsi:type="VirtualPCIPassthroughDeviceBackingInfo"><deviceName></deviceName><id>0000:3b:00.0</id><deviceId>1eb8</deviceId><systemId>5f1b</systemId><vendorId>4318</vendorId></backing></VirtualDevice>
<VirtualDevice xsi:type="VirtualPCIPassthrough"><key>13001</key><backing xsi:type="VirtualPCIPassthroughDynamicBackingInfo"><deviceName></deviceName><allowedDevice><vendorId>4318</vendorId><deviceId>7728</deviceId></allowedDevice><assignedId>0000:af:00.0</assignedId></backing></VirtualDevice>
<VirtualDevice xsi:type="VirtualPCIPassthrough"><key>13002</key><backing xsi:type="VirtualPCIPassthroughVmiopBackingInfo"><vgpu>grid_t4-4q</vgpu></backing></VirtualDevice>
</val>)";

TEST(VmPci, StaticAndDynamicDevices) {
  auto devs = ceso::xml::parse(kVmDevices);
  auto p = ceso::vm_pci_devices(devs);
  ASSERT_EQ(p.size(), 2u);  // the vGPU is not ceso's
  EXPECT_FALSE(p[0].dynamic);
  EXPECT_EQ(p[0].id, "0000:3b:00.0");
  EXPECT_EQ(p[0].device_id, "1eb8");
  EXPECT_EQ(p[0].vendor_id, 0x10de);
  EXPECT_EQ(p[0].label, "PCI device 0");
  EXPECT_TRUE(p[1].dynamic);
  ASSERT_EQ(p[1].allowed.size(), 1u);
  EXPECT_EQ(p[1].allowed[0], (PciIds{0x10de, 0x1e30}));
  EXPECT_EQ(p[1].assigned_id, "0000:af:00.0");
  auto j = ceso::vm_pci_json(p);
  EXPECT_EQ(j[0]["kind"], "static");
  EXPECT_EQ(j[0]["vendor_id"], "10de");
  EXPECT_EQ(j[1]["allowed"][0], "10de:1e30");
  EXPECT_EQ(j[1]["address"], "0000:af:00.0");
}

TEST(VmPci, ConfigTarget) {
  auto t = ceso::xml::parse(
      R"(<returnval xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><numCpus>2</numCpus>
<pciPassthrough xsi:type="VirtualMachinePciPassthroughInfo"><name>T4</name><pciDevice><id>0000:3b:00.0</id><classId>770</classId><bus>59</bus><slot>0</slot><function>0</function><vendorId>4318</vendorId><subVendorId>4318</subVendorId><vendorName>NVIDIA Corporation</vendorName><deviceId>7864</deviceId><subDeviceId>4770</subDeviceId><deviceName>T4</deviceName></pciDevice><systemId>5f1b-x</systemId></pciPassthrough>
<pciPassthrough xsi:type="VirtualMachineSriovInfo"><name>vf</name></pciPassthrough>
<dynamicPassthrough><name>T4</name><vendorName>NVIDIA</vendorName><deviceName>T4</deviceName><vendorId>4318</vendorId><deviceId>7864</deviceId></dynamicPassthrough>
</returnval>)");
  auto target = ceso::passthrough_target_from(t);
  ASSERT_EQ(target.devices.size(), 1u);
  EXPECT_EQ(target.devices[0].system_id, "5f1b-x");
  EXPECT_EQ(target.devices[0].device.ids, (PciIds{0x10de, 0x1eb8}));
  ASSERT_TRUE(target.dynamic_supported());
  EXPECT_EQ(target.dynamic[0], (PciIds{0x10de, 0x1eb8}));
}

TEST(VmPci, BackingsUseHexDeviceIdsAndShortVendorIds) {
  ceso::PciDevice d;
  d.id = "0000:18:00.0";
  d.ids = {0x8086, 0x1572};
  std::string x = ceso::static_passthrough_xml(d, "sys-1", -100);
  EXPECT_EQ(x,
            "<device xsi:type=\"VirtualPCIPassthrough\"><key>-100</key>"
            "<backing xsi:type=\"VirtualPCIPassthroughDeviceBackingInfo\"><deviceName></deviceName>"
            "<id>0000:18:00.0</id><deviceId>1572</deviceId><systemId>sys-1</systemId>"
            "<vendorId>-32634</vendorId></backing></device>");
  std::string y = ceso::dynamic_passthrough_xml({0x10de, 0x1eb8}, -101);
  EXPECT_NE(y.find("VirtualPCIPassthroughDynamicBackingInfo\"><deviceName></deviceName>"
                   "<allowedDevice><vendorId>4318</vendorId><deviceId>7864</deviceId>"
                   "</allowedDevice>"),
            std::string::npos)
      << y;
}

TEST(VmPci, ConfigSpecLocksMemoryAfterFirmware) {
  ceso::vmspec::ConfigSpec s;
  EXPECT_TRUE(s.empty());
  s.memory_reservation_locked_to_max = true;
  EXPECT_FALSE(s.empty());
  s.firmware = "efi";
  std::string x = s.xml("spec");
  EXPECT_NE(x.find("<firmware>efi</firmware><memoryReservationLockedToMax>true"
                   "</memoryReservationLockedToMax>"),
            std::string::npos)
      << x;
}

}  // namespace
