// vsphere/vimcmd: the host's own output formats (getallvms, power.getstate,
// snapshot.get, hostsummary's hardware uuid, fault blocks), from ../shared/ESXI-FACTS.md, with
// hostile variants: names with spaces, brackets, quotes and parentheses, multi-line annotations,
// truncated and huge output.
#include "vsphere/vimcmd.hpp"

#include <gtest/gtest.h>

#include <chrono>

#include "base/error.hpp"

namespace {

using ceso::Error;
using ceso::Exit;
namespace vim = ceso::vim;

// Real columns: padded with spaces, a name with spaces and parentheses, a
// datastore name with a space, an annotation over two lines.
const char* const kGetAllVms =
    "Vmid         Name                          File                            Guest OS       "
    "Version   Annotation\n"
    "1      web 01                  [datastore1] web 01/web 01.vmx               ubuntu64Guest  "
    "vmx-19\n"
    "12     db (old) 'x'            [ssd pool] db (old) 'x'/db (old) 'x'.vmx     otherGuest     "
    "vmx-13    line one\n"
    "of a note\n"
    "101    web [old]               [ds1] web [old]/web [old].vmx                "
    "other3xLinux64Guest "
    "vmx-19    \n"
    "Skipping invalid VM '7'\n";

TEST(GetAllVms, ReadsVmidAndVmxPathOnly) {
  auto rows = vim::parse_getallvms(kGetAllVms);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].vmid, "1");
  EXPECT_EQ(rows[0].vmx_path, "[datastore1] web 01/web 01.vmx");
  EXPECT_FALSE(rows[0].ambiguous);
  EXPECT_EQ(rows[1].vmid, "12");
  EXPECT_EQ(rows[1].vmx_path, "[ssd pool] db (old) 'x'/db (old) 'x'.vmx");
  EXPECT_EQ(rows[2].vmid, "101");
  EXPECT_EQ(rows[2].vmx_path, "[ds1] web [old]/web [old].vmx");
  EXPECT_FALSE(rows[2].ambiguous);
}

TEST(GetAllVms, EmptyHostAndNoise) {
  EXPECT_TRUE(vim::parse_getallvms("").empty());
  EXPECT_TRUE(
      vim::parse_getallvms("Vmid   Name   File   Guest OS   Version   Annotation\n").empty());
  // Cut off in the middle of a row: no .vmx yet, no row.
  EXPECT_TRUE(vim::parse_getallvms("Vmid Name File\n3   web   [ds1] web/we").empty());
  // CRLF line ends, a row at the end without a newline.
  auto rows =
      vim::parse_getallvms("Vmid Name File\r\n4   a   [ds1] a/a.vmx\r\n5  b  [ds1] b/b.vmx");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].vmx_path, "[ds1] a/a.vmx");
  EXPECT_EQ(rows[1].vmx_path, "[ds1] b/b.vmx");
}

TEST(GetAllVms, AmbiguousNamesAreMarked) {
  // The name holds what looks like a path: two readings.
  auto rows = vim::parse_getallvms("9   a [b] c.vmx x   [ds1] a/a.vmx   otherGuest  vmx-19\n");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_TRUE(rows[0].ambiguous);
  // With the path known, the row is found exactly.
  EXPECT_EQ(vim::vmids_for_vmx("9   a [b] c.vmx x   [ds1] a/a.vmx   otherGuest  vmx-19\n",
                               "[ds1] a/a.vmx"),
            std::vector<std::string>{"9"});
}

