// The stored stream (zstd + SHA-256 both ways), verification and prune
// planning, against a file target in a temporary directory.
#include "backup/backup.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "backup/chunks.hpp"
#include "backup/manifest.hpp"
#include "base/error.hpp"

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

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(BackupTest, StoredHashIsXxh3AndOddSizesRoundTripThroughTheThreads) {
  TempTarget t;
  // Sizes around the 1 MiB blocks the threads hand over, and nothing at all.
  for (size_t size : {size_t{0}, size_t{1}, (size_t{1} << 20) - 1, size_t{1} << 20,
                      (size_t{1} << 20) + 1, (size_t{5} << 20) + 12345}) {
    std::string data = pattern(size);
    auto f = store(*t.target, data);
    EXPECT_EQ(f.size, size);
    EXPECT_EQ(f.stored_xxh128.size(), 32u);
    EXPECT_TRUE(f.stored_sha256.empty());
    EXPECT_EQ(f.sha256, ceso::sha256_hex(data.data(), data.size()));
    // Read back in pieces smaller than a block: the same bytes, no problem.
    ceso::StoredFileReader r(*t.target, "b", f);
    std::string back;
    std::vector<char> buf(4000);
    while (size_t n = r.read(buf.data(), buf.size())) back.append(buf.data(), n);
    EXPECT_EQ(back, data) << size;
    EXPECT_EQ(r.problems(), std::vector<std::string>{}) << size;
  }
}

TEST(BackupTest, Sha256StoredHashesOfOlderManifestsAreChecked) {
  TempTarget t;
  auto f = store(*t.target, pattern(3 << 20));
  std::string stored = slurp(t.root + "/b/d.zst");
  ASSERT_EQ(stored.size(), f.stored_size);
  auto old = f;  // as a manifest of before XXH3 has it
  old.stored_xxh128.clear();
  old.stored_sha256 = ceso::sha256_hex(stored.data(), stored.size());
  EXPECT_EQ(ceso::check_stored_file(*t.target, "b", old), std::vector<std::string>{});
  old.stored_sha256[0] = old.stored_sha256[0] == '0' ? '1' : '0';
  auto p = ceso::check_stored_file(*t.target, "b", old);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_NE(p[0].find("SHA-256 of the stored file differs"), std::string::npos) << p[0];
  auto wrong = f;
  wrong.stored_xxh128[0] = wrong.stored_xxh128[0] == '0' ? '1' : '0';
  p = ceso::check_stored_file(*t.target, "b", wrong);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_NE(p[0].find("XXH3-128 of the stored file differs"), std::string::npos) << p[0];
}

TEST(BackupTest, CheckFindsAFlippedBitASwappedFileAndAppendedBytes) {
  TempTarget t;
  auto f = store(*t.target, pattern(2 << 20));
  const std::string path = t.root + "/b/d.zst";
  const std::string good = slurp(path);
  auto put = [&](const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; };
  // One bit, near the end (the last block, the frame checksum's neighbourhood).
  std::string bad = good;
  bad[bad.size() - 9] ^= 0x10;
  put(bad);
  auto p = ceso::check_stored_file(*t.target, "b", f);
  ASSERT_FALSE(p.empty());
  EXPECT_NE(p[0].find("d.zst"), std::string::npos);
  // One bit in the middle of a raw (incompressible) block: zstd sees nothing
  // wrong (its frame checksum is not checked), both of our hashes do.
  bad = good;
  bad[1000] ^= 0x01;  // past the frame header and the first block header (at most 21 bytes)
  put(bad);
  p = ceso::check_stored_file(*t.target, "b", f);
  EXPECT_EQ(
      p, (std::vector<std::string>{"d.zst: XXH3-128 of the stored file differs from the manifest",
                                   "d.zst: SHA-256 of the data differs from the manifest"}));
  // Another backup's stream of the same size in its place: it decompresses
  // fine, the hashes say it is not this file.
  std::string other = pattern(2 << 20);
  other[100] ^= 1;
  t.target->make_dir("c");
  ceso::ManifestFile g;
  {
    ceso::StoredFileWriter w(t.target->create("c/d.zst"), 3, 2);
    w.write(other.data(), other.size());
    w.finish(g);
  }
  ASSERT_EQ(g.stored_size, f.stored_size);
  put(slurp(t.root + "/c/d.zst"));
  p = ceso::check_stored_file(*t.target, "b", f);
  EXPECT_EQ(
      p, (std::vector<std::string>{"d.zst: XXH3-128 of the stored file differs from the manifest",
                                   "d.zst: SHA-256 of the data differs from the manifest"}));
  // Bytes after the stream.
  put(good + "x");
  p = ceso::check_stored_file(*t.target, "b", f);
  ASSERT_FALSE(p.empty());
  EXPECT_NE(p[0].find("bytes stored, manifest says"), std::string::npos) << p[0];
  put(good);
  EXPECT_EQ(ceso::check_stored_file(*t.target, "b", f), std::vector<std::string>{});
}

