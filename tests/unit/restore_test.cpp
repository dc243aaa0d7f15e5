// Restore pieces that need no host: descriptor rewriting, the VM config read
// back from a backup's config.xml (captured from the simulator), MAC changes
// in a kept network config. The whole restore runs in tests/cli/ceso-backup-restore.bats.
#include "ceso/restore.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "ceso/error.hpp"
#include "ceso/provision.hpp"
#include "ceso/xml.hpp"

namespace {

std::string data_file(const std::string& name) {
  std::ifstream in(std::string(CESO_TEST_DATA) + "/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const char* kFlat =
    "# Disk DescriptorFile\n"
    "version=1\n"
    "CID=fffffffe\n"
    "parentCID=ffffffff\n"
    "createType=\"vmfs\"\n"
    "\n"
    "# Extent description\n"
    "RW 33554432 VMFS \"web01-flat.vmdk\"\n"
    "\n"
    "ddb.adapterType = \"lsilogic\"\n";

const char* kDelta =
    "# Disk DescriptorFile\n"
    "version=1\n"
    "CID=1b2c3d4e\n"
    "parentCID=fffffffe\n"
    "createType=\"vmfsSparse\"\n"
    "parentFileNameHint=\"web01.vmdk\"\n"
    "# Extent description\n"
    "RW 33554432 VMFSSPARSE \"web01-000001-delta.vmdk\"\n";

TEST(RestoreTest, DescriptorExtentsAreRenamed) {
  EXPECT_EQ(ceso::descriptor_extents(kFlat), std::vector<std::string>{"web01-flat.vmdk"});
  std::string out = ceso::rewrite_descriptor(kFlat, {"db02-flat.vmdk"}, "");
  EXPECT_NE(out.find("RW 33554432 VMFS \"db02-flat.vmdk\"\n"), std::string::npos);
  EXPECT_EQ(out.find("web01"), std::string::npos);
  // Everything else is kept byte for byte.
  EXPECT_EQ(out.size(), std::string(kFlat).size() - 5 + 4);
}

TEST(RestoreTest, DeltaDescriptorGetsItsNewParent) {
  std::string out = ceso::rewrite_descriptor(kDelta, {"db02-000001-delta.vmdk"}, "db02.vmdk");
  EXPECT_NE(out.find("parentFileNameHint=\"db02.vmdk\"\n"), std::string::npos);
  EXPECT_NE(out.find("VMFSSPARSE \"db02-000001-delta.vmdk\""), std::string::npos);
  EXPECT_NE(out.find("parentCID=fffffffe"), std::string::npos);
}

TEST(RestoreTest, NotADescriptorOrTooFewExtentsIsBadInput) {
  try {
    ceso::rewrite_descriptor("KDMV\x01binary", {"x-flat.vmdk"}, "");
    FAIL() << "no error";
  } catch (const ceso::Error& e) {
    EXPECT_EQ(e.code(), ceso::Exit::bad_input);
  }
  try {
    ceso::rewrite_descriptor(kFlat, {"a-flat.vmdk", "b-flat.vmdk"}, "");
    FAIL() << "no error";
  } catch (const ceso::Error& e) {
    EXPECT_EQ(e.code(), ceso::Exit::bad_input);
    EXPECT_NE(std::string(e.what()).find("1 extent line(s), expected 2"), std::string::npos);
  }
}

TEST(RestoreTest, ConfigFromABackupReadsLikeARetrievedVm) {
  std::string text = data_file("backup/config.xml");
  ASSERT_FALSE(text.empty());
  ceso::xml::Node doc = ceso::xml::parse(text);
  ceso::SourceVm vm = ceso::source_vm_from_config(doc);
  EXPECT_EQ(vm.name, "web01");
  EXPECT_EQ(vm.power, "off");
  EXPECT_FALSE(vm.is_template);
  EXPECT_FALSE(vm.guest_id.empty());
  EXPECT_EQ(vm.vmx_path.rfind("[", 0), 0u);
  EXPECT_EQ(vm.datastore(), "LocalDS_0");
  EXPECT_GE(vm.cpus, 1);
  EXPECT_GT(vm.memory_mib, 0);
  ASSERT_EQ(vm.hardware.disks.size(), 1u);
  EXPECT_GT(vm.hardware.disks[0].capacity_bytes, 0);
  EXPECT_FALSE(vm.hardware.disks[0].controller_type.empty());
  ASSERT_FALSE(vm.hardware.nics.empty());
  EXPECT_EQ(vm.hardware.nics[0].mac.size(), 17u);
  EXPECT_FALSE(vm.hardware.controllers.empty());
  EXPECT_EQ(vm.extra_config.count("ceso.tags"), 1u);
  EXPECT_TRUE(vm.folder.empty());  // not on this host: the caller places it
}

TEST(RestoreTest, MacsInAKeptNetworkConfigFollowTheNewNics) {
  std::string net =
      "version: 2\nethernets:\n  nic0:\n    match:\n      macaddress: \"00:50:56:AB:cd:01\"\n"
      "    set-name: ens192\n  nic1:\n    match:\n      macaddress: 00:50:56:ab:cd:02\n";
  ceso::replace_mac(net, "00:50:56:ab:cd:01", "00:50:56:12:34:56");
  ceso::replace_mac(net, "00:50:56:AB:CD:02", "00:50:56:12:34:57");
  EXPECT_NE(net.find("macaddress: \"00:50:56:12:34:56\""), std::string::npos);
  EXPECT_NE(net.find("macaddress: 00:50:56:12:34:57"), std::string::npos);
  EXPECT_EQ(net.find("ab:cd"), std::string::npos);
  std::string same = net;
  ceso::replace_mac(net, "not-a-mac", "00:50:56:00:00:01");
  EXPECT_EQ(net, same);
}

}  // namespace
