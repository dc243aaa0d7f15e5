#include "ceso/vmspec.hpp"

#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "ceso/error.hpp"

namespace {

using namespace ceso::vmspec;

// A config.hardware.device value as an ESXi host returns it.
const char* kDevices =
    R"(<val xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="ArrayOfVirtualDevice">
<VirtualDevice xsi:type="VirtualIDEController"><key>200</key><busNumber>0</busNumber></VirtualDevice>
<VirtualDevice xsi:type="ParaVirtualSCSIController"><key>1000</key><deviceInfo><label>SCSI 0</label><summary>pv</summary></deviceInfo><controllerKey>100</controllerKey><unitNumber>3</unitNumber><busNumber>0</busNumber><device>2000</device><hotAddRemove>true</hotAddRemove><sharedBus>noSharing</sharedBus></VirtualDevice>
<VirtualDevice xsi:type="VirtualDisk"><key>2000</key><deviceInfo><label>Hard disk 1</label><summary>x</summary></deviceInfo><backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>[ds1] a &amp; b/a &amp; b.vmdk</fileName><diskMode>persistent</diskMode><thinProvisioned>true</thinProvisioned></backing><controllerKey>1000</controllerKey><unitNumber>0</unitNumber><capacityInKB>4096</capacityInKB><capacityInBytes>4194304</capacityInBytes></VirtualDevice>
<VirtualDevice xsi:type="VirtualDisk"><key>2001</key><backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>[ds1] x/y.vmdk</fileName></backing><controllerKey>200</controllerKey><unitNumber>1</unitNumber><capacityInKB>1024</capacityInKB></VirtualDevice>
<VirtualDevice xsi:type="VirtualVmxnet3"><key>4000</key><deviceInfo><label>Network adapter 1</label><summary>VM Network</summary></deviceInfo><backing xsi:type="VirtualEthernetCardNetworkBackingInfo"><deviceName>VM Network</deviceName></backing><addressType>generated</addressType><macAddress>00:0c:29:aa:bb:cc</macAddress></VirtualDevice>
</val>)";

TEST(VmspecSizes, MemoryUnits) {
  EXPECT_EQ(parse_memory_mib("2048"), 2048);
  EXPECT_EQ(parse_memory_mib("2G"), 2048);
  EXPECT_EQ(parse_memory_mib("2GiB"), 2048);
  EXPECT_EQ(parse_memory_mib("512M"), 512);
  EXPECT_EQ(parse_memory_mib("1t"), 1024 * 1024);
  for (const char* bad : {"", "x", "2X", "-4", "0", "3", "2.5G"})
    EXPECT_THROW(parse_memory_mib(bad), ceso::Error) << bad;
}

TEST(VmspecSizes, DiskGrow) {
  auto to = parse_disk_grow("40");
  EXPECT_FALSE(to.relative);
  EXPECT_EQ(to.bytes, 40LL << 30);
  auto by = parse_disk_grow("+512M");
  EXPECT_TRUE(by.relative);
  EXPECT_EQ(grown_capacity(by, 1LL << 30), (1LL << 30) + (512LL << 20));
  EXPECT_EQ(grown_capacity(parse_disk_grow("1G"), 1LL << 30), 1LL << 30);
  EXPECT_THROW(grown_capacity(parse_disk_grow("1G"), 2LL << 30), ceso::Error);
  EXPECT_THROW(parse_disk_grow("+"), ceso::Error);
}

TEST(VmspecIdentity, MacsInVmwareManualRangeAndDistinct) {
  std::regex re("00:50:56:[0-3][0-9a-f]:[0-9a-f]{2}:[0-9a-f]{2}");
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    std::string m = random_mac();
    EXPECT_TRUE(std::regex_match(m, re)) << m;
    seen.insert(m);
  }
  EXPECT_GT(seen.size(), 190u);
}