TEST(BackupTest, AReaderLeftHalfWayStopsItsThread) {
  TempTarget t;
  auto f = store(*t.target, pattern(9 << 20));
  for (int i = 0; i < 20; ++i) {
    ceso::StoredFileReader r(*t.target, "b", f);
    char buf[1000];
    EXPECT_EQ(r.read(buf, sizeof buf), sizeof buf);
  }  // each destructor stops a producer blocked on its full queue
}

// A marker as a run writes it; `host` "" means this machine.
std::string marker(const std::string& host, const std::string& lock, int64_t pid) {
  char self[256] = {};
  gethostname(self, sizeof self - 1);
  return ceso::ordered_json{{"run", "x"},   {"vm_key", "h/u"},
                            {"lock", lock}, {"host", host.empty() ? std::string(self) : host},
                            {"pid", pid},   {"started", 1}}
      .dump();
}

TEST(BackupTest, IncompleteDirectoriesAreNotBackupsAndGcRemovesThem) {
  TempTarget t;
  t.target->make_dir("done");
  t.target->write_file("done/manifest.json", "{}");
  t.target->make_dir("killed");
  t.target->write_file("killed/disk0.zst", "x");
  // A dead run of this machine: no lock file, no such process.
  t.target->write_file("killed/.in-progress", marker("", t.root + "/no-lock", 0x7ffffff0));
  auto l = ceso::list_target(*t.target);
  EXPECT_EQ(l.complete, std::vector<std::string>{"done"});
  EXPECT_EQ(l.incomplete, std::vector<std::string>{"killed"});
  EXPECT_EQ(ceso::collect_garbage(*t.target, true), std::vector<std::string>{"killed"});
  EXPECT_TRUE(t.target->file_size("killed/disk0.zst"));  // dry run
  EXPECT_EQ(ceso::collect_garbage(*t.target, false), std::vector<std::string>{"killed"});
  EXPECT_FALSE(t.target->file_size("killed/disk0.zst"));
  EXPECT_TRUE(t.target->file_size("done/manifest.json"));
}

TEST(BackupTest, GcTouchesOnlyDeadRunsThatCarryCesosMarker) {
  TempTarget t;
  namespace fs = std::filesystem;
  fs::create_directories(t.root + "/lost+found");
  fs::create_directories(t.root + "/emptydir");
  fs::create_directories(t.root + "/foreign");
  std::ofstream(t.root + "/foreign/data") << "user data";
  std::ofstream(t.root + "/README") << "a stray file at the root";
  fs::create_directories(t.root + "/../outside-" + std::to_string(getpid()));
  fs::create_directory_symlink(t.root + "/../outside-" + std::to_string(getpid()),
                               t.root + "/link");
  t.target->make_dir("notours");
  t.target->write_file("notours/.in-progress", "not json");
  t.target->make_dir("other-host");
  t.target->write_file("other-host/.in-progress", marker("elsewhere.example", "/x.lock", 1));
  t.target->make_dir("alive");
  t.target->write_file("alive/.in-progress", marker("", t.root + "/no-lock", getpid()));
  auto l = ceso::list_target(*t.target);  // the stray file does not break it
  EXPECT_EQ(l.complete, std::vector<std::string>{});
  EXPECT_EQ(l.foreign,
            (std::vector<std::string>{"README", "emptydir", "foreign", "link", "lost+found"}));
  std::vector<std::string> busy;
  EXPECT_EQ(ceso::collect_garbage(*t.target, false, &busy), std::vector<std::string>{});
  EXPECT_EQ(busy, (std::vector<std::string>{"alive", "notours", "other-host"}));
  for (const char* p : {"lost+found", "emptydir", "foreign/data", "README", "link", "notours",
                        "other-host", "alive"})
    EXPECT_TRUE(fs::exists(t.root + "/" + p)) << p;
  fs::remove_all(t.root + "/../outside-" + std::to_string(getpid()));
}

