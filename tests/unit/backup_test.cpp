// The stored stream (zstd + SHA-256 both ways), verification and prune
// planning, against a file target in a temporary directory.
#include "ceso/backup.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "ceso/error.hpp"

namespace {

struct TempTarget {
  std::string root;
  std::unique_ptr<ceso::BackupTarget> target;
  TempTarget() {
    root = (std::filesystem::temp_directory_path() /
            ("ceso-backup-test-" + std::to_string(getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    std::filesystem::remove_all(root);
    std::filesystem::create_directories(root);
    target = ceso::open_backup_target("file://" + root);
  }
  ~TempTarget() { std::filesystem::remove_all(root); }
};

std::string pattern(size_t n) {
  std::string s(n, '\0');
  uint32_t x = 12345;
  for (auto& c : s) {
    x = x * 1103515245 + 12345;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

ceso::ManifestFile store(ceso::BackupTarget& t, const std::string& data) {
  t.make_dir("b");
  ceso::ManifestFile f;
  f.name = "d.zst";
  ceso::StoredFileWriter w(t.create("b/d.zst"), 3, 2);
  for (size_t off = 0; off < data.size(); off += 70000)
    w.write(data.data() + off, std::min<size_t>(70000, data.size() - off));
  w.finish(f);
  return f;
}

TEST(BackupTest, StoredStreamRoundTripsWithBothHashes) {
  TempTarget t;
  std::string data = pattern(3 << 20) + std::string(1 << 20, 'z');
  auto f = store(*t.target, data);
  EXPECT_EQ(f.size, data.size());
  EXPECT_LT(f.stored_size, f.size);
  EXPECT_EQ(f.sha256.size(), 64u);
  std::string back;
  auto problems = ceso::check_stored_file(*t.target, "b", f,
                                          [&](const char* p, size_t n) { back.append(p, n); });
  EXPECT_TRUE(problems.empty()) << problems.front();
  EXPECT_EQ(back, data);
}

TEST(BackupTest, CheckFindsFlippedTruncatedAndMissingFiles) {
  TempTarget t;
  auto f = store(*t.target, pattern(1 << 20));
  std::string path = t.root + "/b/d.zst";
  {
    std::fstream io(path, std::ios::in | std::ios::out | std::ios::binary);
    io.seekg(static_cast<std::streamoff>(f.stored_size / 2));
    char c = 0;
    io.get(c);
    io.seekp(static_cast<std::streamoff>(f.stored_size / 2));
    io.put(static_cast<char>(c ^ 1));
  }
  EXPECT_FALSE(ceso::check_stored_file(*t.target, "b", f).empty());
  std::filesystem::resize_file(path, f.stored_size / 3);
  auto p = ceso::check_stored_file(*t.target, "b", f);
  ASSERT_FALSE(p.empty());
  EXPECT_NE(p.front().find("truncated"), std::string::npos);
  std::filesystem::remove(path);
  p = ceso::check_stored_file(*t.target, "b", f);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_NE(p.front().find("missing"), std::string::npos);
}

TEST(BackupTest, IncompleteDirectoriesAreNotBackupsAndGcRemovesThem) {
  TempTarget t;
  t.target->make_dir("done");
  t.target->write_file("done/manifest.json", "{}");
  t.target->make_dir("killed");
  t.target->write_file("killed/disk0.zst", "x");
  auto l = ceso::list_target(*t.target);
  EXPECT_EQ(l.complete, std::vector<std::string>{"done"});
  EXPECT_EQ(l.incomplete, std::vector<std::string>{"killed"});
  EXPECT_EQ(ceso::collect_garbage(*t.target, true), std::vector<std::string>{"killed"});
  EXPECT_TRUE(t.target->file_size("killed/disk0.zst"));  // dry run
  EXPECT_EQ(ceso::collect_garbage(*t.target, false), std::vector<std::string>{"killed"});
  EXPECT_FALSE(t.target->file_size("killed/disk0.zst"));
  EXPECT_TRUE(t.target->file_size("done/manifest.json"));
}

TEST(BackupTest, IdsAreSortableAndSafe) {
  std::string id = ceso::make_backup_id("web 01/../&é", 1700000000);
  EXPECT_EQ(id.find('/'), std::string::npos);
  EXPECT_EQ(id.rfind("web_01_.._-20231114T221320Z-", 0), 0u) << id;
  EXPECT_LT(ceso::make_backup_id("a", 1700000000), ceso::make_backup_id("a", 1700003600));
}

ceso::CatalogEntry row(std::string id, int64_t t, std::string status = "complete") {
  ceso::CatalogEntry e;
  e.id = std::move(id);
  e.target = "file:///b";
  e.endpoint = "h:443";
  e.vm_uuid = "u";
  e.vm_name = "vm";
  e.created = t;
  e.status = std::move(status);
  return e;
}

TEST(BackupTest, PruneHoldsAVmWhoseNewestRunFailed) {
  ceso::RetentionPolicy p;
  p.last = 1;
  auto ds = ceso::plan_prune({row("a", 1), row("b", 2), row("c", 3, "failed")}, p);
  ASSERT_EQ(ds.size(), 3u);
  for (const auto& d : ds) {
    EXPECT_TRUE(d.keep) << d.entry.id;
    EXPECT_EQ(d.reasons.front().rfind("held", 0), 0u);
  }
  auto verified_bad = row("d", 4);
  verified_bad.verify = "failed";
  for (const auto& d : ceso::plan_prune({row("a", 1), verified_bad}, p)) EXPECT_TRUE(d.keep);
}

TEST(BackupTest, AFailedRunInTheSameSecondAsTheNewestBackupHoldsEverything) {
  ceso::RetentionPolicy p;
  p.last = 1;
  // Ids sort either way around the failed one: the time decides, then the status.
  for (const char* failed_id : {"0-failed", "z-failed"}) {
    auto ds = ceso::plan_prune({row("a", 1), row("m", 2), row(failed_id, 2, "failed")}, p);
    ASSERT_EQ(ds.size(), 3u);
    for (const auto& d : ds) EXPECT_TRUE(d.keep) << failed_id << " " << d.entry.id;
  }
}

TEST(BackupTest, PruneAppliesRetentionPerVmAndDropsOldFailedRuns) {
  ceso::RetentionPolicy p;
  p.last = 1;
  auto other = row("x", 1);
  other.vm_uuid = "other";
  auto ds = ceso::plan_prune({row("a", 1), row("f", 2, "failed"), row("b", 3), other}, p);
  std::map<std::string, bool> keep;
  for (const auto& d : ds) keep[d.entry.id] = d.keep;
  EXPECT_EQ(keep,
            (std::map<std::string, bool>{{"a", false}, {"b", true}, {"f", false}, {"x", true}}));
}

}  // namespace