TEST(VmspecIdentity, UuidV4) {
  std::regex re("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  std::string a = random_uuid(), b = random_uuid();
  EXPECT_TRUE(std::regex_match(a, re)) << a;
  EXPECT_NE(a, b);
}

TEST(VmspecPaths, DatastorePath) {
  auto p = parse_datastore_path("[datastore 1] web 01/web 01.vmdk");
  EXPECT_EQ(p.datastore, "datastore 1");
  EXPECT_EQ(p.path, "web 01/web 01.vmdk");
  EXPECT_EQ(p.text(), "[datastore 1] web 01/web 01.vmdk");
  EXPECT_EQ(dir_name(p.path), "web 01");
  EXPECT_EQ(base_name(p.path), "web 01.vmdk");
  EXPECT_THROW(parse_datastore_path("web.vmdk"), ceso::Error);
}

TEST(VmspecHardware, ParsesControllersDisksNics) {
  auto root = ceso::xml::parse(kDevices);
  Hardware hw = parse_hardware(root);
  ASSERT_EQ(hw.controllers.size(), 1u);  // IDE is a default device
  EXPECT_EQ(hw.controllers[0].type, "ParaVirtualSCSIController");
  ASSERT_EQ(hw.disks.size(), 2u);
  EXPECT_EQ(hw.disks[0].file, "[ds1] a & b/a & b.vmdk");
  EXPECT_EQ(hw.disks[0].capacity_bytes, 4194304);
  EXPECT_TRUE(hw.disks[0].thin);
  EXPECT_EQ(hw.disks[0].controller_type, "ParaVirtualSCSIController");
  EXPECT_EQ(hw.disks[1].capacity_bytes, 1024 * 1024);
  EXPECT_EQ(disk_adapter_type(hw.disks[0].controller_type), "lsiLogic");
  EXPECT_EQ(disk_adapter_type(hw.disks[1].controller_type), "ide");
  EXPECT_EQ(disk_adapter_type("VirtualBusLogicController"), "busLogic");
  ASSERT_EQ(hw.nics.size(), 1u);
  EXPECT_EQ(hw.nics[0].type, "VirtualVmxnet3");
  EXPECT_EQ(hw.nics[0].mac, "00:0c:29:aa:bb:cc");
  EXPECT_EQ(hw.nics[0].network, "VM Network");
}

TEST(VmspecXml, ControllerCopyDropsHostOwnedFields) {
  auto root = ceso::xml::parse(kDevices);
  Hardware hw = parse_hardware(root);
  std::string x = controller_add_xml(hw.controllers[0], -100);
  EXPECT_EQ(x,
            "<device xsi:type=\"ParaVirtualSCSIController\"><key>-100</key><busNumber>0</busNumber>"
            "<hotAddRemove>true</hotAddRemove><sharedBus>noSharing</sharedBus></device>");
}

TEST(VmspecXml, DiskAttachEscapesAndKeepsWsdlOrder) {
  auto root = ceso::xml::parse(kDevices);
  Hardware hw = parse_hardware(root);
  std::string x = disk_attach_xml(hw.disks[0], -101, -100, "[ds1] n & <m>/n & <m>.vmdk", true);
  EXPECT_EQ(x,
            "<device xsi:type=\"VirtualDisk\"><key>-101</key>"
            "<backing xsi:type=\"VirtualDiskFlatVer2BackingInfo\">"
            "<fileName>[ds1] n &amp; &lt;m&gt;/n &amp; &lt;m&gt;.vmdk</fileName>"
            "<diskMode>persistent</diskMode><thinProvisioned>true</thinProvisioned></backing>"
            "<controllerKey>-100</controllerKey><unitNumber>0</unitNumber>"
            "<capacityInKB>4096</capacityInKB><capacityInBytes>4194304</capacityInBytes></device>");
}

TEST(VmspecXml, CopyDiskSpecIsNeverNil) {
  EXPECT_EQ(copy_disk_spec_xml("lsiLogic", true, 4194304),
            "<destSpec xsi:type=\"FileBackedVirtualDiskSpec\"><diskType>thin</diskType>"
            "<adapterType>lsiLogic</adapterType><capacityKb>4096</capacityKb></destSpec>");
  EXPECT_NE(copy_disk_spec_xml("ide", false, 1024).find("<diskType>preallocated</diskType>"),
            std::string::npos);
}

TEST(VmspecXml, NicAddAndEdits) {
  auto root = ceso::xml::parse(kDevices);
  Hardware hw = parse_hardware(root);
  std::string add = nic_add_xml(hw.nics[0], -102, "00:50:56:01:02:03", "");
  EXPECT_NE(add.find("<deviceName>VM Network</deviceName>"), std::string::npos);
  EXPECT_NE(add.find("<addressType>manual</addressType><macAddress>00:50:56:01:02:03</macAddress>"),
            std::string::npos);
  std::string edit = nic_mac_xml(hw.nics[0], "00:50:56:01:02:04", "DMZ & <1>");
  EXPECT_NE(edit.find("<key>4000</key><deviceInfo><label>Network adapter 1</label>"),
            std::string::npos);
  EXPECT_NE(edit.find("<deviceName>DMZ &amp; &lt;1&gt;</deviceName>"), std::string::npos);
  EXPECT_NE(edit.find("<macAddress>00:50:56:01:02:04</macAddress>"), std::string::npos);
  EXPECT_EQ(edit.find("00:0c:29"), std::string::npos);
  std::string grow = disk_resize_xml(hw.disks[0], 8388608);
  EXPECT_NE(
      grow.find("<capacityInKB>8192</capacityInKB><capacityInBytes>8388608</capacityInBytes>"),
      std::string::npos);
  EXPECT_NE(grow.find("<fileName>[ds1] a &amp; b/a &amp; b.vmdk</fileName>"), std::string::npos);
}

TEST(VmspecXml, ConfigSpecOrderAndEscaping) {
  ConfigSpec s;
  EXPECT_TRUE(s.empty());
  s.name = "a & <b>";
  s.uuid = "u";
  s.guest_id = "ubuntu64Guest";
  s.annotation = "\"q\"";
  s.num_cpus = 2;
  s.memory_mib = 2048;
  s.vm_path_name = "[ds] a/a.vmx";
  s.extra_config = {{"guestinfo.metadata", "x<y"}};
  s.firmware = "efi";
  EXPECT_FALSE(s.empty());
  EXPECT_EQ(s.xml("config"),
            "<config xsi:type=\"VirtualMachineConfigSpec\"><name>a &amp; &lt;b&gt;</name>"
            "<uuid>u</uuid><guestId>ubuntu64Guest</guestId><annotation>&quot;q&quot;</annotation>"
            "<files><vmPathName>[ds] a/a.vmx</vmPathName></files><numCPUs>2</numCPUs>"
            "<memoryMB>2048</memoryMB><extraConfig xsi:type=\"OptionValue\"><key>guestinfo.metadata"
            "</key><value xsi:type=\"xsd:string\">x&lt;y</value></extraConfig>"
            "<firmware>efi</firmware></config>");
}

TEST(VmspecXml, InheritableExtraConfig) {
  EXPECT_TRUE(inheritable_extra_config("disk.EnableUUID"));
  EXPECT_FALSE(inheritable_extra_config("guestinfo.metadata"));
  EXPECT_FALSE(inheritable_extra_config("ceso.tags"));
  EXPECT_FALSE(inheritable_extra_config("sched.swap.derivedName"));
  EXPECT_FALSE(inheritable_extra_config("ethernet0.generatedAddress"));
}

}  // namespace
