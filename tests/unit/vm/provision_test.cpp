#include "vm/provision.hpp"

#include <gtest/gtest.h>

#include "cli/cloudinit_options.hpp"

namespace {

ceso::vim::ObjectContent source_props() {
  ceso::vim::ObjectContent oc;
  oc.obj = {"VirtualMachine", "vm-7"};
  auto val = [](const std::string& x) { return ceso::xml::parse(x); };
  const char* ns = " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"";
  oc.props = {
      {"name", val("<val>golden &amp; co</val>")},
      {"runtime.powerState", val("<val>poweredOff</val>")},
      {"parent", val(std::string("<val") + ns +
                     " xsi:type=\"ManagedObjectReference\" type=\"Folder\">ha-folder-vm</val>")},
      {"resourcePool",
       val(std::string("<val") + ns +
           " xsi:type=\"ManagedObjectReference\" type=\"ResourcePool\">ha-root-pool</val>")},
      {"config.files.vmPathName", val("<val>[ds 1] golden/golden.vmx</val>")},
      {"config.hardware.numCPU", val("<val>2</val>")},
      {"config.hardware.memoryMB", val("<val>4096</val>")},
      {"config.guestId", val("<val>ubuntu64Guest</val>")},
      {"config.hardware.device",
       val(std::string("<val") + ns +
           "><VirtualDevice xsi:type=\"VirtualDisk\"><key>2000</key><backing "
           "xsi:type=\"VirtualDiskFlatVer2BackingInfo\"><fileName>[ds 1] "
           "golden/golden.vmdk</fileName>"
           "</backing><controllerKey>1000</controllerKey><unitNumber>0</"
           "unitNumber><capacityInKB>1024"
           "</capacityInKB></VirtualDevice><VirtualDevice xsi:type=\"VirtualDisk\"><key>2001</key>"
           "<backing xsi:type=\"VirtualDiskFlatVer2BackingInfo\"><fileName>[ds 1] "
           "golden/golden_1.vmdk"
           "</fileName></backing><controllerKey>1000</controllerKey><unitNumber>1</unitNumber>"
           "<capacityInKB>1024</capacityInKB></VirtualDevice><VirtualDevice "
           "xsi:type=\"VirtualE1000e\">"
           "<key>4000</key><backing "
           "xsi:type=\"VirtualEthernetCardNetworkBackingInfo\"><deviceName>VM "
           "Network</deviceName></backing><addressType>generated</"
           "addressType><macAddress>00:0c:29:01:"
           "02:03</macAddress></VirtualDevice></val>")},
      {"config.extraConfig",
       val(std::string("<val") + ns +
           "><OptionValue><key>ceso.tags</key><value>golden</value></OptionValue><OptionValue><key>"
           "disk.EnableUUID</key><value>TRUE</value></"
           "OptionValue><OptionValue><key>guestinfo.metadata"
           "</key><value>old</value></OptionValue></val>")},
  };
  return oc;
}

TEST(ProvisionSource, ReadsEverythingFromOneRetrieval) {
  ceso::SourceVm s = ceso::source_vm_from(source_props());
  EXPECT_EQ(s.name, "golden & co");
  EXPECT_EQ(s.power, "off");
  EXPECT_EQ(s.cpus, 2);
  EXPECT_EQ(s.memory_mib, 4096);
  EXPECT_EQ(s.datastore(), "ds 1");
  EXPECT_EQ(s.folder, (ceso::vim::MoRef{"Folder", "ha-folder-vm"}));
  EXPECT_EQ(s.pool, (ceso::vim::MoRef{"ResourcePool", "ha-root-pool"}));
  ASSERT_EQ(s.hardware.disks.size(), 2u);
  ASSERT_EQ(s.hardware.nics.size(), 1u);
  EXPECT_EQ(s.hardware.nics[0].type, "VirtualE1000e");
}

TEST(ProvisionIdentity, NewNamesMacsAndUuids) {
  ceso::SourceVm s = ceso::source_vm_from(source_props());
  ceso::NewVm req;
  req.name = "web 01/x";
  ceso::Provisioned a = ceso::plan_identity(s, req);
  EXPECT_EQ(a.vmx, "[ds 1] web 01_x/web 01_x.vmx");
  ASSERT_EQ(a.disks.size(), 2u);
  EXPECT_EQ(a.disks[0], "[ds 1] web 01_x/web 01_x.vmdk");
  EXPECT_EQ(a.disks[1], "[ds 1] web 01_x/web 01_x_1.vmdk");
  ASSERT_EQ(a.macs.size(), 1u);
  EXPECT_EQ(a.macs[0].rfind("00:50:56:", 0), 0u);
  ceso::Provisioned b = ceso::plan_identity(s, req);
  EXPECT_NE(a.uuid, b.uuid);
  EXPECT_NE(a.instance_uuid, a.uuid);
  EXPECT_NE(a.macs, b.macs);
  req.datastore = "other";
  req.macs = {"00:50:56:00:00:01"};
  ceso::Provisioned c = ceso::plan_identity(s, req);
  EXPECT_EQ(c.vmx, "[other] web 01_x/web 01_x.vmx");
  EXPECT_EQ(c.macs[0], "00:50:56:00:00:01");
}

TEST(ProvisionExtraConfig, InheritsUserKeysReplacesGuestinfoAndTags) {
  ceso::SourceVm s = ceso::source_vm_from(source_props());
  ceso::NewVm req;
  req.extra_config = {{"guestinfo.metadata", "new"}};
  auto ec = ceso::new_extra_config(s, req);
  using KV = std::pair<std::string, std::string>;
  EXPECT_EQ(ec, (std::vector<KV>{{"disk.EnableUUID", "TRUE"}, {"guestinfo.metadata", "new"}}));
  req.tags = std::vector<std::string>{"web", "prod"};
  ec = ceso::new_extra_config(s, req);
  EXPECT_EQ(ec[1], (KV{"ceso.tags", "web,prod"}));
}

TEST(ProvisionFlags, CloudInitFlagsAsFields) {
  ceso::Args args;
  args.add("ip", "10.0.0.5/24");
  args.add("ip", "10.0.0.6/24");
  args.add("ssh-key-file", "k.pub");
  args.add("sudo", "");
  args.add("encoding", "base64");
  auto f = ceso::cloudinit_flag_fields(args);
  EXPECT_EQ(f.dump(),
            R"({"ip":["10.0.0.5/24","10.0.0.6/24"],"ssh_key_file":["k.pub"],"sudo":true})");
  EXPECT_TRUE(ceso::touches_user_data(f));
  EXPECT_TRUE(ceso::touches_network(f));
  ceso::ordered_json only_net = {{"hostname", "x"}, {"ip", {"10.0.0.5/24"}}};
  EXPECT_FALSE(ceso::touches_user_data(only_net));
  EXPECT_TRUE(ceso::touches_network(only_net));
}

}  // namespace
