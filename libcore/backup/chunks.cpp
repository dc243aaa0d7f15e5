#include "backup/chunks.hpp"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sqlite3.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>

#include "backup/catalog.hpp"
#include "base/cancel.hpp"
#include "base/error.hpp"
#include "base/pipeline.hpp"
#include "base/util.hpp"
#include "config/config.hpp"

namespace ceso {

// ---- hashing ----

std::string sha256_hex(const void* data, size_t size) {
  Sha256 h;
  h.update(data, size);
  return h.hex();
}

// ---- ids and the index ----

bool is_chunk_id(std::string_view id) {
  if (id.size() != 64) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

const std::string& zero_sha256(size_t size) {
  static const std::string full = [] {
    std::vector<char> z(kChunkSize, '\0');
    return sha256_hex(z.data(), z.size());
  }();
  if (size == kChunkSize) return full;
  thread_local std::string other;
  std::vector<char> z(size, '\0');
  other = sha256_hex(z.data(), z.size());
  return other;
}

std::string chunk_path(const std::string& id) {
  if (!is_chunk_id(id)) bad_input("bad chunk id " + quote(id.substr(0, 80)));
  return std::string(kChunkDir) + "/" + id.substr(0, 2) + "/" + id;
}

std::string index_text(const ChunkIndex& index) {
  std::string s = std::string(kIndexMagic) + "\nchunk_size " + std::to_string(index.chunk_size) +
                  "\nsize " + std::to_string(index.size) + "\n";
  s.reserve(s.size() + index.chunks.size() * 65);
  for (const auto& c : index.chunks) s += (c.empty() ? "0" : c) + "\n";
  return s;
}

ChunkIndex parse_index(const std::string& text) {
  ChunkIndex idx;
  size_t pos = 0, line = 0;
  auto next = [&]() -> std::optional<std::string_view> {
    if (pos >= text.size()) return std::nullopt;
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos)
      bad_input("chunk index: line " + std::to_string(line + 1) + " does not end in a newline");
    std::string_view l(text.data() + pos, nl - pos);
    pos = nl + 1;
    ++line;
    return l;
  };
  auto number = [&](std::string_view l, std::string_view key) {
    std::string prefix = std::string(key) + " ";
    if (l.substr(0, prefix.size()) != prefix)
      bad_input("chunk index: line " + std::to_string(line) + " is not " + quote(prefix + "N"));
    std::string_view digits = l.substr(prefix.size());
    if (digits.empty() || digits.size() > 19 || (digits.size() > 1 && digits[0] == '0'))
      bad_input("chunk index: bad number on line " + std::to_string(line));
    uint64_t v = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') bad_input("chunk index: bad number on line " + std::to_string(line));
      v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    return v;
  };
  auto magic = next();
  if (!magic || *magic != kIndexMagic) bad_input("chunk index: not a ceso chunk index");
  auto l = next();
  if (!l) bad_input("chunk index: no chunk_size line");
  idx.chunk_size = number(*l, "chunk_size");
  if (idx.chunk_size != kChunkSize)
    bad_input("chunk index: chunk size " + std::to_string(idx.chunk_size) + " (this ceso reads " +
              std::to_string(kChunkSize) + ")");
  l = next();
  if (!l) bad_input("chunk index: no size line");
  idx.size = number(*l, "size");
  uint64_t count = idx.size / idx.chunk_size + (idx.size % idx.chunk_size ? 1 : 0);
  // Bounded by the text itself (65 bytes a line), so a huge size cannot
  // make us allocate.
  if (count > text.size() / 2 + 1)
    bad_input("chunk index: size " + std::to_string(idx.size) + " needs " + std::to_string(count) +
              " chunk lines, the index is too short");
  idx.chunks.reserve(count);
  while (auto c = next()) {
    if (idx.chunks.size() == count)
      bad_input("chunk index: more chunk lines than size " + std::to_string(idx.size) + " needs");
    if (*c == "0")
      idx.chunks.emplace_back();
    else if (is_chunk_id(*c))
      idx.chunks.emplace_back(*c);
    else
      bad_input("chunk index: line " + std::to_string(line) + " is neither a chunk id nor 0");
  }
  if (idx.chunks.size() != count)
    bad_input("chunk index: " + std::to_string(idx.chunks.size()) + " chunk lines, size " +
              std::to_string(idx.size) + " needs " + std::to_string(count));
  return idx;
}

ChunkIndex read_index(BackupTarget& target, const std::string& dir, const ManifestFile& file) {
  const std::string path = dir + "/" + file.name;
  auto size = target.file_size(path);
  if (!size) bad_input(file.name + ": missing");
  if (*size != file.stored_size)
    bad_input(file.name + ": " + std::to_string(*size) + " bytes stored, manifest says " +
              std::to_string(file.stored_size) + (*size < file.stored_size ? " (truncated)" : ""));
  std::string text = target.read_file(path);
  if (sha256_hex(text.data(), text.size()) != file.stored_sha256)
    bad_input(file.name + ": SHA-256 of the index differs from the manifest");
  ChunkIndex idx;
  try {
    idx = parse_index(text);
  } catch (const Error& e) {
    bad_input(file.name + ": " + e.what());
  }
  if (idx.size != file.size)
    bad_input(file.name + ": the index covers " + std::to_string(idx.size) +
              " bytes, the manifest says " + std::to_string(file.size));
  return idx;
}

void ChunkStats::add(const ChunkStats& o) {
  chunks += o.chunks;
  zero += o.zero;
  reused += o.reused;
  uploaded += o.uploaded;
  bytes_uploaded += o.bytes_uploaded;
}

// ---- the local cache of a target's chunks ----

namespace {

bool all_zero(const char* data, size_t size) {
  // Each byte equals the one before it and the first is zero: libc's
  // vectorised memcmp, which stops at the first difference (at once for
  // most chunks that are not zero).
  return size == 0 || (data[0] == 0 && std::memcmp(data, data + 1, size - 1) == 0);
}

std::string random_hex(size_t bytes) {
  unsigned char rnd[16] = {};
  if (RAND_bytes(rnd, static_cast<int>(bytes)) != 1) fail("cannot get random bytes");
  return hex_encode(rnd, bytes);
}

class ChunkCache {
 public:
  explicit ChunkCache(const std::string& path)
      // A cache: losing it costs a rebuild, never a wrong answer.
      : db_(open_private_database(path, "the chunk cache", "OFF")) {
    try {
      exec("CREATE TABLE IF NOT EXISTS chunk (id TEXT PRIMARY KEY) WITHOUT ROWID");
      exec("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID");
    } catch (...) {
      sqlite3_close(db_);  // no destructor runs for a constructor that throws
      throw;
    }
  }
  ~ChunkCache() { sqlite3_close(db_); }
  bool built() { return query_one("SELECT 1 FROM meta WHERE k='built'"); }
  bool contains(const std::string& id) { return query_one("SELECT 1 FROM chunk WHERE id=?", id); }
  uint64_t count() {
    std::lock_guard lock(mutex_);
    sqlite3_stmt* st = nullptr;
    uint64_t n = 0;
    if (sqlite3_prepare_v2(db_, "SELECT count(*) FROM chunk", -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
      n = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
    sqlite3_finalize(st);
    return n;
  }
  void add(const std::string& id) { run("INSERT OR IGNORE INTO chunk(id) VALUES(?)", id); }
  void remove(const std::string& id) { run("DELETE FROM chunk WHERE id=?", id); }
  void replace_all(const std::vector<std::string>& ids) {
    replace_from([&](const std::function<void(const std::string&)>& put) {
      for (const auto& id : ids) put(id);
    });
  }
  // One transaction: the ids `produce` hands over replace the table.
  void replace_from(
      const std::function<void(const std::function<void(const std::string&)>&)>& produce) {
    exec("BEGIN IMMEDIATE");
    try {
      exec("DELETE FROM chunk");
      produce([&](const std::string& id) { add(id); });
      exec("INSERT OR REPLACE INTO meta(k, v) VALUES('built', '1')");
      exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

 private:
  sqlite3* db_ = nullptr;
  std::mutex mutex_;
  void exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "?";
      sqlite3_free(err);
      fail("chunk cache: " + msg);
    }
  }
  bool step(const char* sql, const std::string* arg) {
    std::lock_guard lock(mutex_);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &st, nullptr) != SQLITE_OK)
      fail(std::string("chunk cache: ") + sqlite3_errmsg(db_));
    if (arg) sqlite3_bind_text(st, 1, arg->data(), static_cast<int>(arg->size()), SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
      fail(std::string("chunk cache: ") + sqlite3_errmsg(db_));
    return rc == SQLITE_ROW;
  }
  bool query_one(const char* sql) { return step(sql, nullptr); }
  bool query_one(const char* sql, const std::string& arg) { return step(sql, &arg); }
  void run(const char* sql, const std::string& arg) { step(sql, &arg); }
};

}  // namespace

// ---- the store ----

struct ChunkStore::Impl {
  int level = 3;
  std::unique_ptr<ChunkCache> cache;
  bool listed = false;  // the cache was filled from a listing taken by this store
  // plan_lookups chose that listing (plus what this store uploaded since)
  // to answer present() alone.
  bool trust_listing = false;
  std::mutex dirs_mutex;
  std::unordered_set<std::string> dirs;     // chunks/xx made by this store
  std::unordered_set<std::string> renamed;  // chunks/xx with renames not yet synced
};

namespace {

// Each upload thread compresses with its own context and buffer.
struct Compressor {
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx{ZSTD_createCCtx(), ZSTD_freeCCtx};
  std::vector<char> out;
};
thread_local Compressor t_compressor;

}  // namespace

ChunkStore::ChunkStore(BackupTarget& target, int level, const std::string& cache_path)
    : impl_(std::make_unique<Impl>()), target_(target) {
  impl_->level = level;
  if (!cache_path.empty()) {
    impl_->cache = std::make_unique<ChunkCache>(cache_path);
    // A new (or never completed) cache is filled from the target first, so
    // a lost cache costs one listing, not a re-upload of everything.
    if (!impl_->cache->built()) rebuild_cache();
  }
}

ChunkStore::~ChunkStore() = default;

std::string ChunkStore::cache_path_for(const std::string& url) {
  return cache_dir() + "/chunks/" + sha256_hex(url.data(), url.size()).substr(0, 32) + ".db";
}

void ChunkStore::sync() {
  std::unordered_set<std::string> dirs;
  {
    std::lock_guard lock(impl_->dirs_mutex);
    dirs.swap(impl_->renamed);
  }
  for (const auto& d : dirs) target_.sync_dir(d);
}

size_t ChunkStore::rebuild_cache() {
  if (impl_->cache && target_.listing_page()) {
    // Page by page into the cache: a store of a million chunks never sits
    // in memory.
    size_t n = 0;
    impl_->cache->replace_from([&](const std::function<void(const std::string&)>& put) {
      each_chunk(
          target_,
          [&](const std::string& id) {
            put(id);
            ++n;
          },
          [](const std::string&) {});
    });
    impl_->listed = true;
    return n;
  }
  auto listing = list_chunks(target_);
  if (impl_->cache) {
    impl_->cache->replace_all(listing.ids);
    impl_->listed = true;
  }
  return listing.ids.size();
}

void ChunkStore::plan_lookups(uint64_t lookups) {
  if (!impl_->cache || target_.listing_page() == 0) return;
  uint64_t pages = impl_->cache->count() / target_.listing_page() + 1;
  if (pages >= lookups) return;
  if (!impl_->listed) rebuild_cache();
  impl_->trust_listing = true;
}

bool ChunkStore::present(const std::string& id) {
  if (impl_->cache && !impl_->cache->contains(id)) return false;
  if (impl_->trust_listing) return true;  // in this run's listing of the target, or uploaded by it
  // The cache is never the last word: the target is asked.
  auto size = target_.file_size(chunk_path(id));
  bool there = size && *size > 0;
  if (impl_->cache) {
    if (there)
      impl_->cache->add(id);
    else
      impl_->cache->remove(id);
  }
  return there;
}

uint64_t ChunkStore::upload(const std::string& id, const char* data, size_t size) {
  const std::string final_path = chunk_path(id);
  const std::string dir = final_path.substr(0, final_path.rfind('/'));
  {
    std::lock_guard lock(impl_->dirs_mutex);
    if (!impl_->dirs.count(dir)) {
      target_.make_dir(dir);
      impl_->dirs.insert(dir);
    }
  }
  Compressor& z = t_compressor;
  if (!z.cctx) fail("zstd: out of memory");
  ZSTD_CCtx_reset(z.cctx.get(), ZSTD_reset_session_and_parameters);
  ZSTD_CCtx_setParameter(z.cctx.get(), ZSTD_c_compressionLevel, impl_->level);
  ZSTD_CCtx_setParameter(z.cctx.get(), ZSTD_c_checksumFlag, 1);
  z.out.resize(ZSTD_compressBound(size));
  size_t n = ZSTD_compress2(z.cctx.get(), z.out.data(), z.out.size(), data, size);
  if (ZSTD_isError(n)) fail(std::string("zstd: ") + ZSTD_getErrorName(n));
  // Whole or not at all under its final name: a killed upload leaves only
  // a temporary file (the sweep removes it), or nothing where the target's
  // create() is atomic (S3: one PUT instead of PUT, copy and DELETE).
  if (target_.atomic_create()) {
    auto w = target_.create(final_path);
    w->write(z.out.data(), n);
    w->commit();
    if (impl_->cache) impl_->cache->add(id);
    return n;
  }
  const std::string tmp = final_path + "." + random_hex(8) + ".tmp";
  auto w = target_.create(tmp);
  w->write(z.out.data(), n);
  w->commit();
  target_.rename(tmp, final_path);
  {
    std::lock_guard lock(impl_->dirs_mutex);
    impl_->renamed.insert(dir);
  }
  if (impl_->cache) impl_->cache->add(id);
  return n;
}

// ---- writing a file as chunks ----

// The receiving thread (write()) only copies into chunk buffers. A full
// chunk goes to two places at once, which only read it: the file hasher (one
// thread, in order: SHA-256 of the whole file) and a pool of workers (any
// order: zero check, SHA-256 of the chunk, presence, compression, upload;
// presence checks and uploads of several chunks overlap). A buffer is free
// again when both are done with it. There are workers + 2 buffers, so memory
// is bounded whatever the disk size.
struct ChunkedFileWriter::Impl {
  struct Buffer {
    std::vector<char> data = std::vector<char>(kChunkSize);
    size_t size = 0;
  };
  using Shared = std::shared_ptr<Buffer>;
  struct Job {
    size_t seq = 0;  // the chunk's place in the index
    Shared chunk;
  };
  ChunkStore* store = nullptr;
  std::string index_path;
  Sha256 raw_hash;  // the hasher's until it is joined
  uint64_t raw = 0;
  std::optional<Buffer> cur;
  HandOver<Buffer> free;
  HandOver<Shared> to_hash;
  HandOver<Job> jobs;
  std::thread hasher;
  std::vector<std::thread> workers;