TEST(GetAllVms, VmidsForVmxMatchesTheWholePath) {
  EXPECT_EQ(vim::vmids_for_vmx(kGetAllVms, "[ssd pool] db (old) 'x'/db (old) 'x'.vmx"),
            std::vector<std::string>{"12"});
  EXPECT_EQ(vim::vmids_for_vmx(kGetAllVms, "[ds1] web [old]/web [old].vmx"),
            std::vector<std::string>{"101"});
  // Part of a path is not the path.
  EXPECT_TRUE(vim::vmids_for_vmx(kGetAllVms, "web 01/web 01.vmx").empty());
  EXPECT_TRUE(vim::vmids_for_vmx(kGetAllVms, "[datastore1] web 01/web 01.vm").empty());
  EXPECT_TRUE(vim::vmids_for_vmx(kGetAllVms, "").empty());
  // Continuation lines of an annotation are not rows.
  EXPECT_TRUE(vim::vmids_for_vmx("Vmid\nof a note [ds1] x/x.vmx\n", "[ds1] x/x.vmx").empty());
}

TEST(GetAllVms, TheTestBedsVmIdsAreRowsToo) {
  // The simulator's vmids are its moref values, "vm-9"; ESXi's are digits.
  EXPECT_EQ(vim::vmids_for_vmx("vm-9   a   [ds1] a/a.vmx   otherGuest   vmx-13\n", "[ds1] a/a.vmx"),
            std::vector<std::string>{"vm-9"});
  for (const char* line : {"vm- a [ds1] a/a.vmx\n", "vm-9a [ds1] a/a.vmx\n",
                           "vmx-9 [ds1] a/a.vmx\n", "xvm-9 [ds1] a/a.vmx\n"})
    EXPECT_TRUE(vim::vmids_for_vmx(line, "[ds1] a/a.vmx").empty()) << line;
}