TEST(BackupTest, BackupIdsAreUntrustedInput) {
  for (const std::string& bad : std::vector<std::string>{
           "", ".", "..", "../x", "ID/", "/abs", "a/b", "a\nb", "-rf", ".hidden", "a b", "a\\b",
           "é", std::string(129, 'a'), std::string("a\0b", 3)}) {
    EXPECT_FALSE(ceso::is_backup_id(bad)) << bad;
    try {
      ceso::check_backup_id(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const ceso::Error& e) {
      EXPECT_EQ(e.code(), ceso::Exit::bad_input);
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
    }
  }
  EXPECT_TRUE(ceso::is_backup_id(std::string(128, 'a')));
  EXPECT_TRUE(ceso::is_backup_id("damaged"));
  std::string id = ceso::make_backup_id("web 01", 1700000000);
  EXPECT_TRUE(ceso::is_backup_id(id));
  EXPECT_EQ(id.size() - id.rfind('-') - 1, 16u) << id;  // 64 random bits
  EXPECT_NE(ceso::make_backup_id("a", 1), ceso::make_backup_id("a", 1));
}

TEST(BackupTest, TargetPathsNeverLeaveTheRootNorRemoveIt) {
  TempTarget t;
  std::string sibling = t.root + "-sibling";
  std::filesystem::create_directories(sibling);
  std::ofstream(sibling + "/keep") << "x";
  t.target->make_dir("b");
  for (const char* bad : {"", "..", "../", "b/..", "b/../..", "/etc", "b//c", "b/", "./b"}) {
    try {
      t.target->remove_tree(bad);
      ADD_FAILURE() << "removed " << bad;
    } catch (const ceso::Error& e) {
      EXPECT_EQ(e.code(), ceso::Exit::bad_input) << bad;
    }
  }
  std::string up = "../" + std::filesystem::path(sibling).filename().string();
  EXPECT_THROW(t.target->remove_tree(up), ceso::Error);
  EXPECT_THROW(t.target->file_size(up + "/keep"), ceso::Error);
  EXPECT_THROW(t.target->create(up + "/new"), ceso::Error);
  EXPECT_TRUE(std::filesystem::exists(sibling + "/keep"));
  EXPECT_TRUE(std::filesystem::exists(t.root + "/b"));
  std::filesystem::remove_all(sibling);
}

TEST(BackupTest, HugeSmallFilesAreRefusedNotReadIntoMemory) {
  TempTarget t;
  t.target->make_dir("b");
  std::ofstream(t.root + "/b/manifest.json").close();
  std::filesystem::resize_file(t.root + "/b/manifest.json", (size_t{64} << 20) + 1);
  try {
    t.target->read_file("b/manifest.json");
    FAIL() << "no error";
  } catch (const ceso::Error& e) {
    EXPECT_EQ(e.code(), ceso::Exit::bad_input);
  }
  // prune's presence check and reindex name it instead of failing.
  EXPECT_NE(ceso::backup_presence_problem(*t.target, "b")->find("larger than 64 MiB"),
            std::string::npos);
}

TEST(BackupTest, MakeDirExclusiveFailsWhenTheNameIsTaken) {
  TempTarget t;
  t.target->make_dir_exclusive("x");
  t.target->write_file("x/f", "mine");
  EXPECT_THROW(t.target->make_dir_exclusive("x"), ceso::Error);
  std::ofstream(t.root + "/file") << "y";
  EXPECT_THROW(t.target->make_dir_exclusive("file"), ceso::Error);
  EXPECT_EQ(t.target->read_file("x/f"), "mine");
}

// A complete backup with one stored file, as a run leaves it.
void write_backup(ceso::BackupTarget& t, const std::string& id, const std::string& name = "vm") {
  t.make_dir(id);
  ceso::ManifestFile f;
  f.name = "config.xml.zst";
  f.kind = "config";
  ceso::StoredFileWriter w(t.create(id + "/" + f.name), 3, 1);
  w.write("<config/>", 9);
  w.finish(f);
  ceso::Manifest m;
  m.id = id;
  m.mode = "cold";
  m.vm = {{"endpoint", "h:443"}, {"id", "vm-1"}, {"name", name}, {"uuid", "u"}};
  m.files = {f};
  t.write_file(id + "/manifest.json", ceso::manifest_json(m).dump());
}

TEST(BackupTest, PresenceChecksManifestAndStoredSizes) {
  TempTarget t;
  write_backup(*t.target, "a");
  EXPECT_EQ(ceso::backup_presence_problem(*t.target, "a"), std::nullopt);
  EXPECT_EQ(ceso::backup_presence_problem(*t.target, "gone"), "backup directory missing");
  std::filesystem::resize_file(t.root + "/a/config.xml.zst", 3);
  EXPECT_NE(ceso::backup_presence_problem(*t.target, "a")->find("3 bytes"), std::string::npos);
  std::filesystem::remove(t.root + "/a/config.xml.zst");
  EXPECT_NE(ceso::backup_presence_problem(*t.target, "a")->find("missing"), std::string::npos);
  write_backup(*t.target, "b");
  std::filesystem::rename(t.root + "/b", t.root + "/c");
  EXPECT_NE(ceso::backup_presence_problem(*t.target, "c")->find("names backup 'b'"),
            std::string::npos);
  EXPECT_EQ(ceso::backup_presence_problem(*t.target, "../a"), "not a well-formed backup id");
}

TEST(BackupTest, ReindexIndexesEveryGoodManifestAndNamesEachBadOne) {
  TempTarget t;
  write_backup(*t.target, "good1");
  write_backup(*t.target, "good2");
  t.target->make_dir("broken");
  t.target->write_file("broken/manifest.json", "{not json");
  write_backup(*t.target, "other");
  std::filesystem::rename(t.root + "/other", t.root + "/renamed");
  std::ofstream(t.root + "/stray") << "x";
  std::string db = t.root + "-catalog.db";
  std::filesystem::remove(db);
  {
    ceso::Catalog c(db);
    auto r = ceso::reindex(*t.target, c);
    EXPECT_EQ(r.indexed, 2u);
    ASSERT_EQ(r.bad.size(), 2u);
    EXPECT_EQ(r.bad[0].rfind("broken: ", 0), 0u) << r.bad[0];
    EXPECT_EQ(r.bad[1].rfind("renamed: ", 0), 0u) << r.bad[1];
    auto rows = c.list();
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].id, "good1");
  }
  std::filesystem::remove(db);
}