  std::mutex m;  // guards what follows
  std::condition_variable idle;
  ChunkIndex index;
  ChunkStats stats;
  std::unordered_set<std::string> queued;  // chunks of this file taken by a worker
  size_t in_flight = 0;                    // jobs not finished
  bool whole_known = true;                 // false once add_known() skipped bytes
  std::exception_ptr error;

  void process(const Job& job) {
    const char* data = job.chunk->data.data();
    size_t n = job.chunk->size;
    if (all_zero(data, n)) {
      std::lock_guard lock(m);
      ++stats.zero;  // the index entry stays ""
      return;
    }
    std::string id = sha256_hex(data, n);
    {
      std::lock_guard lock(m);
      index.chunks[job.seq] = id;
      if (!queued.insert(id).second) {  // uploaded, or being uploaded, for this file
        ++stats.reused;
        return;
      }
    }
    if (store->present(id)) {
      std::lock_guard lock(m);
      ++stats.reused;
      return;
    }
    uint64_t stored = store->upload(id, data, n);
    std::lock_guard lock(m);
    ++stats.uploaded;
    stats.bytes_uploaded += stored;
  }
  void work() {
    while (auto job = jobs.pop()) {
      bool skip;
      {
        std::lock_guard lock(m);
        skip = error != nullptr;  // only give the buffer back
      }
      std::exception_ptr err;
      if (!skip) {
        try {
          process(*job);
        } catch (...) {
          err = std::current_exception();
        }
      }
      job->chunk.reset();
      {
        std::lock_guard lock(m);
        if (err && !error) error = err;
        --in_flight;
      }
      idle.notify_all();
    }
  }
  void rethrow() {
    std::lock_guard lock(m);
    if (error) std::rethrow_exception(error);
  }
  // Hands the current buffer to the hasher and the workers, then takes a
  // free one (waiting while every buffer is in use).
  void chunk_done() {
    if (!cur || cur->size == 0) return;
    Shared b(new Buffer(std::move(*cur)), [this](Buffer* p) {
      free.push(std::move(*p));
      delete p;
    });
    cur.reset();
    size_t seq;
    {
      std::lock_guard lock(m);
      seq = index.chunks.size();
      index.chunks.emplace_back();
      ++stats.chunks;
      ++in_flight;
    }
    to_hash.push(b);
    jobs.push({seq, std::move(b)});
    rethrow();
  }
  // chunks_sha256: one line per chunk, its SHA-256 (an all-zero chunk's
  // too), in index order; taken once every chunk's id is known.
  std::string chunks_digest() const {
    Sha256 digest;
    for (size_t i = 0; i < index.chunks.size(); ++i) {
      const std::string& id = index.chunks[i];
      const std::string& line = id.empty() ? zero_sha256(static_cast<size_t>(std::min<uint64_t>(
                                                 kChunkSize, raw - uint64_t(i) * kChunkSize)))
                                           : id;
      digest.update(line.data(), line.size());
      digest.update("\n", 1);
    }
    return digest.hex();
  }
  void drain() {
    std::unique_lock lock(m);
    idle.wait(lock, [&] { return in_flight == 0 || error; });
    if (error) std::rethrow_exception(error);
  }
  void stop() {
    {
      std::lock_guard lock(m);
      if (!error) error = std::make_exception_ptr(Error("stopped"));  // drop what is queued
    }
    jobs.close();
    to_hash.close();
    free.close();
    for (auto& w : workers)
      if (w.joinable()) w.join();
    if (hasher.joinable()) hasher.join();
  }
};

ChunkedFileWriter::ChunkedFileWriter(ChunkStore& store, std::string index_path)
    : impl_(std::make_unique<Impl>()) {
  Impl& im = *impl_;
  im.store = &store;
  im.index_path = std::move(index_path);
  // At least two workers: one computes while another waits for the target
  // (a commit is an fsync); at most three (each holds a chunk, a compression
  // buffer and a zstd context, about 10 MiB: peak RSS stays under 64 MiB).
  int n = pipeline_workers(2, 3);
  for (int i = 0; i < n + 2; ++i) im.free.push(Impl::Buffer{});
  im.hasher = std::thread([&im] {
    while (auto b = im.to_hash.pop()) im.raw_hash.update((*b)->data.data(), (*b)->size);
  });
  for (int i = 0; i < n; ++i) im.workers.emplace_back([&im] { im.work(); });
}

ChunkedFileWriter::~ChunkedFileWriter() { impl_->stop(); }

void ChunkedFileWriter::write(const char* data, size_t size) {
  Impl& im = *impl_;
  im.raw += size;
  while (size) {
    if (!im.cur) {
      im.cur = im.free.pop();
      if (!im.cur) fail("chunked writer: stopped");
      im.cur->size = 0;
    }
    size_t n = std::min(size, kChunkSize - im.cur->size);
    std::memcpy(im.cur->data.data() + im.cur->size, data, n);
    im.cur->size += n;
    data += n;
    size -= n;
    if (im.cur->size == kChunkSize) im.chunk_done();
  }
}

bool ChunkedFileWriter::add_known(const std::string& id, uint64_t size) {
  Impl& im = *impl_;
  if (im.cur && im.cur->size) fail("ChunkedFileWriter::add_known() in the middle of a chunk");
  if (size == 0 || size > kChunkSize) fail("ChunkedFileWriter::add_known(): bad chunk size");
  if (im.raw % kChunkSize) fail("ChunkedFileWriter::add_known() after a short chunk");
  if (!id.empty()) {
    chunk_path(id);  // a malformed id is refused
    bool queued;
    {
      std::lock_guard lock(im.m);
      queued = im.queued.count(id) != 0;  // uploaded or being uploaded for this file
    }
    if (!queued && !im.store->present(id)) return false;
  }
  std::lock_guard lock(im.m);
  im.whole_known = false;
  im.raw += size;
  ++im.stats.chunks;
  ++(id.empty() ? im.stats.zero : im.stats.reused);
  im.index.chunks.push_back(id);
  return true;
}

void ChunkedFileWriter::finish(ManifestFile& file) {
  Impl& im = *impl_;
  im.chunk_done();
  im.drain();
  im.to_hash.close();  // every chunk is handed over: the hasher ends when it has hashed them
  im.hasher.join();
  im.store->sync();  // the renames of the new chunks are durable
  // Every chunk the index names is at the target now: publish the index.
  im.index.size = im.raw;
  std::string text = index_text(im.index);
  im.store->target().write_file(im.index_path, text);
  file.size = im.raw;
  file.sha256 = im.whole_known ? im.raw_hash.hex() : "";
  file.chunks_sha256 = im.chunks_digest();
  file.stored_size = text.size();
  file.stored_sha256 = sha256_hex(text.data(), text.size());
  file.compression = "chunks";
}

const ChunkStats& ChunkedFileWriter::stats() const { return impl_->stats; }

// ---- reading a file back from chunks ----

std::optional<std::string> check_chunk(BackupTarget& target, const std::string& id, bool read,
                                       uint64_t expect_size) {
  const std::string path = chunk_path(id);
  auto size = target.file_size(path);
  if (!size || *size == 0) return "chunk " + id + " missing";
  if (!read) return std::nullopt;
  const size_t bound = ZSTD_compressBound(kChunkSize) + 4096;
  if (*size > bound) return "chunk " + id + " is larger than any stored chunk can be";
  std::string stored(*size, '\0');
  auto r = target.open(path);
  size_t got = 0;
  while (got < stored.size()) {
    size_t n = r->read(stored.data() + got, stored.size() - got);
    if (n == 0) break;
    got += n;
  }
  if (got != stored.size()) return "chunk " + id + " is shorter than its listed size";
  std::vector<char> raw(kChunkSize);
  size_t n = ZSTD_decompress(raw.data(), raw.size(), stored.data(), stored.size());
  if (ZSTD_isError(n)) return "chunk " + id + ": corrupt zstd data (" + ZSTD_getErrorName(n) + ")";
  if (expect_size && n != expect_size)
    return "chunk " + id + " holds " + std::to_string(n) + " bytes, " +
           std::to_string(expect_size) + " expected";
  if (sha256_hex(raw.data(), n) != id) return "chunk " + id + ": SHA-256 differs from its id";
  return std::nullopt;
}

struct ChunkedFileReader::Impl {
  BackupTarget* target = nullptr;
  const ManifestFile* file = nullptr;
  ChunkIndex index;
  size_t next = 0;  // chunk to fetch
  std::vector<char> raw;
  size_t pos = 0, len = 0;
  std::string stored;
  Sha256 whole;
  Sha256 digest;  // chunks_sha256, from the ids of the chunks as they check out
  uint64_t out = 0;
  bool at_end = false, failed = false, checked = false;
  std::vector<std::string> problems;
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx{ZSTD_createDCtx(), ZSTD_freeDCtx};