TEST(GetAllVms, HugeHostileOutputIsLinear) {
  // 4 MiB of one row full of " [" and ".vmx " pieces, and 100,000 rows.
  std::string row = "1 ";
  while (row.size() < (4u << 20)) row += " [a] b.vmx";
  std::string many;
  for (int i = 0; i < 100000; ++i) many += std::to_string(i) + "  vm  [ds] vm/vm.vmx  g  vmx-19\n";
  auto start = std::chrono::steady_clock::now();
  auto rows = vim::parse_getallvms(row);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_TRUE(rows[0].ambiguous);
  EXPECT_EQ(vim::parse_getallvms(many).size(), 100000u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(PowerState, ThreeStates) {
  EXPECT_EQ(vim::parse_power_state("Retrieved runtime info\nPowered on\n"),
            vim::PowerState::powered_on);
  EXPECT_EQ(vim::parse_power_state("Retrieved runtime info\r\nPowered off\r\n"),
            vim::PowerState::powered_off);
  EXPECT_EQ(vim::parse_power_state("Retrieved runtime info\n\nSuspended"),
            vim::PowerState::suspended);
}

TEST(PowerState, AnythingElseIsAnError) {
  for (std::string out : {"", "Retrieved runtime info\n", "Retrieved runtime info\nPowered up\n",
                          "Powered on\n", "Retrieved runtime info\nPowered on\x1b[2J\n"}) {
    try {
      vim::parse_power_state(out);
      ADD_FAILURE() << out;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Exit::failure);
      EXPECT_NE(std::string(e.what()).find("vim-cmd vmsvc/power.getstate"), std::string::npos);
      EXPECT_EQ(std::string(e.what()).find('\x1b'), std::string::npos);  // printable
    }
  }
}

const char* const kTree =
    "Get Snapshot:\n"
    "|-ROOT\n"
    "--Snapshot Name        : snap01\n"
    "--Snapshot Id          : 1\n"
    "--Snapshot Desciption  : first\n"
    "--Snapshot Created On  : 2/23/2015 18:12:50\n"
    "--Snapshot State       : powered on\n"
    "--|-CHILD\n"
    "----Snapshot Name        : snap02: (with 'quotes') \"and\" [brackets]\n"
    "----Snapshot Id          : 2\n"
    "----Snapshot Desciption  : two\n"
    "lines\n"
    "----Snapshot Created On  : 2/24/2015 09:00:01\n"
    "----Snapshot State       : powered off\n"
    "----|-CHILD\n"
    "------Snapshot Name        : deep\n"
    "------Snapshot Id          : 5\n"
    "------Snapshot Desciption  : \n"
    "------Snapshot Created On  : 2/25/2015 10:00:00\n"
    "------Snapshot State       : powered off\n"
    "--|-CHILD\n"
    "----Snapshot Name        : sibling\n"
    "----Snapshot Id          : 3\n"
    "----Snapshot Desciption  : \n"
    "----Snapshot Created On  : 2/26/2015 10:00:00\n"
    "----Snapshot State       : suspended\n";

TEST(SnapshotGet, ReadsTheTree) {
  auto snaps = vim::parse_snapshot_get(kTree);
  ASSERT_EQ(snaps.size(), 4u);
  EXPECT_EQ(snaps[0].name, "snap01");
  EXPECT_EQ(snaps[0].id, "1");
  EXPECT_EQ(snaps[0].description, "first");
  EXPECT_EQ(snaps[0].created, "2/23/2015 18:12:50");
  EXPECT_EQ(snaps[0].state, "powered on");
  EXPECT_EQ(snaps[0].depth, 0);
  EXPECT_EQ(snaps[0].parent, -1);
  EXPECT_EQ(snaps[1].name, "snap02: (with 'quotes') \"and\" [brackets]");
  EXPECT_EQ(snaps[1].description, "two\nlines");
  EXPECT_EQ(snaps[1].parent, 0);
  EXPECT_EQ(snaps[1].depth, 1);
  EXPECT_EQ(snaps[2].name, "deep");
  EXPECT_EQ(snaps[2].depth, 2);
  EXPECT_EQ(snaps[2].parent, 1);
  EXPECT_EQ(snaps[2].description, "");
  EXPECT_EQ(snaps[3].name, "sibling");
  EXPECT_EQ(snaps[3].parent, 0);
  EXPECT_EQ(snaps[3].state, "suspended");
}

TEST(SnapshotGet, NoSnapshotsIsOnlyTheFirstLine) {
  EXPECT_TRUE(vim::parse_snapshot_get("Get Snapshot:\n").empty());
  EXPECT_TRUE(vim::parse_snapshot_get("Get Snapshot:").empty());
}

TEST(SnapshotGet, TwoRootsAndTheCorrectSpelling) {
  auto snaps = vim::parse_snapshot_get(
      "Get Snapshot:\n|-ROOT\n--Snapshot Name : a\n--Snapshot Id : 1\n"
      "--Snapshot Description : fixed typo\n|-ROOT\n--Snapshot Name : b\n--Snapshot Id : 2\n");
  ASSERT_EQ(snaps.size(), 2u);
  EXPECT_EQ(snaps[0].description, "fixed typo");
  EXPECT_EQ(snaps[1].parent, -1);
}

TEST(SnapshotGet, BrokenTreesAreErrorsNamingTheLine) {
  struct Case {
    std::string out, part;
  } cases[] = {
      {"", "no \"Get Snapshot:\""},
      {"(vim.fault.NotFound) {\n", "no \"Get Snapshot:\""},
      // a depth jump
      {"Get Snapshot:\n|-ROOT\n--Snapshot Id : 1\n----|-CHILD\n", "line 4"},
      {"Get Snapshot:\n--|-CHILD\n", "line 2"},
      // truncated: the last snapshot has no id
      {"Get Snapshot:\n|-ROOT\n--Snapshot Id : 1\n--|-CHILD\n----Snapshot Name : x\n",
       "no Snapshot Id"},
      {"Get Snapshot:\n|-ROOT\n--Snapshot Name : x\n|-ROOT\n--Snapshot Id : 2\n", "line 4"},
      {"Get Snapshot:\n|-ROOT\n--Snapshot Id : one\n", "not a number"},
      {"Get Snapshot:\n|-ROOT\n--Snapshot Id : 1\n|-ROOT\n--Snapshot Id : 1\n", "twice"},
      {"Get Snapshot:\nsomething else\n", "line 2"},
  };
  for (const auto& c : cases) {
    try {
      vim::parse_snapshot_get(c.out);
      ADD_FAILURE() << c.out;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Exit::failure);
      EXPECT_NE(std::string(e.what()).find(c.part), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("vim-cmd vmsvc/snapshot.get"), std::string::npos);
    }
  }
}

