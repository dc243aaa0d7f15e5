#include "vm/snapshot.hpp"

#include <gtest/gtest.h>

#include "base/error.hpp"
#include "base/xml.hpp"

namespace ceso {
namespace {

// A `snapshot` property value as vcsim and ESXi send it: a tree with a
// repeated name in two branches.
const char* kTree = R"(<val>
  <currentSnapshot type="VirtualMachineSnapshot">snapshot-3</currentSnapshot>
  <rootSnapshotList>
    <snapshot type="VirtualMachineSnapshot">snapshot-1</snapshot><name>base</name>
    <description>first &amp; only</description><id>1</id>
    <createTime>2026-11-20T10:00:00.5Z</createTime><state>poweredOff</state><quiesced>false</quiesced>
    <childSnapshotList>
      <snapshot type="VirtualMachineSnapshot">snapshot-2</snapshot><name>x</name><id>2</id>
      <createTime>2026-11-21T10:00:00+01:00</createTime><state>poweredOn</state><quiesced>true</quiesced>
    </childSnapshotList>
    <childSnapshotList>
      <snapshot type="VirtualMachineSnapshot">snapshot-3</snapshot><name>b</name><id>3</id>
      <createTime>2026-11-21T11:00:00Z</createTime><state>suspended</state><quiesced>false</quiesced>
      <childSnapshotList>
        <snapshot type="VirtualMachineSnapshot">snapshot-4</snapshot><name>x</name><id>4</id>
        <createTime>2026-11-21T12:00:00Z</createTime><state>poweredOn</state><quiesced>false</quiesced>
      </childSnapshotList>
    </childSnapshotList>
  </rootSnapshotList>
</val>)";

TEST(SnapshotTest, TreeIsFlattenedDepthFirstWithPaths) {
  xml::Node val = xml::parse(kTree);
  auto snaps = snapshots_from_xml(&val);
  ASSERT_EQ(snaps.size(), 4u);
  EXPECT_EQ(snaps[0].path, "base");
  EXPECT_EQ(snaps[1].path, "base/x");
  EXPECT_EQ(snaps[2].path, "base/b");
  EXPECT_EQ(snaps[3].path, "base/b/x");
  EXPECT_EQ(snaps[0].description, "first & only");
  EXPECT_EQ(snaps[0].power, "off");
  EXPECT_EQ(snaps[2].power, "suspended");
  EXPECT_TRUE(snaps[1].quiesced);
  EXPECT_TRUE(snaps[2].current);
  EXPECT_FALSE(snaps[0].current);
  EXPECT_EQ(snaps[3].id, 4);
  EXPECT_EQ(snaps[3].ref, (vim::MoRef{"VirtualMachineSnapshot", "snapshot-4"}));
  EXPECT_TRUE(snapshots_from_xml(nullptr).empty());
}

TEST(SnapshotTest, FindByNameOrPathAndAmbiguity) {
  xml::Node val = xml::parse(kTree);
  auto snaps = snapshots_from_xml(&val);
  EXPECT_EQ(find_snapshot(snaps, "b")->id, 3);
  EXPECT_EQ(find_snapshot(snaps, "nope"), nullptr);
  EXPECT_EQ(find_snapshot(snaps, "base/b/x")->id, 4);
  try {
    find_snapshot(snaps, "x");
    FAIL() << "expected an ambiguity error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Exit::failure);
    EXPECT_NE(std::string(e.what()).find("2 snapshots are named 'x'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("'base/b/x'"), std::string::npos);
  }
}

TEST(SnapshotTest, Records) {
  xml::Node val = xml::parse(kTree);
  auto snaps = snapshots_from_xml(&val);
  auto r = snapshot_record(snaps[1], "esx:443", "vm-9", "web 01");
  EXPECT_EQ(r["type"], "snapshot");
  EXPECT_EQ(r["vm"], "web 01");
  EXPECT_EQ(r["vm_id"], "vm-9");
  EXPECT_EQ(r["path"], "base/x");
  EXPECT_EQ(r["quiesced"], true);
  EXPECT_EQ(snapshot_record(snaps[1]).contains("type"), false);
}

}  // namespace
}  // namespace ceso