  void problem(const std::string& p) {
    problems.push_back(file->name + ": " + p);
    failed = at_end = true;
  }
  // Fills `raw` with chunk `next`; false at the end or on a problem.
  bool fetch() {
    if (next >= index.chunks.size()) {
      at_end = true;
      return false;
    }
    throw_if_interrupt_requested();
    uint64_t off = next * index.chunk_size;
    size_t expect = static_cast<size_t>(std::min<uint64_t>(index.chunk_size, index.size - off));
    const std::string& id = index.chunks[next];
    ++next;
    pos = 0;
    len = expect;
    if (id.empty()) {
      std::fill_n(raw.begin(), expect, '\0');
      const std::string& z = zero_sha256(expect);
      digest.update(z.data(), z.size());
      digest.update("\n", 1);
      return true;
    }
    const std::string where = " (offset " + std::to_string(off) + ")";
    const std::string path = chunk_path(id);
    // Opened and read to its end without asking its size first (on S3 that
    // is a HEAD less per chunk); only a failed open asks whether it exists.
    std::unique_ptr<TargetReader> r;
    try {
      r = target->open(path);
    } catch (const Error&) {
      auto size = target->file_size(path);
      if (!size || *size == 0) {
        problem("chunk " + id + where + " missing");
        return false;
      }
      throw;
    }
    const size_t bound = ZSTD_compressBound(kChunkSize) + 4096;
    stored.resize(bound + 1);
    size_t got = 0;
    while (got < stored.size()) {
      size_t n = r->read(stored.data() + got, stored.size() - got);
      if (n == 0) break;
      got += n;
    }
    if (got == 0) {
      problem("chunk " + id + where + " missing");
      return false;
    }
    if (got > bound) {
      problem("chunk " + id + where + " is larger than any stored chunk can be");
      return false;
    }
    size_t n = ZSTD_decompressDCtx(dctx.get(), raw.data(), raw.size(), stored.data(), got);
    if (ZSTD_isError(n)) {
      problem("chunk " + id + where + ": corrupt zstd data (" + ZSTD_getErrorName(n) + ")");
      return false;
    }
    if (n != expect) {
      problem("chunk " + id + where + " holds " + std::to_string(n) + " bytes, " +
              std::to_string(expect) + " expected");
      return false;
    }
    if (sha256_hex(raw.data(), n) != id) {
      problem("chunk " + id + where + ": SHA-256 of the data differs from its id");
      return false;
    }
    digest.update(id.data(), id.size());
    digest.update("\n", 1);
    return true;
  }
};

ChunkedFileReader::ChunkedFileReader(BackupTarget& target, const std::string& dir,
                                     const ManifestFile& file)
    : impl_(std::make_unique<Impl>()) {
  Impl& im = *impl_;
  im.target = &target;
  im.file = &file;
  try {
    im.index = read_index(target, dir, file);
  } catch (const Error& e) {
    if (e.code() != Exit::bad_input) throw;
    im.problems.push_back(e.what());
    im.failed = im.at_end = true;
    return;
  }
  im.raw.resize(kChunkSize);
}

ChunkedFileReader::~ChunkedFileReader() = default;

size_t ChunkedFileReader::read(char* data, size_t size) {
  Impl& im = *impl_;
  if (im.pos == im.len && (im.at_end || !im.fetch())) return 0;
  size_t n = std::min(size, im.len - im.pos);
  std::memcpy(data, im.raw.data() + im.pos, n);
  im.pos += n;
  im.whole.update(data, n);
  im.out += n;
  return n;
}

std::vector<std::string> ChunkedFileReader::problems() {
  Impl& im = *impl_;
  if (!im.at_end) fail("ChunkedFileReader::problems() before the end of " + im.file->name);
  if (im.checked || im.failed) return im.problems;
  im.checked = true;
  if (im.out != im.file->size)
    im.problems.push_back(im.file->name + ": " + std::to_string(im.out) + " bytes, manifest says " +
                          std::to_string(im.file->size));
  else if (!im.file->sha256.empty() && im.whole.hex() != im.file->sha256)
    im.problems.push_back(im.file->name + ": SHA-256 of the data differs from the manifest");
  else if (!im.file->chunks_sha256.empty() && im.digest.hex() != im.file->chunks_sha256)
    im.problems.push_back(im.file->name + ": the chunks' digest differs from the manifest");
  else if (im.file->sha256.empty() && im.file->chunks_sha256.empty())
    im.problems.push_back(im.file->name + ": the manifest has no hash of the data");
  return im.problems;
}

// ---- listings and the sweep lock ----

namespace {

bool is_hex2(const std::string& s) {
  return s.size() == 2 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// "ID.<16 hex>.tmp": ours, left by a killed upload.
bool is_temporary_chunk(const std::string& name, const std::string& prefix) {
  if (name.size() != 64 + 1 + 16 + 4 || name.compare(0, 2, prefix) != 0) return false;
  if (!is_chunk_id(std::string_view(name).substr(0, 64)) || name[64] != '.') return false;
  for (size_t i = 65; i < 81; ++i)
    if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f'))) return false;
  return name.compare(81, 4, ".tmp") == 0;
}

}  // namespace

bool each_chunk(BackupTarget& target, const std::function<void(const std::string&)>& id,
                const std::function<void(const std::string&)>& temporary) {
  // "xx/ID" and "xx/ID.RANDOM.tmp"; anything else is foreign, never touched.
  return target.list_flat(kChunkDir, [&](const std::string& f) {
    size_t slash = f.find('/');
    if (slash != 2 || f.find('/', slash + 1) != std::string::npos) return;
    const std::string d = f.substr(0, 2), name = f.substr(3);
    if (!is_hex2(d)) return;
    if (is_chunk_id(name) && name.compare(0, 2, d) == 0)
      id(name);
    else if (is_temporary_chunk(name, d))
      temporary(std::string(kChunkDir) + "/" + f);
  });
}

ChunkListing list_chunks(BackupTarget& target) {
  ChunkListing out;
  if (each_chunk(
          target, [&](const std::string& id) { out.ids.push_back(id); },
          [&](const std::string& t) { out.temporary.push_back(t); })) {
    std::sort(out.ids.begin(), out.ids.end());
    return out;
  }
  for (const auto& d : target.list(kChunkDir)) {
    if (!d.dir || !is_hex2(d.name)) continue;  // foreign: never touched
    const std::string dir = std::string(kChunkDir) + "/" + d.name;
    for (const auto& f : target.list(dir)) {
      if (f.dir) continue;
      if (is_chunk_id(f.name) && f.name.compare(0, 2, d.name) == 0)
        out.ids.push_back(f.name);
      else if (is_temporary_chunk(f.name, d.name))
        out.temporary.push_back(dir + "/" + f.name);
    }
  }
  std::sort(out.ids.begin(), out.ids.end());
  return out;
}

bool take_sweep_lock(BackupTarget& target, const std::string& owner_json) {
  try {
    target.make_dir_exclusive(kGcLock);
  } catch (const Error& e) {
    if (target.file_size(kGcLock)) return false;
    throw;
  }
  target.write_file(std::string(kGcLock) + "/owner.json", owner_json);
  return true;
}

void release_sweep_lock(BackupTarget& target) { target.remove_tree(kGcLock); }

std::optional<std::string> sweep_lock_owner(BackupTarget& target) {
  if (!target.file_size(kGcLock)) return std::nullopt;
  try {
    return target.read_file(std::string(kGcLock) + "/owner.json");
  } catch (const Error&) {
    return std::string();
  }
}

}  // namespace ceso