TEST(SnapshotGet, DeepAndLargeTreesStayLinear) {
  std::string out = "Get Snapshot:\n|-ROOT\n--Snapshot Id : 0\n";
  const int kDepth = 2000;
  for (int d = 1; d < kDepth; ++d)
    out += std::string(2 * d, '-') + "|-CHILD\n" + std::string(2 * d + 2, '-') +
           "Snapshot Id : " + std::to_string(d) + "\n";
  auto snaps = vim::parse_snapshot_get(out);
  ASSERT_EQ(snaps.size(), static_cast<size_t>(kDepth));
  EXPECT_EQ(snaps.back().depth, kDepth - 1);
  EXPECT_EQ(snaps.back().parent, kDepth - 2);
  // 200,000 snapshots in one answer: no quadratic checks.
  std::string wide = "Get Snapshot:\n|-ROOT\n--Snapshot Id : 0\n";
  for (int i = 1; i < 200000; ++i)
    wide += "--|-CHILD\n----Snapshot Id : " + std::to_string(i) + "\n";
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(vim::parse_snapshot_get(wide).size(), 200000u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

const char* const kNotFound =
    "(vim.fault.NotFound) {\n"
    "   faultCause = (vmodl.MethodFault) null,\n"
    "   faultMessage = <unset>,\n"
    "   msg = \"Unable to find a VM corresponding to \"2\"\"\n"
    "}\n";

TEST(FaultBlock, BecomesAFaultWithTheApisMapping) {
  auto f = vim::find_fault(kNotFound, "vim-cmd vmsvc/power.on", "esxi1.lab");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->fault_type(), "NotFound");
  EXPECT_EQ(f->method(), "vim-cmd vmsvc/power.on");
  EXPECT_EQ(f->code(), Exit::failure);
  EXPECT_EQ(std::string(f->what()),
            "vim-cmd vmsvc/power.on on esxi1.lab failed: NotFound: Unable to find a VM "
            "corresponding to \"2\"");

  // The same table as SOAP faults: explanation and exit code.
  auto g = vim::find_fault(
      "Power on failed\n(vim.fault.InvalidPowerState) {\n   msg = \"The attempted operation "
      "cannot be performed in the current state (Powered on).\",\n}\n",
      "vim-cmd vmsvc/power.on", "h");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->fault_type(), "InvalidPowerState");
  EXPECT_NE(std::string(g->what()).find("(Powered on)."), std::string::npos) << g->what();
  EXPECT_NE(std::string(g->what()).find(
                std::string(ceso::vim::fault_meaning("InvalidPowerState").explanation)),
            std::string::npos);
  auto h =
      vim::find_fault("(vmodl.fault.ManagedObjectNotFound) {\n   obj = 'vim.VirtualMachine:3'\n}\n",
                      "vim-cmd vmsvc/getallvms", "h");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->fault_type(), "ManagedObjectNotFound");
  auto login = vim::find_fault("(vim.fault.InvalidLogin) {\n}\n", "vim-cmd x", "h");
  ASSERT_TRUE(login);
  EXPECT_EQ(login->code(), Exit::connection);
}

TEST(FaultBlock, OnlyABlockAtTheStartOfALine) {
  EXPECT_FALSE(vim::find_fault("", "c", "h"));
  EXPECT_FALSE(vim::find_fault("Retrieved runtime info\nPowered on\n", "c", "h"));
  // Nested faults are indented; a name that mentions a fault is not one.
  EXPECT_FALSE(vim::find_fault("   faultCause = (vmodl.MethodFault) {\n", "c", "h"));
  EXPECT_FALSE(vim::find_fault("--Snapshot Name : (vim.fault.NotFound) {x\n", "c", "h"));
  EXPECT_FALSE(vim::find_fault("(not.a.fault) {\n", "c", "h"));
  // A truncated block still is a fault.
  auto f = vim::find_fault("(vim.fault.FileNotFound) {\n   msg = \"File [ds] x", "c", "h");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->fault_type(), "FileNotFound");
}

