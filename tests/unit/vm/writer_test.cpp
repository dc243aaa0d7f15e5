#include "vm/writer.hpp"

#include <gtest/gtest.h>

#include <string>

#include "base/error.hpp"

namespace {

using ceso::edit_vmx;
using ceso::Exit;
using ceso::VmxChange;

// The Exit code of what `f` throws, or nullopt when it throws nothing.
template <typename F>
std::optional<Exit> thrown(F&& f) {
  try {
    f();
  } catch (const ceso::Error& e) {
    return e.code();
  }
  return std::nullopt;
}

const char* kVmx =
    ".encoding = \"UTF-8\"\n"
    "displayName = \"web 01\"\n"
    "numvcpus = \"1\"\n"
    "memSize = \"1024\"\n"
    "# a comment = \"kept\"\n"
    "guestinfo.metadata = \"e30=\"\n"
    "ceso.tags = \"web\"\n";

TEST(EditVmx, ReplacesInPlaceKeepsTheRestAndAppendsNewKeys) {
  std::string out = edit_vmx(kVmx, {{"numvcpus", "4"}, {"memSize", "2048"}, {"guestinfo.x", "1"}});
  EXPECT_EQ(out,
            ".encoding = \"UTF-8\"\n"
            "displayName = \"web 01\"\n"
            "numvcpus = \"4\"\n"
            "memSize = \"2048\"\n"
            "# a comment = \"kept\"\n"
            "guestinfo.metadata = \"e30=\"\n"
            "ceso.tags = \"web\"\n"
            "guestinfo.x = \"1\"\n");
}

TEST(EditVmx, KeysCompareWithoutCaseAndRemovalDropsTheLine) {
  std::string out = edit_vmx(kVmx, {{"MEMSIZE", "512"}, {"GuestInfo.Metadata", std::nullopt}});
  EXPECT_NE(out.find("MEMSIZE = \"512\"\n"), std::string::npos);
  EXPECT_EQ(out.find("memSize"), std::string::npos);
  EXPECT_EQ(out.find("guestinfo.metadata"), std::string::npos);
  EXPECT_NE(out.find("# a comment"), std::string::npos);
  // Removing a key that is not there changes nothing.
  EXPECT_EQ(edit_vmx(kVmx, {{"guestinfo.none", std::nullopt}}), kVmx);
}

TEST(EditVmx, ValuesAreEscapedAsTheHostWritesThem) {
  std::string out = edit_vmx("", {{"annotation", "a \"q\" | b\nline"}});
  EXPECT_EQ(out, "annotation = \"a |22q|22 |7C b|0Aline\"\n");
}

TEST(EditVmx, LastChangeOfAKeyWins) {
  EXPECT_EQ(edit_vmx("", {{"k", "1"}, {"K", "2"}}), "K = \"2\"\n");
}

TEST(EditVmx, AFileWithoutFinalNewlineStaysWellFormed) {
  EXPECT_EQ(edit_vmx("a = \"1\"", {{"b", "2"}}), "a = \"1\"\nb = \"2\"\n");
}

TEST(EditVmx, ADuplicatedKeyIsRefused) {
  EXPECT_EQ(thrown([] { edit_vmx("a = \"1\"\nA = \"2\"\n", {{"a", "3"}}); }), Exit::failure);
  // Untouched duplicates are the host's business.
  EXPECT_EQ(edit_vmx("a = \"1\"\na = \"2\"\n", {{"b", "3"}}), "a = \"1\"\na = \"2\"\nb = \"3\"\n");
}

TEST(VmxChanges, WhatTheVmxCanSay) {
  ceso::vmspec::ConfigSpec spec;
  spec.num_cpus = 2;
  spec.memory_mib = 4096;
  spec.annotation = "notes";
  spec.extra_config = {{"guestinfo.userdata", "x"}, {"ceso.tags", ""}};
  auto changes = ceso::vmx_changes(spec);
  std::vector<VmxChange> want = {{"numvcpus", "2"},
                                 {"memSize", "4096"},
                                 {"annotation", "notes"},
                                 {"guestinfo.userdata", "x"},
                                 {"ceso.tags", std::nullopt}};
  EXPECT_EQ(changes, want);
}

TEST(VmxChanges, RefusesWhatOnlyTheApiCanDo) {
  ceso::vmspec::ConfigSpec dev;
  dev.device_changes = {"<deviceChange/>"};
  EXPECT_EQ(thrown([&] { ceso::vmx_changes(dev); }), Exit::failure);
  ceso::vmspec::ConfigSpec name;
  name.name = "x";
  EXPECT_EQ(thrown([&] { ceso::vmx_changes(name); }), Exit::failure);
}

TEST(VmxChanges, HostileKeysAreBadInput) {
  for (const std::string& key :
       std::vector<std::string>{"a b", "a=b", "a\nb", "", "a\"b", std::string(300, 'k')}) {
    ceso::vmspec::ConfigSpec spec;
    spec.extra_config = {{key, "v"}};
    EXPECT_EQ(thrown([&] { ceso::vmx_changes(spec); }), Exit::bad_input) << key;
  }
}

TEST(VmfsPath, DatastorePathToTheHostsPath) {
  EXPECT_EQ(ceso::vmfs_path("[LocalDS_0] web 01/web 01.vmx"),
            "/vmfs/volumes/LocalDS_0/web 01/web 01.vmx");
  for (const char* bad :
       {"", "LocalDS_0/x.vmx", "[] x.vmx", "[ds]x.vmx", "[ds] ../x.vmx", "[ds] a/../../x.vmx",
        "[ds] /etc/passwd", "[..] x.vmx", "[a/b] x.vmx", "[ds] a//x.vmx", "[ds] "})
    EXPECT_EQ(thrown([&] { ceso::vmfs_path(bad); }), Exit::failure) << bad;
}

TEST(NewSnapshot, ByRefOrByNameAmongTheNewOnes) {
  ceso::SnapshotInfo a, b, c;
  a.ref = {"VirtualMachineSnapshot", "s-1"}, a.name = "pre", a.id = 1;
  b.ref = {"VirtualMachineSnapshot", "s-2"}, b.name = "pre", b.id = 2;
  c.ref = {"VirtualMachineSnapshot", "s-3"}, c.name = "other", c.id = 3;
  std::vector<ceso::SnapshotInfo> before = {a}, after = {a, b, c};
  EXPECT_EQ(ceso::new_snapshot(after, before, {}, "pre"), &after[1]);
  EXPECT_EQ(ceso::new_snapshot(after, before, a.ref, "pre"), &after[0]);
  EXPECT_EQ(ceso::new_snapshot(after, after, {}, "pre"), nullptr);
  EXPECT_EQ(ceso::new_snapshot(after, before, {}, "none"), nullptr);
}

TEST(Transport, Words) {
  EXPECT_EQ(ceso::transport_choice_from("auto"), ceso::TransportChoice::automatic);
  EXPECT_EQ(ceso::transport_choice_from("ssh"), ceso::TransportChoice::ssh);
  EXPECT_EQ(ceso::transport_choice_from("api"), ceso::TransportChoice::api);
  EXPECT_EQ(ceso::transport_choice_from("SSH"), std::nullopt);
  EXPECT_EQ(ceso::transport_choice_from(""), std::nullopt);
  EXPECT_EQ(ceso::to_string(ceso::Transport::ssh), "ssh");
}

TEST(Transport, SshWithoutSshAccessIsAUsageError) {
  ceso::Endpoint ep = ceso::parse_endpoint_url("http://127.0.0.1:9/sdk");
  ep.user = "root";
  ceso::vim::Client c(ep);
  ceso::VmWriters writers(ceso::TransportChoice::ssh, false,
                          [](std::string_view) { return std::optional<std::string>(); });
  EXPECT_EQ(thrown([&] { writers.for_client(c); }), Exit::usage);
  // The API and auto without SSH access read nothing to decide (no call to
  // the unreachable host).
  ceso::VmWriters api(ceso::TransportChoice::api);
  EXPECT_EQ(api.for_client(c).transport(), ceso::Transport::api);
  ceso::VmWriters automatic(ceso::TransportChoice::automatic);
  EXPECT_EQ(automatic.for_client(c).transport(), ceso::Transport::api);
  EXPECT_EQ(&automatic.for_client(c), &automatic.for_client(c));
}

}  // namespace