TEST(BackupTest, VerifyReportsWhatRestoreWouldReject) {
  TempTarget t;
  write_backup(*t.target, "d");
  auto m = ceso::manifest_from_json(t.target->read_file("d/manifest.json"));
  auto add = [&](const std::string& name, const std::string& kind, const std::string& data) {
    ceso::ManifestFile f;
    f.name = name;
    f.kind = kind;
    f.disk = 0;
    ceso::StoredFileWriter w(t.target->create("d/" + name), 3, 1);
    w.write(data.data(), data.size());
    w.finish(f);
    m.files.push_back(f);
  };
  // A name with a newline cut the extent line in two.
  add("disk0.vmdk.zst", "descriptor",
      "# Disk DescriptorFile\nversion=1\nRW 8 VMFS \"web\n01-flat.vmdk\"\n");
  add("disk0-flat.vmdk.zst", "extent", std::string(4096, 'x'));
  t.target->write_file("d/manifest.json", ceso::manifest_json(m).dump());
  auto r = ceso::verify_backup(*t.target, "d");
  EXPECT_FALSE(r.ok);
  ASSERT_FALSE(r.problems.empty());
  EXPECT_NE(r.problems[0].find("broken extent line"), std::string::npos) << r.problems[0];
  EXPECT_NE(r.problems[0].find("restore cannot use it"), std::string::npos);
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

TEST(BackupTest, PruneCountsOnlyBackupsPresentAtTheTarget) {
  ceso::RetentionPolicy p;
  p.last = 1;
  // The newest row's directory was deleted behind ceso's back.
  auto presence = [](const ceso::CatalogEntry& e) -> std::optional<std::string> {
    if (e.id == "c") return "backup directory missing";
    return std::nullopt;
  };
  auto ds = ceso::plan_prune({row("a", 1), row("b", 2), row("c", 3)}, p, presence);
  std::map<std::string, std::string> action;
  for (const auto& d : ds) action[d.entry.id] = d.missing ? "missing" : d.keep ? "keep" : "remove";
  EXPECT_EQ(action,
            (std::map<std::string, std::string>{{"a", "remove"}, {"b", "keep"}, {"c", "missing"}}));
  // Every backup missing: nothing is removed.
  for (const auto& d : ceso::plan_prune(
           {row("a", 1), row("b", 2)}, p,
           [](const ceso::CatalogEntry&) -> std::optional<std::string> { return "gone"; }))
    EXPECT_TRUE(d.keep && d.missing);
  // A missing newest row does not hide that the newest present one failed verify.
  auto bad = row("b", 2);
  bad.verify = "failed";
  for (const auto& d : ceso::plan_prune({row("a", 1), bad, row("c", 3)}, p, presence))
    EXPECT_TRUE(d.keep) << d.entry.id;
}

TEST(BackupTest, AVmAlwaysKeepsItsNewestBackup) {
  ceso::RetentionPolicy p;
  p.within = ceso::RetentionDuration{};  // --keep-within 0h keeps nothing by itself
  auto ds = ceso::plan_prune({row("a", 1), row("b", 2)}, p);
  std::map<std::string, bool> keep;
  for (const auto& d : ds) keep[d.entry.id] = d.keep;
  EXPECT_EQ(keep, (std::map<std::string, bool>{{"a", false}, {"b", true}}));
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