TEST(FaultBlock, HostileMessagesStayOneShortLine) {
  std::string huge =
      "(vim.fault.NotFound) {\n   msg = \"" + std::string(1 << 20, 'A') + "\x1b[2J\",\n}\n";
  auto f = vim::find_fault(huge, "c", "h");
  ASSERT_TRUE(f);
  std::string msg = f->what();
  EXPECT_LT(msg.size(), 1000u);
  EXPECT_EQ(msg.find('\x1b'), std::string::npos);
  auto g = vim::find_fault("(vim.fault.NotFound) {\n   msg = \"a\nb\"\n}\n", "c", "h");
  ASSERT_TRUE(g);
  EXPECT_EQ(std::string(g->what()).find('\n'), std::string::npos);
}

TEST(CheckResult, FaultsWhateverTheExitStatusThenTheStatus) {
  ceso::SshResult r;
  r.out = kNotFound;  // exit status 0, as vim-cmd does
  try {
    vim::check_result(r, "vim-cmd vmsvc/power.on", "h");
    ADD_FAILURE();
  } catch (const ceso::vim::Fault& f) {
    EXPECT_EQ(f.fault_type(), "NotFound");
  }
  r = {};
  r.err = kNotFound;
  r.exit_status = 1;
  EXPECT_THROW(vim::check_result(r, "c", "h"), ceso::vim::Fault);
  r = {};
  r.exit_status = 127;
  r.err = "\nsh: vim-cmd: not found\n";
  try {
    vim::check_result(r, "vim-cmd vmsvc/getallvms", "esxi1");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "vim-cmd vmsvc/getallvms on esxi1 failed (exit status 127): sh: vim-cmd: not found");
  }
  r = {};
  r.exit_signal = "KILL";
  EXPECT_THROW(vim::check_result(r, "c", "h"), Error);
  r = {};
  r.out = "Retrieved runtime info\nPowered on\n";
  EXPECT_NO_THROW(vim::check_result(r, "c", "h"));
}

}  // namespace

namespace {

TEST(GetAllVms, MorefValueVmidsAsOtherHostsPrintThem) {
  const char* out =
      "Vmid    Name    File                       Guest OS        Version   Annotation\n"
      "vm-21   web01   [LocalDS_0] web01/web01.vmx   ubuntu64Guest   vmx-13    \n"
      "note: no digits here [LocalDS_0] x/x.vmx\n";
  auto rows = ceso::vim::parse_getallvms(out);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].vmid, "vm-21");
  EXPECT_EQ(ceso::vim::vmids_for_vmx(out, "[LocalDS_0] web01/web01.vmx"),
            std::vector<std::string>{"vm-21"});
}

