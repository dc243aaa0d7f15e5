#include "vm/spec.hpp"

#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "base/error.hpp"

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
  std::string add = nic_add_xml(hw.nics[0], -102, "00:50:56:01:02:03", {});
  EXPECT_NE(add.find("<deviceName>VM Network</deviceName>"), std::string::npos);
  EXPECT_NE(add.find("<addressType>manual</addressType><macAddress>00:50:56:01:02:03</macAddress>"),
            std::string::npos);
  std::string edit = nic_mac_xml(hw.nics[0], "00:50:56:01:02:04", {"DMZ & <1>", "", ""});
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

// Devices as hosts return them, with the morefs their backings carry: ESXi
// (xsi prefix), and vcsim (its XMLSchema-instance prefix, declared locally).
const char* kMorefDevices =
    R"(<val xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="ArrayOfVirtualDevice">
<VirtualDevice xsi:type="VirtualDisk"><key>2000</key><backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>[ds1] a/a.vmdk</fileName><datastore type="Datastore">datastore-11</datastore><diskMode>persistent</diskMode></backing><controllerKey>1000</controllerKey><unitNumber>0</unitNumber><capacityInKB>4096</capacityInKB></VirtualDevice>
<VirtualDevice xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="VirtualVmxnet3"><key>4000</key><backing XMLSchema-instance:type="VirtualEthernetCardNetworkBackingInfo"><deviceName>VM Network</deviceName><network type="Network">network-7</network></backing><addressType>generated</addressType><macAddress>00:0c:29:aa:bb:cc</macAddress></VirtualDevice>
<VirtualDevice xsi:type="VirtualE1000e"><key>4001</key><backing xsi:type="VirtualEthernetCardDistributedVirtualPortBackingInfo"><port><switchUuid>50 1a 2b</switchUuid><portgroupKey>dvportgroup-13</portgroupKey><portKey>7</portKey></port></backing><addressType>generated</addressType><macAddress>00:0c:29:aa:bb:cd</macAddress></VirtualDevice>
</val>)";

// Every retrieved moref sent back keeps its type: a strict deserializer
// (any real host) refuses <datastore>datastore-11</datastore>.
TEST(VmspecXml, EchoedDevicesKeepMorefTypes) {
  auto root = ceso::xml::parse(kMorefDevices);
  Hardware hw = parse_hardware(root);
  ASSERT_EQ(hw.disks.size(), 1u);
  ASSERT_EQ(hw.nics.size(), 2u);
  // Disk growth (ceso-set --disk-grow, mkvm/clone growing the first disk).
  std::string grow = disk_resize_xml(hw.disks[0], 8388608);
  EXPECT_NE(grow.find("<datastore type=\"Datastore\">datastore-11</datastore>"), std::string::npos)
      << grow;
  EXPECT_NE(grow.find("<device xsi:type=\"VirtualDisk\">"), std::string::npos) << grow;
  // A NIC echoed with a new MAC and its own backing (vCenter clone).
  std::string mac = nic_mac_xml(hw.nics[0], "00:50:56:01:02:04");
  EXPECT_NE(mac.find("<device xsi:type=\"VirtualVmxnet3\">"), std::string::npos) << mac;
  EXPECT_NE(mac.find("<backing xsi:type=\"VirtualEthernetCardNetworkBackingInfo\">"
                     "<deviceName>VM Network</deviceName><network type=\"Network\">network-7"
                     "</network></backing>"),
            std::string::npos)
      << mac;
  // Any echoed node (controllers for a new VM use the same path).
  EXPECT_EQ(node_xml(*hw.disks[0].node->child("backing"), "backing", {"fileName", "diskMode"}),
            "<backing xsi:type=\"VirtualDiskFlatVer2BackingInfo\"><datastore type=\"Datastore\">"
            "datastore-11</datastore></backing>");
}

TEST(VmspecXml, DistributedPortgroupBacking) {
  auto root = ceso::xml::parse(kMorefDevices);
  Hardware hw = parse_hardware(root);
  Network dvpg{"DC0_DVPG0", "50 1a 2b", "dvportgroup-13"};
  Network standard{"VM Network", "", ""};
  EXPECT_EQ(network_backing_xml(dvpg),
            "<backing xsi:type=\"VirtualEthernetCardDistributedVirtualPortBackingInfo\"><port>"
            "<switchUuid>50 1a 2b</switchUuid><portgroupKey>dvportgroup-13</portgroupKey></port>"
            "</backing>");
  EXPECT_EQ(network_backing_xml(standard),
            "<backing xsi:type=\"VirtualEthernetCardNetworkBackingInfo\"><deviceName>VM Network"
            "</deviceName></backing>");
  // ceso-set --network: a standard NIC moved to the distributed portgroup,
  // and back; a NIC already there is left alone.
  EXPECT_EQ(hw.nics[1].portgroup_key, "dvportgroup-13");
  EXPECT_TRUE(nic_on(hw.nics[1], dvpg));
  EXPECT_FALSE(nic_on(hw.nics[0], dvpg));
  EXPECT_TRUE(nic_on(hw.nics[0], standard));
  EXPECT_FALSE(nic_on(hw.nics[1], standard));
  // A standard portgroup with the same name as a distributed one's key is another network.
  EXPECT_FALSE(nic_on(hw.nics[1], Network{"dvportgroup-13", "", ""}));
  std::string to_dvs = nic_network_xml(hw.nics[0], dvpg);
  EXPECT_NE(to_dvs.find(network_backing_xml(dvpg)), std::string::npos) << to_dvs;
  EXPECT_EQ(to_dvs.find("deviceName"), std::string::npos) << to_dvs;
  std::string to_std = nic_network_xml(hw.nics[1], standard);
  EXPECT_NE(to_std.find(network_backing_xml(standard)), std::string::npos) << to_std;
  EXPECT_EQ(to_std.find("portgroupKey"), std::string::npos) << to_std;
  // mkvm / clone: a new NIC on the distributed portgroup, and one copied from
  // a distributed NIC without --network (no port key: the host picks a port).
  std::string add = nic_add_xml(hw.nics[0], -102, "00:50:56:01:02:03", dvpg);
  EXPECT_NE(add.find(network_backing_xml(dvpg)), std::string::npos) << add;
  std::string copy = nic_add_xml(hw.nics[1], -103, "00:50:56:01:02:05", {});
  EXPECT_NE(copy.find(network_backing_xml({"", "50 1a 2b", "dvportgroup-13"})), std::string::npos)
      << copy;
  EXPECT_EQ(copy.find("portKey"), std::string::npos) << copy;
  // vCenter clone without --network: a distributed NIC keeps its portgroup
  // but not the source's port (portKey), which is in use.
  std::string keep = nic_mac_xml(hw.nics[1], "00:50:56:01:02:06");
  EXPECT_NE(keep.find(network_backing_xml({"", "50 1a 2b", "dvportgroup-13"})), std::string::npos)
      << keep;
  EXPECT_EQ(keep.find("portKey"), std::string::npos) << keep;
  EXPECT_NE(keep.find("<macAddress>00:50:56:01:02:06</macAddress>"), std::string::npos) << keep;
  // vCenter clone: new MAC and the distributed portgroup.
  std::string mac = nic_mac_xml(hw.nics[0], "00:50:56:01:02:04", dvpg);
  EXPECT_NE(mac.find(network_backing_xml(dvpg)), std::string::npos) << mac;
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
