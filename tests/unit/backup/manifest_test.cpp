#include "backup/manifest.hpp"

#include <gtest/gtest.h>

#include "base/error.hpp"

namespace {

ceso::Manifest sample() {
  ceso::Manifest m;
  m.id = "web01-20240101T000000Z-abcd";
  m.tool_version = "0.1.0";
  m.mode = "hot";
  m.started = 100;
  m.finished = 160;
  m.vm = {
      {"type", "vm"}, {"endpoint", "h:443"}, {"id", "vm-1"}, {"name", "web01"}, {"uuid", "u-1"}};
  m.tags = {"web"};
  ceso::ManifestFile f;
  f.name = "disk0-flat.vmdk.zst";
  f.source = "[ds] web01/web01-flat.vmdk";
  f.kind = "extent";
  f.disk = 0;
  f.size = 1000;
  f.stored_size = 100;
  f.sha256 = std::string(64, 'a');
  f.stored_sha256 = std::string(64, 'b');
  m.files = {f};
  return m;
}

TEST(ManifestTest, RoundTrips) {
  auto m = sample();
  auto back = ceso::manifest_from_json(ceso::manifest_json(m).dump());
  EXPECT_EQ(back.id, m.id);
  EXPECT_EQ(back.vm["name"], "web01");
  ASSERT_EQ(back.files.size(), 1u);
  EXPECT_EQ(back.files[0].source, m.files[0].source);
  EXPECT_EQ(back.files[0].disk, 0);
  EXPECT_EQ(back.bytes_raw(), 1000u);
  EXPECT_EQ(back.tags, std::vector<std::string>{"web"});
  auto e = ceso::catalog_entry(back, "file:///b");
  EXPECT_EQ(e.vm_uuid, "u-1");
  EXPECT_EQ(e.status, "complete");
  EXPECT_EQ(e.bytes_stored, 100u);
}

TEST(ManifestTest, RejectsMalformedOrNewerManifests) {
  auto j = ceso::manifest_json(sample());
  EXPECT_THROW(ceso::manifest_from_json("not json"), ceso::Error);
  auto newer = j;
  newer["format"] = 99;
  EXPECT_THROW(ceso::manifest_from_json(newer.dump()), ceso::Error);
  auto missing = j;
  missing.erase("files");
  EXPECT_THROW(ceso::manifest_from_json(missing.dump()), ceso::Error);
  auto escape = j;
  escape["files"][0]["name"] = "../../etc/passwd";
  EXPECT_THROW(ceso::manifest_from_json(escape.dump()), ceso::Error);
}

TEST(ManifestTest, StoredHashIsXxh128OrSha256NeverBothNorNeither) {
  auto m = sample();  // an entry of before XXH3: stored_sha256
  auto j = ceso::manifest_json(m);
  EXPECT_FALSE(j["files"][0].contains("stored_xxh128"));
  EXPECT_EQ(ceso::manifest_from_json(j.dump()).files[0].stored_sha256, std::string(64, 'b'));
  m.files[0].stored_sha256.clear();
  m.files[0].stored_xxh128 = std::string(32, 'c');
  j = ceso::manifest_json(m);
  EXPECT_FALSE(j["files"][0].contains("stored_sha256"));
  auto back = ceso::manifest_from_json(j.dump());
  EXPECT_EQ(back.files[0].stored_xxh128, std::string(32, 'c'));
  EXPECT_TRUE(back.files[0].stored_sha256.empty());
  auto both = j;
  both["files"][0]["stored_sha256"] = std::string(64, 'b');
  EXPECT_THROW(ceso::manifest_from_json(both.dump()), ceso::Error);
  auto neither = j;
  neither["files"][0].erase("stored_xxh128");
  EXPECT_THROW(ceso::manifest_from_json(neither.dump()), ceso::Error);
  auto wrong_type = j;
  wrong_type["files"][0]["stored_xxh128"] = 5;
  EXPECT_THROW(ceso::manifest_from_json(wrong_type.dump()), ceso::Error);
}

TEST(ManifestTest, WarningsRoundTripAndAreAbsentWhenNone) {
  auto m = sample();
  EXPECT_FALSE(ceso::manifest_json(m).contains("warnings"));
  m.warnings = {"[ds] web01/web01.nvram (nvram): listed by the host but not served (HTTP 404)"};
  auto back = ceso::manifest_from_json(ceso::manifest_json(m).dump());
  EXPECT_EQ(back.warnings, m.warnings);
  auto j = ceso::manifest_json(m);
  j["warnings"] = 3;
  EXPECT_THROW(ceso::manifest_from_json(j.dump()), ceso::Error);
}

}  // namespace

TEST(ManifestTest, Format2ChunkedFilesAndChunkStats) {
  auto m = sample();
  m.format = 2;
  ceso::ManifestFile idx;
  idx.name = "disk0-flat.vmdk.idx";
  idx.kind = "extent";
  idx.disk = 0;
  idx.size = 8u << 20;
  idx.stored_size = 200;
  idx.compression = "chunks";
  m.files.push_back(idx);
  m.chunk_stats = {{"chunks", 2}, {"uploaded", 1}, {"bytes_uploaded", 5000u}};
  auto back = ceso::manifest_from_json(ceso::manifest_json(m).dump());
  EXPECT_EQ(back.format, 2);
  EXPECT_EQ(back.files.back().compression, "chunks");
  // What the backup added: its files plus the chunks it uploaded.
  EXPECT_EQ(back.bytes_stored(), m.bytes_stored());
  EXPECT_EQ(ceso::catalog_entry(back, "file:///b").bytes_stored, 100u + 200u + 5000u);
  auto j = ceso::manifest_json(m);
  auto unknown = j;
  unknown["files"].back()["compression"] = "gzip";
  EXPECT_THROW(ceso::manifest_from_json(unknown.dump()), ceso::Error);
  auto old = j;  // chunks are format 2 only
  old["format"] = 1;
  EXPECT_THROW(ceso::manifest_from_json(old.dump()), ceso::Error);
  auto not_extent = j;  // only data files are chunked
  not_extent["files"].back()["kind"] = "vmx";
  EXPECT_THROW(ceso::manifest_from_json(not_extent.dump()), ceso::Error);
  auto bad_stats = j;
  bad_stats["chunk_stats"]["bytes_uploaded"] = -1;
  EXPECT_THROW(ceso::manifest_from_json(bad_stats.dump()), ceso::Error);
  auto zero = j;
  zero["format"] = 0;
  EXPECT_THROW(ceso::manifest_from_json(zero.dump()), ceso::Error);
}