// `vim-cmd hostsvc/hostsummary` as ESXi 7 prints it (abridged: the blocks
// around the hardware one, an array of blocks inside it, an empty array,
// <unset> values, an AboutInfo with its own instanceUuid).
const char* const kHostSummary =
    "(vim.host.Summary) {\n"
    "   host = 'vim.HostSystem:ha-host',\n"
    "   hardware = (vim.host.Summary.HardwareSummary) {\n"
    "      vendor = \"Dell Inc.\",\n"
    "      model = \"PowerEdge R640\",\n"
    "      uuid = \"4C4C4544-0042-3510-8052-B4C04F395032\",\n"
    "      otherIdentifyingInfo = (vim.host.SystemIdentificationInfo) [\n"
    "         (vim.host.SystemIdentificationInfo) {\n"
    "            identifierValue = \" No Asset Tag\",\n"
    "            identifierType = (vim.ElementDescription) {\n"
    "               label = \"Asset Tag\",\n"
    "               summary = \"Asset tag of the system\",\n"
    "               key = \"AssetTag\"\n"
    "            }\n"
    "         }\n"
    "      ],\n"
    "      memorySize = 412316860416,\n"
    "      cpuModel = \"Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz\",\n"
    "      numHBAs = 3\n"
    "   },\n"
    "   runtime = (vim.host.RuntimeInfo) {\n"
    "      connectionState = \"connected\",\n"
    "      powerState = \"poweredOn\"\n"
    "   },\n"
    "   config = (vim.host.Summary.ConfigSummary) {\n"
    "      name = \"esx1.example.com\",\n"
    "      product = (vim.AboutInfo) {\n"
    "         name = \"VMware ESXi\",\n"
    "         instanceUuid = \"aaaaaaaa-0000-0000-0000-000000000000\",\n"
    "         apiType = \"HostAgent\"\n"
    "      },\n"
    "      uuid = \"bbbbbbbb-0000-0000-0000-000000000000\"\n"
    "   },\n"
    "   customValue = (vim.CustomFieldsManager.Value) [],\n"
    "   managementServerIp = <unset>\n"
    "}\n";

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

TEST(HostSummary, ReadsTheHardwareBlocksUuidOnly) {
  EXPECT_EQ(vim::parse_hostsummary_uuid(kHostSummary), "4C4C4544-0042-3510-8052-B4C04F395032");
  // CRLF line ends, blank lines around, no trailing comma, blanks inside the quotes.
  std::string crlf;
  for (char c : std::string(kHostSummary))
    crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  EXPECT_EQ(vim::parse_hostsummary_uuid("\n" + crlf + "\n\n"),
            "4C4C4544-0042-3510-8052-B4C04F395032");
  EXPECT_EQ(vim::parse_hostsummary_uuid(replaced(kHostSummary,
                                                 "\"4C4C4544-0042-3510-8052-B4C04F395032\",",
                                                 "\" 4c4c4544-0042-3510-8052-b4c04f395032 \"")),
            "4c4c4544-0042-3510-8052-b4c04f395032");
}

TEST(HostSummary, UuidsCompareTrimmedWithoutCase) {
  EXPECT_TRUE(vim::hardware_uuids_equal("4C4C4544-0042-3510-8052-B4C04F395032",
                                        " 4c4c4544-0042-3510-8052-b4c04f395032\t"));
  EXPECT_FALSE(vim::hardware_uuids_equal("4c4c4544-0042-3510-8052-b4c04f395032",
                                         "4c4c4544-0042-3510-8052-b4c04f395033"));
  EXPECT_FALSE(vim::hardware_uuids_equal("4c4c4544", "4c4c4544-0042"));
  EXPECT_FALSE(vim::hardware_uuids_equal("", ""));
  EXPECT_FALSE(vim::hardware_uuids_equal(" ", " "));
}

void expect_refused(const std::string& out, const std::string& why) {
  try {
    std::string uuid = vim::parse_hostsummary_uuid(out);
    ADD_FAILURE() << why << ": read " << uuid;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Exit::failure) << why;
    std::string msg = e.what();
    EXPECT_NE(msg.find("vim-cmd hostsvc/hostsummary"), std::string::npos) << why;
    EXPECT_NE(msg.find(why), std::string::npos) << msg;
    EXPECT_LT(msg.size(), 1000u) << why;
    EXPECT_EQ(msg.find('\x1b'), std::string::npos) << why;
  }
}

