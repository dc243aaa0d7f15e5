#include "vm/hostcli.hpp"

#include <gtest/gtest.h>

#include <string>

#include "base/error.hpp"

namespace {

using ceso::VmxChange;

template <typename F>
std::optional<ceso::Exit> thrown(F&& f) {
  try {
    f();
  } catch (const ceso::Error& e) {
    return e.code();
  }
  return std::nullopt;
}

ceso::PciDevice t4() {
  ceso::PciDevice d;
  d.id = "0000:3b:00.0";
  d.ids = {0x10de, 0x1eb8};
  return d;
}

TEST(HostCli, EsxcliArgvKeepsEachValueOneArgument) {
  EXPECT_EQ(ceso::esxcli_passthru_set("0000:3b:00.0", true, false),
            (std::vector<std::string>{"esxcli", "hardware", "pci", "pcipassthru", "set",
                                      "--device-id=0000:3b:00.0", "--enable=true"}));
  EXPECT_EQ(ceso::esxcli_passthru_set("0000:3b:00.0", false, true).back(), "--apply-now");
  EXPECT_EQ(
      ceso::esxcli_portgroup_add("web; rm -rf /", "vSwitch0"),
      (std::vector<std::string>{"esxcli", "network", "vswitch", "standard", "portgroup", "add",
                                "--portgroup-name=web; rm -rf /", "--vswitch-name=vSwitch0"}));
  EXPECT_EQ(ceso::esxcli_portgroup_vlan("web", 4095).back(), "--vlan-id=4095");
  EXPECT_EQ(ceso::esxcli_portgroup_remove("web", "vSwitch1")[5], "remove");
}

TEST(HostCli, VmxPciIdIsDecimalAndReadsBack) {
  EXPECT_EQ(ceso::vmx_pci_id("0000:3b:00.0"), "00000:059:00.0");
  EXPECT_EQ(ceso::vmx_pci_id("0000:af:1f.7"), "00000:175:31.7");
  EXPECT_EQ(ceso::pci_address_of_vmx_id("00000:175:31.7"), "0000:af:1f.7");
  EXPECT_EQ(ceso::pci_address_of_vmx_id("00000:059:00.0"), "0000:3b:00.0");
  // Not the 7.0 form: the old hex one, out-of-range fields, junk.
  for (const char* bad : {"3b:00.0", "0000:3b:00.0", "00000:256:00.0", "00000:059:32.0",
                          "00000:059:00.8", "0000a:059:00.0", ""})
    EXPECT_EQ(ceso::pci_address_of_vmx_id(bad), "") << bad;
  EXPECT_TRUE(thrown([] { ceso::vmx_pci_id("3b:00.0"); }));
}

TEST(HostCli, VmxLinesUnquoteAndSkipJunk) {
  auto l = ceso::vmx_lines(
      "a = \"1\"\n# c = \"2\"\nnot a line\n  b=\"x|22y|7cz\"  \r\nc = unquoted\n\nd = \"\"");
  ASSERT_EQ(l.size(), 3u);
  EXPECT_EQ(l[0].key, "a");
  EXPECT_EQ(l[1].key, "b");
  EXPECT_EQ(l[1].value, "x\"y|z");
  EXPECT_EQ(l[2].key, "d");
  EXPECT_EQ(l[2].value, "");
}

const char* kVmx =
    "displayName = \"gpu1\"\n"
    "memSize = \"4096\"\n";

TEST(HostCli, AttachTakesTheLowestFreeIndexAndLocksMemory) {
  auto ch = ceso::vmx_attach_changes(kVmx, t4(), "sys-1", true, 128);
  std::vector<VmxChange> want = {{"pciPassthru0.present", "TRUE"},
                                 {"pciPassthru0.id", "00000:059:00.0"},
                                 {"pciPassthru0.deviceId", "0x1eb8"},
                                 {"pciPassthru0.vendorId", "0x10de"},
                                 {"pciPassthru0.systemId", "sys-1"},
                                 {"sched.mem.min", "4096"},
                                 {"sched.mem.pin", "TRUE"},
                                 {"pciPassthru.use64bitMMIO", "TRUE"},
                                 {"pciPassthru.64bitMMIOSizeGB", "128"}};
  EXPECT_EQ(ch, want);
  // Gaps and stale keys: any pciPassthruN.* key takes N (also a "FALSE" one).
  std::string hostile = std::string(kVmx) +
                        "pciPassthru0.present = \"TRUE\"\n"
                        "pciPassthru0.id = \"00000:024:00.0\"\n"
                        "PCIPASSTHRU1.pciSlotNumber = \"160\"\n"
                        "pciPassthru2.present = \"FALSE\"\n"
                        "pciPassthru.use64bitMMIO = \"TRUE\"\n";
  ch = ceso::vmx_attach_changes(hostile, t4(), "s", false, 64);
  EXPECT_EQ(ch.front().first, "pciPassthru3.present");
  EXPECT_EQ(ch.size(), 7u);  // no MMIO keys for a NIC
}

TEST(HostCli, AttachRefusesWhatItCannotDoRight) {
  // No memSize, a junk one, the device already there, no free index.
  EXPECT_EQ(thrown([] { ceso::vmx_attach_changes("displayName = \"x\"\n", t4(), "s", 0, 64); }),
            ceso::Exit::failure);
  EXPECT_TRUE(thrown([] { ceso::vmx_attach_changes("memSize = \"4k\"\n", t4(), "s", 0, 64); }));
  EXPECT_TRUE(thrown([] { ceso::vmx_attach_changes("memSize = \"0\"\n", t4(), "s", 0, 64); }));
  EXPECT_TRUE(thrown([] {  // which one would the host read?
    ceso::vmx_attach_changes("memSize = \"1024\"\nMEMSIZE = \"4096\"\n", t4(), "s", 0, 64);
  }));
  std::string there =
      std::string(kVmx) + "pciPassthru4.present = \"TRUE\"\npciPassthru4.id = \"00000:059:00.0\"\n";
  EXPECT_TRUE(thrown([&] { ceso::vmx_attach_changes(there, t4(), "s", 0, 64); }));
  std::string full = kVmx;
  for (int i = 0; i < ceso::kMaxVmxPassthrough; ++i)
    full += "pciPassthru" + std::to_string(i) + ".present = \"FALSE\"\n";
  EXPECT_TRUE(thrown([&] { ceso::vmx_attach_changes(full, t4(), "s", 0, 64); }));
}

TEST(HostCli, DetachRemovesEveryKeyOfTheMatchAndTheMmioKeysWithTheLast) {
  std::string vmx = std::string(kVmx) +
                    "pciPassthru0.present = \"TRUE\"\n"
                    "pciPassthru0.id = \"00000:059:00.0\"\n"
                    "pciPassthru0.deviceId = \"0x1eb8\"\n"
                    "pciPassthru0.vendorId = \"0x10de\"\n"
                    "pciPassthru0.pciSlotNumber = \"256\"\n"
                    "pciPassthru3.present = \"TRUE\"\n"
                    "pciPassthru3.id = \"00000:024:00.0\"\n"
                    "pciPassthru.use64bitMMIO = \"TRUE\"\n"
                    "pciPassthru.64bitMMIOSizeGB = \"64\"\n";
  std::vector<std::string> removed;
  auto ch = ceso::vmx_detach_changes(
      vmx, [](const ceso::VmxPassthrough& p) { return p.address == "0000:3b:00.0"; }, removed);
  EXPECT_EQ(removed, std::vector<std::string>{"0000:3b:00.0"});
  ASSERT_EQ(ch.size(), 5u);  // its five keys; another device is left, so MMIO stays
  for (const auto& c : ch) EXPECT_FALSE(c.second.has_value());
  removed.clear();
  ch = ceso::vmx_detach_changes(
      vmx, [](const ceso::VmxPassthrough&) { return true; }, removed);
  EXPECT_EQ(removed, (std::vector<std::string>{"0000:3b:00.0", "0000:18:00.0"}));
  EXPECT_EQ(ch.size(), 9u);
  std::string edited = ceso::edit_vmx(vmx, ch);
  EXPECT_EQ(edited, kVmx);
  removed.clear();
  EXPECT_TRUE(ceso::vmx_detach_changes(
                  vmx, [](const ceso::VmxPassthrough& p) { return p.address == "x"; }, removed)
                  .empty());
}

TEST(HostCli, PassthroughEntriesReadIdsAndDynamic) {
  auto p = ceso::vmx_passthrough(
      "pciPassthru1.present = \"TRUE\"\npciPassthru1.vendorId = \"0x10DE\"\n"
      "pciPassthru1.deviceId = \"0x1e30\"\npciPassthru1.id = \"3b:00.0\"\n"
      "pciPassthru2.allowedDevices = \"0x10de:0x1eb8\"\npciPassthru2.present = \"true\"\n"
      "pciPassthru99999.present = \"TRUE\"\n");
  ASSERT_EQ(p.size(), 2u);  // 99999: not an index ESXi reads
  EXPECT_EQ(p[0].index, 1);
  EXPECT_EQ(p[0].address, "");  // the old hex form is not read as an address
  ASSERT_TRUE(p[0].ids);
  EXPECT_EQ(p[0].ids->vendor, 0x10de);
  EXPECT_EQ(p[0].ids->device, 0x1e30);
  EXPECT_TRUE(p[1].dynamic);
  EXPECT_TRUE(p[1].present);
}

TEST(SshFileWrite, WritesBesideUnderATemporaryNameThenRenames) {
  ceso::SshFileWrite f = ceso::ssh_file_write("/vmfs/volumes/ds 1/web01/web01-flat.vmdk");
  EXPECT_EQ(f.tmp, "/vmfs/volumes/ds 1/web01/.web01-flat.vmdk.ceso-tmp");
  // the path is an argument, never part of the script; noclobber
  EXPECT_EQ(f.write, (std::vector<std::string>{"sh", "-c", "set -C && cat >\"$1\"", "sh", f.tmp}));
  EXPECT_EQ(f.move, (std::vector<std::string>{"mv", "-f", f.tmp,
                                              "/vmfs/volumes/ds 1/web01/web01-flat.vmdk"}));
  EXPECT_EQ(
      f.command(),
      "'sh' '-c' 'set -C && cat >\"$1\"' 'sh' '/vmfs/volumes/ds 1/web01/.web01-flat.vmdk.ceso-tmp' "
      "&& 'mv' '-f' '/vmfs/volumes/ds 1/web01/.web01-flat.vmdk.ceso-tmp' "
      "'/vmfs/volumes/ds 1/web01/web01-flat.vmdk'");
  EXPECT_EQ(thrown([] { ceso::ssh_file_write("noslash"); }), ceso::Exit::failure);
  EXPECT_EQ(thrown([] { ceso::ssh_file_write("/vmfs/volumes/ds/dir/"); }), ceso::Exit::failure);
}

}  // namespace
