// Restore pieces that need no host: descriptor rewriting, the VM config read
// back from a backup's config.xml (captured from the simulator), MAC changes
// in a kept network config. The whole restore runs in tests/cli/ceso-backup-restore.bats.
#include "backup/restore.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "base/error.hpp"
#include "base/xml.hpp"
#include "vm/provision.hpp"

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

std::string descriptor_with(const std::string& extent_line, const std::string& eol = "\n") {
  return "# Disk DescriptorFile" + eol + "version=1" + eol + "createType=\"vmfs\"" + eol +
         "# Extent description" + eol + extent_line + eol + "ddb.adapterType = \"lsilogic\"" + eol;
}

TEST(RestoreTest, DescriptorNamesAreKeptWholeWhateverTheHostWrote) {
  struct Case {
    std::string line, file;
  };
  for (const Case& c : std::vector<Case>{
           {"RW 8 VMFS \"web 01-flat.vmdk\"", "web 01-flat.vmdk"},
           {"RW 8 VMFS \"web \"q\" 01-flat.vmdk\"", "web \"q\" 01-flat.vmdk"},
           {"RW 8 VMFS \"wéb & <x>-flat.vmdk\"", "wéb & <x>-flat.vmdk"},
           {"RW 2048 FLAT \"x y-flat.vmdk\" 0", "x y-flat.vmdk"},
           {"  RDONLY 8 VMFSSPARSE \"a-delta.vmdk\"", "a-delta.vmdk"},
           {"RW 8 VMFS \"" + std::string(100000, 'n') + "-flat.vmdk\"",
            std::string(100000, 'n') + "-flat.vmdk"},
       }) {
    for (const std::string eol : {"\n", "\r\n"}) {
      std::string text = descriptor_with(c.line, eol);
      EXPECT_EQ(ceso::descriptor_extents(text), std::vector<std::string>{c.file}) << c.line;
      EXPECT_TRUE(ceso::descriptor_problems(text, 1).empty()) << c.line;
      std::string out = ceso::rewrite_descriptor(text, {"new-flat.vmdk"}, "");
      EXPECT_NE(out.find("\"new-flat.vmdk\""), std::string::npos) << c.line;
      EXPECT_EQ(out.find(c.file), std::string::npos) << c.line;
      // Line ends and every other line are kept.
      EXPECT_EQ(out.find("ddb.adapterType = \"lsilogic\"" + eol),
                out.size() - std::string("ddb.adapterType = \"lsilogic\"" + eol).size());
    }
  }
}

TEST(RestoreTest, BrokenDescriptorsAreFoundBeforeRestore) {
  // A VM name with a newline: the host wrote the extent line in two.
  std::string cut = descriptor_with("RW 8 VMFS \"web\n01-flat.vmdk\"");
  auto p = ceso::descriptor_problems(cut, 1);
  ASSERT_FALSE(p.empty());
  EXPECT_NE(p[0].find("line 5"), std::string::npos) << p[0];
  EXPECT_THROW(ceso::rewrite_descriptor(cut, {"x-flat.vmdk"}, ""), ceso::Error);
  // Missing fields, an unterminated name, junk after the name.
  for (const char* line : {"RW 8", "RW 8 VMFS", "RW 8 VMFS \"unterminated", "RW 8 VMFS \"a\" junk"})
    EXPECT_FALSE(ceso::descriptor_problems(descriptor_with(line), 1).empty()) << line;
  // A ZERO extent has no file and is fine; the count must match.
  std::string zero = descriptor_with("RW 8 VMFS \"a-flat.vmdk\"\nRW 8 ZERO");
  EXPECT_TRUE(ceso::descriptor_problems(zero, 1).empty());
  EXPECT_FALSE(ceso::descriptor_problems(zero, 2).empty());
  EXPECT_FALSE(ceso::descriptor_problems("KDMV binary", 1).empty());
  EXPECT_FALSE(ceso::descriptor_problems(descriptor_with("# no extents"), 1).empty());
}

TEST(RestoreTest, ParentHintWithQuotesAndCrlfIsReplaced) {
  std::string text =
      "# Disk DescriptorFile\r\nparentFileNameHint=\"web \"01\".vmdk\"\r\n"
      "RW 8 VMFSSPARSE \"web \"01\"-000001-delta.vmdk\"\r\n";
  std::string out = ceso::rewrite_descriptor(text, {"n-000001-delta.vmdk"}, "n.vmdk");
  EXPECT_EQ(out,
            "# Disk DescriptorFile\r\nparentFileNameHint=\"n.vmdk\"\r\n"
            "RW 8 VMFSSPARSE \"n-000001-delta.vmdk\"\r\n");
}

ceso::CatalogEntry backup(std::string id, std::string endpoint, std::string uuid, int64_t t) {
  ceso::CatalogEntry e;
  e.id = std::move(id);
  e.endpoint = std::move(endpoint);
  e.vm_uuid = std::move(uuid);
  e.vm_name = "web01";
  e.created = t;
  e.status = "complete";
  return e;
}

TEST(RestoreTest, ARestoreByNameConsidersOnlyTheSameVm) {
  std::vector<ceso::CatalogEntry> all = {backup("a1", "esx-a:443", "ua", 1),
                                         backup("a2", "esx-a:443", "ua", 2),
                                         backup("b1", "esx-b:443", "ub", 5)};
  // The live VM on host A: its own newest backup, not host B's newer one.
  EXPECT_EQ(ceso::backup_for_name(all, "web01", {{"esx-a:443", "ua"}})->id, "a2");
  EXPECT_EQ(ceso::backup_for_name(all, "web01", {{"esx-b:443", "ub"}})->id, "b1");
  // No such VM: two VMs' backups share the name → refused, both listed.
  try {
    ceso::backup_for_name(all, "web01", {});
    FAIL() << "no error";
  } catch (const ceso::Error& e) {
    EXPECT_EQ(e.code(), ceso::Exit::bad_input);
    std::string m = e.what();
    EXPECT_NE(m.find("esx-a:443 uuid ua (newest a2)"), std::string::npos) << m;
    EXPECT_NE(m.find("esx-b:443 uuid ub (newest b1)"), std::string::npos) << m;
  }
  // A same-named VM with another uuid (recreated) has no backup of its own.
  EXPECT_THROW(ceso::backup_for_name(all, "web01", {{"esx-a:443", "new"}}), ceso::Error);
  // One VM's backups: its newest; a failed verify is skipped; unknown name: none.
  all.pop_back();
  all[1].verify = "failed";
  EXPECT_EQ(ceso::backup_for_name(all, "web01", {})->id, "a1");
  EXPECT_EQ(ceso::backup_for_name(all, "db01", {}), std::nullopt);
}

}  // namespace
