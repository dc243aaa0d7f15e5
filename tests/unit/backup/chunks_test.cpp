// The chunk store of backup format 2 against a file target in a temporary
// directory: the index format (hostile input), writing and reading back
// through chunks, dedup, damage detection, listings and the sweep lock.
#include "backup/chunks.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "backup/backup.hpp"
#include "base/error.hpp"

namespace {

namespace fs = std::filesystem;

struct TempTarget {
  std::string root;
  std::unique_ptr<ceso::BackupTarget> target;
  TempTarget() {
    root = (fs::temp_directory_path() /
            ("ceso-chunks-test-" + std::to_string(getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    fs::remove_all(root);
    fs::create_directories(root);
    target = ceso::open_backup_target("file://" + root);
  }
  ~TempTarget() { fs::remove_all(root); }
};

std::string pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed;
  for (auto& c : s) {
    x = x * 1103515245 + 12345;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

const uint64_t C = ceso::kChunkSize;

ceso::ManifestFile write_chunked(ceso::ChunkStore& store, const std::string& path,
                                 const std::string& data, ceso::ChunkStats* stats = nullptr) {
  ceso::ManifestFile f;
  f.name = path.substr(path.rfind('/') + 1);
  f.kind = "extent";
  ceso::ChunkedFileWriter w(store, path);
  for (size_t off = 0; off < data.size(); off += 300000)
    w.write(data.data() + off, std::min<size_t>(300000, data.size() - off));
  w.finish(f);
  if (stats) *stats = w.stats();
  return f;
}

std::string read_back(ceso::BackupTarget& t, const std::string& dir, const ceso::ManifestFile& f,
                      std::vector<std::string>* problems) {
  ceso::StoredFileReader r(t, dir, f);
  std::string out;
  std::vector<char> buf(1 << 20);
  while (size_t n = r.read(buf.data(), buf.size())) out.append(buf.data(), n);
  *problems = r.problems();
  return out;
}

TEST(ChunksTest, IndexRoundTripsAndRefusesHostileText) {
  ceso::ChunkIndex idx;
  idx.size = 2 * C + 5;
  idx.chunks = {std::string(64, 'a'), "", std::string(64, '0')};
  std::string text = ceso::index_text(idx);
  EXPECT_EQ(text.substr(0, 47), "ceso-chunk-index 1\nchunk_size 4194304\nsize 8388");
  auto back = ceso::parse_index(text);
  EXPECT_EQ(back.size, idx.size);
  EXPECT_EQ(back.chunks, idx.chunks);
  auto refused = [](const std::string& t) {
    try {
      ceso::parse_index(t);
    } catch (const ceso::Error& e) {
      return e.code() == ceso::Exit::bad_input;
    }
    return false;
  };
  const std::string head = "ceso-chunk-index 1\nchunk_size 4194304\n";
  const std::string a = std::string(64, 'a') + "\n";
  EXPECT_TRUE(refused(""));
  EXPECT_TRUE(refused("ceso-chunk-index 2\nchunk_size 4194304\nsize 0\n"));
  EXPECT_TRUE(refused("ceso-chunk-index 1\nchunk_size 65536\nsize 0\n"));  // other chunk size
  EXPECT_TRUE(refused(head + "size 1\n"));                                 // a chunk line short
  EXPECT_TRUE(refused(head + "size 1\n" + a + a));                         // one too many
  EXPECT_TRUE(refused(head + "size 1\n" + std::string(64, 'A') + "\n"));   // upper case
  EXPECT_TRUE(refused(head + "size 1\n../../etc/passwd\n"));
  EXPECT_TRUE(refused(head + "size 1\n" + std::string(64, 'a')));  // no final newline
  EXPECT_TRUE(refused(head + "size -1\n"));
  EXPECT_TRUE(refused(head + "size 01\n" + a));
  EXPECT_TRUE(refused(head + "size 99999999999999999999\n"));
  // A huge size in a short text is refused before anything is allocated.
  EXPECT_TRUE(refused(head + "size 9000000000000000000\n" + a));
  EXPECT_FALSE(refused(head + "size 0\n"));
  EXPECT_TRUE(ceso::is_chunk_id(std::string(64, 'f')));
  EXPECT_FALSE(ceso::is_chunk_id(std::string(63, 'f')));
  EXPECT_THROW(ceso::chunk_path("../x"), ceso::Error);
}

TEST(ChunksTest, WritesOnceReadsBackAndDeduplicates) {
  TempTarget t;
  t.target->make_dir("b1");
  t.target->make_dir("b2");
  ceso::ChunkStore store(*t.target, 3, t.root + "-cache.db");
  // Chunk 0 random, 1 zero, 2 a copy of 0, 3 text-like, then a short tail.
  std::string r = pattern(C, 7);
  std::string text;
  while (text.size() < C) text += "the quick brown fox jumps over the lazy dog 0123456789\n";
  text.resize(C);
  std::string data = r + std::string(C, '\0') + r + text + pattern(1000, 9);
  ceso::ChunkStats s;
  auto f = write_chunked(store, "b1/d.idx", data, &s);
  EXPECT_EQ(s.chunks, 5u);
  EXPECT_EQ(s.zero, 1u);
  EXPECT_EQ(s.reused, 1u);  // chunk 2 = chunk 0
  EXPECT_EQ(s.uploaded, 3u);
  EXPECT_EQ(f.compression, "chunks");
  EXPECT_EQ(f.size, data.size());
  std::vector<std::string> problems;
  EXPECT_EQ(read_back(*t.target, "b1", f, &problems), data);
  EXPECT_TRUE(problems.empty()) << problems.front();
  auto listing = ceso::list_chunks(*t.target);
  EXPECT_EQ(listing.ids.size(), 3u);
  EXPECT_TRUE(listing.temporary.empty());
  // The same data again: nothing uploaded.
  auto f2 = write_chunked(store, "b2/d.idx", data, &s);
  EXPECT_EQ(s.uploaded, 0u);
  EXPECT_EQ(s.reused, 4u);
  EXPECT_EQ(f2.stored_sha256, f.stored_sha256);
  // A chunk removed behind the store's back: the cache hit is confirmed at
  // the target, so the next write uploads it again.
  fs::remove(t.root + "/" + ceso::chunk_path(listing.ids[0]));
  write_chunked(store, "b2/d.idx", data, &s);
  EXPECT_EQ(s.uploaded, 1u);
  EXPECT_TRUE(fs::exists(t.root + "/" + ceso::chunk_path(listing.ids[0])));
}

// More chunks than the writer has buffers, hashed and uploaded by several
// workers in any order: each index entry is still its own chunk's, the
// duplicates are uploaded once, and the file reads back.
TEST(ChunksTest, ParallelWorkersKeepEachChunkInItsPlace) {
  TempTarget t;
  t.target->make_dir("b");
  ceso::ChunkStore store(*t.target, 1, "");
  std::string data;
  std::vector<std::string> expect;
  for (int i = 0; i < 14; ++i) {
    std::string chunk = i % 4 == 3 ? std::string(C, '\0') : pattern(C, 100 + i % 5);
    expect.push_back(i % 4 == 3 ? "" : ceso::sha256_hex(chunk.data(), chunk.size()));
    data += chunk;
  }
  data += pattern(12345, 77);  // a short last chunk
  expect.push_back(ceso::sha256_hex(data.data() + 14 * C, 12345));
  ceso::ChunkStats s;
  auto f = write_chunked(store, "b/d.idx", data, &s);
  EXPECT_EQ(s.chunks, 15u);
  EXPECT_EQ(s.zero, 3u);      // 3, 7, 11
  EXPECT_EQ(s.uploaded, 6u);  // seeds 100-104 and the tail
  EXPECT_EQ(s.reused, 6u);
  EXPECT_EQ(ceso::parse_index(t.target->read_file("b/d.idx")).chunks, expect);
  EXPECT_EQ(f.sha256, ceso::sha256_hex(data.data(), data.size()));
  std::vector<std::string> problems;
  EXPECT_EQ(read_back(*t.target, "b", f, &problems), data);
  EXPECT_TRUE(problems.empty()) << problems.front();
  EXPECT_EQ(ceso::list_chunks(*t.target).ids.size(), 6u);
}

// A worker's failed upload stops the file: the error reaches the caller and
// no index is written.
TEST(ChunksTest, AFailedUploadStopsTheFileWithoutAnIndex) {
  TempTarget t;
  t.target->make_dir("b");
  { std::ofstream(t.root + "/chunks") << "a file where the chunk directory belongs"; }
  ceso::ChunkStore store(*t.target, 1, "");
  std::string data = pattern(6 * C, 5);
  try {
    write_chunked(store, "b/d.idx", data);
    ADD_FAILURE() << "no error";
  } catch (const ceso::Error& e) {
    EXPECT_NE(std::string(e.what()).find("chunks"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(t.root + "/b/d.idx"));
}

TEST(ChunksTest, ReaderReportsMissingCorruptAndSwappedChunks) {
  TempTarget t;
  t.target->make_dir("b");
  ceso::ChunkStore store(*t.target, 3, "");
  std::string data = pattern(2 * C + 10, 3);
  auto f = write_chunked(store, "b/d.idx", data);
  auto ids = ceso::parse_index(t.target->read_file("b/d.idx")).chunks;
  std::vector<std::string> problems;
  auto path0 = t.root + "/" + ceso::chunk_path(ids[0]);
  auto path1 = t.root + "/" + ceso::chunk_path(ids[1]);
  fs::copy_file(path0, t.root + "/keep");
  // Another chunk's (valid) data under this id: the hash catches it.
  fs::copy_file(path1, path0, fs::copy_options::overwrite_existing);
  read_back(*t.target, "b", f, &problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("differs from its id"), std::string::npos) << problems[0];
  // Not zstd at all.
  { std::ofstream(path0, std::ios::trunc) << "garbage"; }
  read_back(*t.target, "b", f, &problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("corrupt"), std::string::npos) << problems[0];
  fs::remove(path0);
  read_back(*t.target, "b", f, &problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("missing"), std::string::npos) << problems[0];
  EXPECT_TRUE(ceso::check_chunk(*t.target, ids[0], false, 0).has_value());
  fs::copy_file(t.root + "/keep", path0);
  EXPECT_FALSE(ceso::check_chunk(*t.target, ids[0], true, C).has_value());
  read_back(*t.target, "b", f, &problems);
  EXPECT_TRUE(problems.empty());
  // The manifest's raw hash is checked over the whole file too.
  auto wrong = f;
  wrong.sha256 = std::string(64, '0');
  read_back(*t.target, "b", wrong, &problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("SHA-256 of the data"), std::string::npos);
  // An index whose hash is not the manifest's is not read at all.
  auto other = f;
  other.stored_sha256 = std::string(64, '1');
  read_back(*t.target, "b", other, &problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("SHA-256 of the index"), std::string::npos);
}

TEST(ChunksTest, ListingIgnoresForeignFilesAndFindsTemporaries) {
  TempTarget t;
  std::string id(64, 'a');
  fs::create_directories(t.root + "/chunks/aa");
  fs::create_directories(t.root + "/chunks/zz");
  fs::create_directories(t.root + "/chunks/aa/sub");
  std::ofstream(t.root + "/chunks/aa/" + id) << "x";
  std::ofstream(t.root + "/chunks/aa/" + id + ".0123456789abcdef.tmp") << "x";
  std::ofstream(t.root + "/chunks/aa/notes.txt") << "x";
  std::ofstream(t.root + "/chunks/zz/" + id) << "x";                    // wrong prefix dir
  std::ofstream(t.root + "/chunks/aa/" + std::string(64, 'b')) << "x";  // wrong prefix
  auto l = ceso::list_chunks(*t.target);
  EXPECT_EQ(l.ids, std::vector<std::string>{id});
  ASSERT_EQ(l.temporary.size(), 1u);
  EXPECT_EQ(l.temporary[0], "chunks/aa/" + id + ".0123456789abcdef.tmp");
}

// A file target seen as S3 sees it: a flat listing of every key under a
// prefix, an atomic create; file_size calls are counted.
class FlatTarget : public ceso::BackupTarget {
 public:
  FlatTarget(ceso::BackupTarget& t, std::string root) : t_(t), root_(std::move(root)) {}
  int sizes = 0;
  const std::string& url() const override { return t_.url(); }
  void make_dir(const std::string& d) override { t_.make_dir(d); }
  void make_dir_exclusive(const std::string& d) override { t_.make_dir_exclusive(d); }
  std::vector<ceso::TargetEntry> list(const std::string& d) override { return t_.list(d); }
  std::optional<uint64_t> file_size(const std::string& p) override {
    ++sizes;
    return t_.file_size(p);
  }
  std::unique_ptr<ceso::TargetWriter> create(const std::string& p) override { return t_.create(p); }
  std::unique_ptr<ceso::TargetReader> open(const std::string& p) override { return t_.open(p); }
  void rename(const std::string& a, const std::string& b) override { t_.rename(a, b); }
  void sync_dir(const std::string& d) override { t_.sync_dir(d); }
  void remove_tree(const std::string& d) override { t_.remove_tree(d); }
  bool list_flat(const std::string& dir,
                 const std::function<void(const std::string&)>& each) override {
    if (!fs::exists(root_ + "/" + dir)) return true;
    for (auto& e : fs::recursive_directory_iterator(root_ + "/" + dir))
      if (e.is_regular_file()) each(fs::relative(e.path(), root_ + "/" + dir).string());
    return true;
  }
  size_t listing_page() const override { return 1000; }
  bool atomic_create() const override { return true; }

 private:
  ceso::BackupTarget& t_;
  std::string root_;
};

TEST(ChunksTest, FlatListingAtomicCreateAndOneListingPerRun) {
  TempTarget t;
  FlatTarget flat(*t.target, t.root);
  std::string id(64, 'a');
  fs::create_directories(t.root + "/chunks/aa/sub");
  fs::create_directories(t.root + "/chunks/zz");
  std::ofstream(t.root + "/chunks/aa/" + id) << "x";
  std::ofstream(t.root + "/chunks/aa/" + id + ".0123456789abcdef.tmp") << "x";
  std::ofstream(t.root + "/chunks/aa/sub/" + id) << "x";  // too deep: foreign
  std::ofstream(t.root + "/chunks/aa/notes.txt") << "x";
  std::ofstream(t.root + "/chunks/zz/" + id) << "x";
  std::ofstream(t.root + "/chunks/" + id) << "x";  // not in a chunks/xx
  auto l = ceso::list_chunks(flat);
  EXPECT_EQ(l.ids, std::vector<std::string>{id});
  ASSERT_EQ(l.temporary.size(), 1u);
  EXPECT_EQ(l.temporary[0], "chunks/aa/" + id + ".0123456789abcdef.tmp");
  fs::remove_all(t.root + "/chunks");

  // Uploads go to their final names: no temporary file, no rename.
  const std::string cache = t.root + "-cache.db";
  std::string data = pattern(3 * C, 7);
  {
    ceso::ChunkStore store(flat, 1, cache);
    t.target->make_dir("b1");
    write_chunked(store, "b1/disk.idx", data);
  }
  auto after = ceso::list_chunks(*t.target);
  EXPECT_EQ(after.ids.size(), 3u);
  EXPECT_TRUE(after.temporary.empty());
  // A chunk lost behind ceso's back; the cache still lists it. A run that
  // plans more lookups than a listing costs lists the target once: the
  // lost chunk is absent, the others present, without a file_size each.
  fs::remove(t.root + "/" + ceso::chunk_path(after.ids[0]));
  ceso::ChunkStore store(flat, 1, cache);
  flat.sizes = 0;
  store.plan_lookups(3);
  EXPECT_FALSE(store.present(after.ids[0]));
  EXPECT_TRUE(store.present(after.ids[1]));
  EXPECT_TRUE(store.present(after.ids[2]));
  EXPECT_EQ(flat.sizes, 0);
  fs::remove(cache);
  fs::remove(cache + "-wal");
  fs::remove(cache + "-shm");
}

TEST(ChunksTest, SweepLockIsExclusive) {
  TempTarget t;
  EXPECT_FALSE(ceso::sweep_lock_owner(*t.target));
  EXPECT_TRUE(ceso::take_sweep_lock(*t.target, "{\"a\":1}"));
  EXPECT_FALSE(ceso::take_sweep_lock(*t.target, "{}"));
  EXPECT_EQ(ceso::sweep_lock_owner(*t.target).value_or(""), "{\"a\":1}");
  ceso::release_sweep_lock(*t.target);
  EXPECT_FALSE(ceso::sweep_lock_owner(*t.target));
}

}  // namespace

// CBT: chunks taken from a previous index without their bytes, the file's
// whole SHA-256 then unknown and chunks_sha256 the check.
TEST(ChunksTest, KnownChunksAndTheChunksDigest) {
  TempTarget t;
  t.target->make_dir("b1");
  t.target->make_dir("b2");
  ceso::ChunkStore store(*t.target, 3, t.root + "-cache.db");
  std::string data = pattern(C, 1) + std::string(C, '\0') + pattern(1000, 2);
  auto f = write_chunked(store, "b1/d.idx", data);
  EXPECT_EQ(f.sha256, ceso::sha256_hex(data.data(), data.size()));
  // The digest: one line per chunk, its SHA-256, zero chunks included.
  std::string lines = ceso::sha256_hex(data.data(), C) + "\n" + ceso::zero_sha256(C) + "\n" +
                      ceso::sha256_hex(data.data() + 2 * C, 1000) + "\n";
  EXPECT_EQ(f.chunks_sha256, ceso::sha256_hex(lines.data(), lines.size()));
  auto idx = ceso::read_index(*t.target, "b1", f);
  ceso::ManifestFile g;
  g.name = "d.idx";
  g.kind = "extent";
  {
    ceso::ChunkedFileWriter w(store, "b2/d.idx");
    EXPECT_TRUE(w.add_known(idx.chunks[0], C));
    EXPECT_TRUE(w.add_known("", C));
    w.write(data.data() + 2 * C, 1000);
    w.finish(g);
    EXPECT_EQ(w.stats().reused, 2u);  // chunk 0 known, the tail found present
    EXPECT_EQ(w.stats().zero, 1u);
  }
  EXPECT_TRUE(g.sha256.empty());
  EXPECT_EQ(g.size, data.size());
  EXPECT_EQ(g.chunks_sha256, f.chunks_sha256);
  EXPECT_EQ(g.stored_sha256, f.stored_sha256);  // the same index
  std::vector<std::string> problems;
  EXPECT_EQ(read_back(*t.target, "b2", g, &problems), data);
  EXPECT_TRUE(problems.empty()) << problems.front();
  auto h = g;
  h.chunks_sha256 = std::string(64, '0');
  read_back(*t.target, "b2", h, &problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("chunks' digest differs"), std::string::npos) << problems[0];
  // A chunk the target does not hold is never taken: the caller reads it.
  {
    ceso::ChunkedFileWriter w(store, "b2/e.idx");
    EXPECT_FALSE(w.add_known(ceso::sha256_hex("absent", 6), C));
    EXPECT_THROW(w.add_known("not-an-id", C), ceso::Error);
  }
  // The manifest: no "sha256" key then, chunks_sha256 instead; neither is refused.
  ceso::Manifest m;
  m.format = 2;
  m.id = "b2";
  m.files.push_back(g);
  auto j = ceso::manifest_json(m);
  EXPECT_FALSE(j["files"][0].contains("sha256"));
  auto back = ceso::manifest_from_json(j.dump());
  EXPECT_EQ(back.files[0].chunks_sha256, g.chunks_sha256);
  EXPECT_TRUE(back.files[0].sha256.empty());
  j["files"][0].erase("chunks_sha256");
  EXPECT_THROW(ceso::manifest_from_json(j.dump()), ceso::Error);
  j["files"][0]["chunks_sha256"] = "ABC";
  EXPECT_THROW(ceso::manifest_from_json(j.dump()), ceso::Error);
}