TEST(HostSummary, HostileOutputIsRefused) {
  const std::string uuid_line = "      uuid = \"4C4C4544-0042-3510-8052-B4C04F395032\",\n";
  const std::string hw_open = "   hardware = (vim.host.Summary.HardwareSummary) {\n";
  expect_refused("", "no \"(vim.host.Summary) {\"");
  expect_refused("Commands available under /:\n", "no \"(vim.host.Summary) {\"");
  expect_refused(replaced(kHostSummary, hw_open, "   hardware = (vim.host.Summary.Hardware) {\n"),
                 "no hardware block");
  expect_refused(replaced(kHostSummary, uuid_line, ""), "no uuid in the hardware block");
  expect_refused(replaced(kHostSummary, uuid_line, uuid_line + uuid_line), "a second uuid line");
  // The other host's uuid after this one's: two lines, whichever comes first.
  expect_refused(replaced(kHostSummary, uuid_line,
                          uuid_line + "      uuid = \"00000000-0000-0000-0000-000000000001\",\n"),
                 "a second uuid line");
  // A second hardware block, at the summary's level.
  expect_refused(replaced(kHostSummary, "   runtime = (vim.host.RuntimeInfo) {\n",
                          hw_open + uuid_line + "   },\n   runtime = (vim.host.RuntimeInfo) {\n"),
                 "a second hardware block");
  // A second summary after the first.
  expect_refused(std::string(kHostSummary) + kHostSummary, "text after the summary");
  // Cut off in the middle.
  std::string cut(kHostSummary);
  expect_refused(cut.substr(0, cut.find("      memorySize")), "the summary does not end");
  // Values that are not a uuid.
  expect_refused(replaced(kHostSummary, uuid_line, "      uuid = <unset>,\n"),
                 "the host reports no hardware uuid");
  expect_refused(replaced(kHostSummary, uuid_line, "      uuid = \"\",\n"), "not hex digits");
  expect_refused(replaced(kHostSummary, uuid_line, "      uuid = \" - \",\n"), "not hex digits");
  expect_refused(replaced(kHostSummary, uuid_line, "      uuid = 4c4c4544,\n"),
                 "not a quoted value");
  expect_refused(replaced(kHostSummary, uuid_line, "      uuid = \"4c4c\"4544\",\n"),
                 "not hex digits");
  expect_refused(replaced(kHostSummary, uuid_line, "      uuid = \"4c4c4544\x1b[2J\",\n"),
                 "not hex digits");
  expect_refused(replaced(kHostSummary, uuid_line, "      uuid \"4c4c4544\",\n"), "not `uuid = ");
  expect_refused(
      replaced(kHostSummary, uuid_line, "      uuid = \"" + std::string(65, 'a') + "\",\n"),
      "at most 64");
}

TEST(HostSummary, UuidLinesElsewhereAreNotTheHosts) {
  // Only a uuid line directly in the hardware block counts: the ones of the
  // config and AboutInfo blocks (above) and one nested deeper in it do not.
  const std::string uuid_line = "      uuid = \"4C4C4544-0042-3510-8052-B4C04F395032\",\n";
  std::string nested = replaced(kHostSummary, "               key = \"AssetTag\"\n",
                                "               key = \"AssetTag\",\n"
                                "               uuid = \"00000000-0000-0000-0000-000000000001\"\n");
  EXPECT_EQ(vim::parse_hostsummary_uuid(nested), "4C4C4544-0042-3510-8052-B4C04F395032");
  expect_refused(replaced(nested, uuid_line, ""), "no uuid in the hardware block");
}

TEST(HostSummary, HugeOutputIsLinear) {
  // 200,000 identification blocks inside the hardware block, and a 4 MiB line.
  std::string block =
      "         (vim.host.SystemIdentificationInfo) {\n"
      "            identifierValue = \"x\",\n"
      "         },\n";
  std::string many;
  many.reserve(block.size() * 200000);
  for (int i = 0; i < 200000; ++i) many += block;
  std::string out =
      replaced(kHostSummary, "      ],\n      memorySize", many + "      ],\n      memorySize");
  std::string wide =
      replaced(kHostSummary, "\"PowerEdge R640\"", "\"" + std::string(4u << 20, '{') + "\"");
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(vim::parse_hostsummary_uuid(out), "4C4C4544-0042-3510-8052-B4C04F395032");
  EXPECT_EQ(vim::parse_hostsummary_uuid(wide), "4C4C4544-0042-3510-8052-B4C04F395032");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

}  // namespace
