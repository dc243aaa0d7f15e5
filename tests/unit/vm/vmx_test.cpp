#include "vm/vmx.hpp"

#include <gtest/gtest.h>

#include "base/error.hpp"

namespace {

ceso::SourceVm golden() {
  ceso::SourceVm s;
  s.name = "golden";
  s.power = "off";
  s.guest_id = "debian11_64Guest";
  s.firmware = "efi";
  s.version = "vmx-19";
  s.vmx_path = "[ds 1] golden/golden.vmx";
  s.cpus = 2;
  s.memory_mib = 2048;
  s.annotation = "a \"golden\" | image\nline 2";
  s.hardware.controllers.push_back({1000, "ParaVirtualSCSIController", 0, nullptr});
  ceso::vmspec::Disk d;
  d.key = 2000;
  d.controller_key = 1000;
  d.unit = 0;
  d.file = "[ds 1] golden/golden.vmdk";
  d.controller_type = "ParaVirtualSCSIController";
  d.disk_mode = "persistent";
  s.hardware.disks.push_back(d);
  d.key = 2001;
  d.unit = 1;
  d.file = "[ds 1] golden/golden_1.vmdk";
  s.hardware.disks.push_back(d);
  s.hardware.nics.push_back(
      {4000, "VirtualVmxnet3", "00:0c:29:01:02:03", "VM Network", "", nullptr});
  s.extra_config = {{"ceso.tags", "golden"}, {"guestinfo.metadata", "old"}};
  return s;
}

bool has_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

TEST(VmfsPath, DatastorePathsBecomeShellPaths) {
  EXPECT_EQ(ceso::vmfs_path({"ds 1", "web 01/web 01.vmx"}, "x"),
            "/vmfs/volumes/ds 1/web 01/web 01.vmx");
  EXPECT_EQ(ceso::vmfs_path({"datastore1", "a/b/c.vmdk"}, "x"),
            "/vmfs/volumes/datastore1/a/b/c.vmdk");
}

TEST(VmfsPath, RefusesEscapesEmptyPartsAndControlCharacters) {
  for (ceso::vmspec::DatastorePath p : {ceso::vmspec::DatastorePath{"..", "x/x.vmx"},
                                        {".", "x"},
                                        {"", "x"},
                                        {"a/b", "x"},
                                        {"ds", ""},
                                        {"ds", "/etc/passwd"},
                                        {"ds", "../x"},
                                        {"ds", "a/../../x"},
                                        {"ds", "a//b"},
                                        {"ds", "a/./b"},
                                        {"ds", "a/"},
                                        {"ds", ".."},
                                        {"ds", "a\nb"},
                                        {"d\ts", "a"},
                                        {"ds", std::string("a\0b", 3)},
                                        {"ds", "a\x7f"}}) {
    try {
      ceso::vmfs_path(p, "new disk 1");
      ADD_FAILURE() << "accepted " << p.text();
    } catch (const ceso::Error& e) {
      EXPECT_EQ(e.code(), ceso::Exit::bad_input) << p.text();
      EXPECT_NE(std::string(e.what()).find("new disk 1"), std::string::npos) << e.what();
    }
  }
}

TEST(VmxGuestOs, HostdNames) {
  EXPECT_EQ(ceso::vmx_guest_os("ubuntu64Guest"), "ubuntu-64");
  EXPECT_EQ(ceso::vmx_guest_os("debian11_64Guest"), "debian11-64");
  EXPECT_EQ(ceso::vmx_guest_os("otherGuest64"), "other-64");
  EXPECT_EQ(ceso::vmx_guest_os("otherGuest"), "other");
  EXPECT_EQ(ceso::vmx_guest_os("windows9Guest"), "windows9");
  EXPECT_EQ(ceso::vmx_guest_os("windows9_64Guest"), "windows9-64");
}

TEST(VmxUuid, SpacedPairsWithADashInTheMiddle) {
  EXPECT_EQ(ceso::vmx_uuid("564d2b1c-8e3f-4a5b-9c0d-1e2f3a4b5c6d"),
            "56 4d 2b 1c 8e 3f 4a 5b-9c 0d 1e 2f 3a 4b 5c 6d");
  EXPECT_THROW(ceso::vmx_uuid("564d2b1c"), ceso::Error);
  EXPECT_THROW(ceso::vmx_uuid("zz4d2b1c-8e3f-4a5b-9c0d-1e2f3a4b5c6d"), ceso::Error);
  EXPECT_THROW(ceso::vmx_uuid("564d2b1c-8e3f-4a5b-9c0d-1e2f3a4b5c6d00"), ceso::Error);
}

TEST(NewVmx, DescribesTheCopy) {
  ceso::SourceVm s = golden();
  ceso::NewVm req;
  req.name = "web \"01\"";
  req.memory_mib = 4096;
  req.tags = std::vector<std::string>{"web"};
  req.extra_config = {{"guestinfo.metadata", "META"}, {"guestinfo.metadata.encoding", "base64"}};
  ceso::Provisioned ids = ceso::plan_identity(s, req);
  ids.uuid = "564d2b1c-8e3f-4a5b-9c0d-1e2f3a4b5c6d";
  ids.macs = {"00:50:56:00:00:01"};
  std::string vmx = ceso::new_vmx(s, req, ids, "");
  EXPECT_TRUE(has_line(vmx, "displayName = \"web |2201|22\"")) << vmx;
  EXPECT_TRUE(has_line(vmx, "guestOS = \"debian11-64\""));
  EXPECT_TRUE(has_line(vmx, "virtualHW.version = \"19\""));
  EXPECT_TRUE(has_line(vmx, "firmware = \"efi\""));
  EXPECT_TRUE(has_line(vmx, "numvcpus = \"2\""));
  EXPECT_TRUE(has_line(vmx, "memSize = \"4096\""));
  EXPECT_TRUE(has_line(vmx, "annotation = \"a |22golden|22 |7C image|0Aline 2\""));
  EXPECT_TRUE(has_line(vmx, "uuid.bios = \"56 4d 2b 1c 8e 3f 4a 5b-9c 0d 1e 2f 3a 4b 5c 6d\""));
  EXPECT_TRUE(has_line(vmx, "scsi0.virtualDev = \"pvscsi\""));
  EXPECT_TRUE(has_line(vmx, "scsi0:0.fileName = \"web _01_.vmdk\"") ||
              has_line(vmx, "scsi0:0.fileName = \"web |2201|22.vmdk\""))
      << vmx;
  EXPECT_TRUE(has_line(vmx, "scsi0:1.present = \"TRUE\""));
  EXPECT_TRUE(has_line(vmx, "ethernet0.virtualDev = \"vmxnet3\""));
  EXPECT_TRUE(has_line(vmx, "ethernet0.networkName = \"VM Network\""));
  EXPECT_TRUE(has_line(vmx, "ethernet0.address = \"00:50:56:00:00:01\""));
  EXPECT_TRUE(has_line(vmx, "ceso.tags = \"web\""));
  // The request's guestinfo, never the source's.
  EXPECT_TRUE(has_line(vmx, "guestinfo.metadata = \"META\""));
  EXPECT_EQ(vmx.find("\"old\""), std::string::npos);
  // One line per key: nothing a value holds starts another.
  size_t lines = 0, keys = 0;
  for (size_t at = 0; at < vmx.size(); at = vmx.find('\n', at) + 1) {
    ++lines;
    keys += vmx.find(" = \"", at) < vmx.find('\n', at);
  }
  EXPECT_EQ(lines, keys);
  EXPECT_EQ(vmx.find('\r'), std::string::npos);
}

TEST(NewVmx, NetworkOverride) {
  ceso::SourceVm s = golden();
  ceso::NewVm req;
  req.name = "web01";
  auto ids = ceso::plan_identity(s, req);
  EXPECT_TRUE(
      has_line(ceso::new_vmx(s, req, ids, "lab net"), "ethernet0.networkName = \"lab net\""));
}

TEST(NewVmx, RefusesKeysThatWouldBreakTheFile) {
  ceso::SourceVm s = golden();
  for (std::string key : {"guestinfo.x y", "guestinfo.a=b", "guestinfo.a\nb", "", "displayName",
                          "numvcpus", "MEMSIZE"}) {
    ceso::NewVm req;
    req.name = "web01";
    req.extra_config = {{key, "v"}};
    auto ids = ceso::plan_identity(s, req);
    try {
      ceso::new_vmx(s, req, ids, "");
      ADD_FAILURE() << "accepted key " << key;
    } catch (const ceso::Error& e) {
      EXPECT_EQ(e.code(), ceso::Exit::bad_input) << key;
    }
  }
}

TEST(NewVmx, RefusesHardwareItCannotDescribe) {
  ceso::SourceVm s = golden();
  s.hardware.nics[0].portgroup_key = "dvportgroup-13";
  ceso::NewVm req;
  req.name = "web01";
  auto ids = ceso::plan_identity(s, req);
  EXPECT_THROW(ceso::new_vmx(s, req, ids, ""), ceso::Error);
  EXPECT_NO_THROW(ceso::new_vmx(s, req, ids, "VM Network"));
  s = golden();
  s.hardware.disks[1].controller_key = 1001;  // no such controller
  ids = ceso::plan_identity(s, req);
  EXPECT_THROW(ceso::new_vmx(s, req, ids, ""), ceso::Error);
}

}  // namespace
