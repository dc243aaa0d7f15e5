#include "backup/backup.hpp"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/file.h>
#include <unistd.h>
#define ZSTD_STATIC_LINKING_ONLY  // ZSTD_d_forceIgnoreChecksum (experimental API, zstd ≥ 1.4.7)
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <deque>
#include <exception>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <thread>

#include "backup/chunks.hpp"
#include "backup/restore.hpp"
#include "base/cancel.hpp"
#include "base/error.hpp"
#include "base/file.hpp"
#include "base/log.hpp"
#include "base/pipeline.hpp"
#include "base/time.hpp"
#include "base/util.hpp"
#include "config/config.hpp"
#include "transport/datastore.hpp"
#include "vm/cbt.hpp"
#include "vm/lifecycle.hpp"
#include "vm/snapshot.hpp"
#include "vm/writer.hpp"

namespace ceso {

// ---- hashing and the stored stream ----

namespace {

constexpr size_t kBufferSize = 1 << 20;
// Blocks in flight between the threads of a stored stream (each kBufferSize).
constexpr size_t kBlocks = 4;

int default_threads() {
  // Half the CPUs: receiving, hashing and feeding zstd need the others; more
  // workers buy little at levels 1-3 and each holds job buffers (RSS). On a
  // 2-CPU host one worker was as fast as two (bench/backup).
  unsigned n = std::thread::hardware_concurrency() / 2;
  return static_cast<int>(std::clamp(n, 1u, 4u));
}

// The hash a manifest entry names for its stored stream: XXH3-128 when it
// has `stored_xxh128` (manifests since it replaced SHA-256), else SHA-256.
class StoredHash {
 public:
  explicit StoredHash(bool xxh) {
    if (xxh)
      xxh_.emplace();
    else
      sha_.emplace();
  }
  void update(const void* data, size_t size) {
    if (xxh_)
      xxh_->update(data, size);
    else
      sha_->update(data, size);
  }
  std::string hex() { return xxh_ ? xxh_->hex() : sha_->hex(); }

 private:
  std::optional<Xxh128> xxh_;
  std::optional<Sha256> sha_;
};

struct Block {
  std::vector<char> data = std::vector<char>(kBufferSize);
  size_t size = 0;
};

using BlockQueue = HandOver<Block>;

}  // namespace

// The caller's thread (curl's write callback) only copies into blocks of
// 1 MiB. A full block goes to two threads at once, which only read it: one
// hashes the raw bytes (SHA-256), the other feeds zstd (whose workers
// compress), hashes its output (XXH3-128) and writes it to the target. The
// block is free again when both are done with it: at most kBlocks are in
// flight. (With receiving, hashing and compressing on the caller's thread,
// that thread was the bottleneck: runnable all the time on a busy host.)
struct StoredFileWriter::Impl {
  using Shared = std::shared_ptr<Block>;
  std::unique_ptr<TargetWriter> out;
  ZSTD_CCtx* cctx = nullptr;
  Sha256 raw_hash;
  Xxh128 stored_hash;
  uint64_t raw = 0, stored = 0;
  std::vector<char> buf = std::vector<char>(kBufferSize);
  BlockQueue free;
  HandOver<Shared> to_hash, to_compress;
  Block cur;
  std::thread hasher, compressor;
  std::atomic<bool> failed{false};
  std::exception_ptr error;  // the compressor's, set before `failed`

  void drain(ZSTD_inBuffer& in, ZSTD_EndDirective mode) {
    for (;;) {
      ZSTD_outBuffer ob{buf.data(), buf.size(), 0};
      size_t left = ZSTD_compressStream2(cctx, &ob, &in, mode);
      if (ZSTD_isError(left)) fail(std::string("zstd: ") + ZSTD_getErrorName(left));
      if (ob.pos) {
        stored_hash.update(buf.data(), ob.pos);
        out->write(buf.data(), ob.pos);
        stored += ob.pos;
      }
      bool done = mode == ZSTD_e_end ? left == 0 : in.pos == in.size;
      if (done) return;
    }
  }
  void compress_blocks() {
    while (auto b = to_compress.pop()) {
      if (failed) continue;  // only give the blocks back
      try {
        ZSTD_inBuffer in{(*b)->data.data(), (*b)->size, 0};
        drain(in, ZSTD_e_continue);
      } catch (...) {
        error = std::current_exception();
        failed = true;
      }
    }
  }
  void rethrow_failure() {
    if (failed) std::rethrow_exception(error);
  }
  // Hands the current block to both threads, then takes a free one.
  void flush_block() {
    if (cur.size == 0) return;
    // The last of the two threads to drop it puts it back on the free list.
    Shared b(new Block(std::move(cur)), [this](Block* p) {
      free.push(std::move(*p));
      delete p;
    });
    to_hash.push(b);
    to_compress.push(std::move(b));
    rethrow_failure();
    auto next = free.pop();
    if (!next) fail("stored stream: no free block");
    cur = std::move(*next);
    cur.size = 0;
  }
  void stop_threads() {
    to_hash.close();
    to_compress.close();
    if (hasher.joinable()) hasher.join();
    if (compressor.joinable()) compressor.join();
  }
};

StoredFileWriter::StoredFileWriter(std::unique_ptr<TargetWriter> out, int level, int threads)
    : impl_(std::make_unique<Impl>()) {
  Impl& im = *impl_;
  im.out = std::move(out);
  im.cctx = ZSTD_createCCtx();
  if (!im.cctx) fail("zstd: out of memory");
  ZSTD_CCtx_setParameter(im.cctx, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(im.cctx, ZSTD_c_checksumFlag, 1);
  int workers = threads > 0 ? threads : default_threads();
  // Even one worker helps: compression then overlaps with receiving and hashing.
  ZSTD_CCtx_setParameter(im.cctx, ZSTD_c_nbWorkers, workers);
  ZSTD_CCtx_setParameter(im.cctx, ZSTD_c_jobSize, 2 << 20);
  for (size_t i = 1; i < kBlocks; ++i) im.free.push(Block{});
  im.hasher = std::thread([&im] {
    while (auto b = im.to_hash.pop()) im.raw_hash.update((*b)->data.data(), (*b)->size);
  });
  im.compressor = std::thread([&im] { im.compress_blocks(); });
}

StoredFileWriter::~StoredFileWriter() {
  impl_->stop_threads();
  ZSTD_freeCCtx(impl_->cctx);
}

void StoredFileWriter::write(const char* data, size_t size) {
  Impl& im = *impl_;
  im.raw += size;
  while (size) {
    size_t n = std::min(size, im.cur.data.size() - im.cur.size);
    std::memcpy(im.cur.data.data() + im.cur.size, data, n);
    im.cur.size += n;
    data += n;
    size -= n;
    if (im.cur.size == im.cur.data.size()) im.flush_block();
  }
}

void StoredFileWriter::finish(ManifestFile& file) {
  Impl& im = *impl_;
  im.flush_block();
  im.stop_threads();  // every block is hashed and compressed when they return
  im.rethrow_failure();
  ZSTD_inBuffer in{nullptr, 0, 0};
  im.drain(in, ZSTD_e_end);
  im.out->commit();
  file.size = im.raw;
  file.stored_size = im.stored;
  file.sha256 = im.raw_hash.hex();
  file.stored_sha256.clear();
  file.stored_xxh128 = im.stored_hash.hex();
  file.compression = "zstd";
}

// A zstd file is read by a thread of its own (read → stored hash →
// decompress into blocks of 1 MiB). Each block goes to a hashing thread
// (SHA-256 of the raw bytes) and to read(), which copies it out on the
// caller's thread (an upload), at the same time; it is free again when both
// are done with it: at most kBlocks are in flight.
struct StoredFileReader::Impl {
  using Shared = std::shared_ptr<Block>;
  std::unique_ptr<ChunkedFileReader> chunked;  // format 2 data files
  const ManifestFile* file = nullptr;
  std::unique_ptr<TargetReader> reader;
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx{ZSTD_createDCtx(), ZSTD_freeDCtx};
  Sha256 raw_hash;  // the hasher's until it is joined
  std::optional<StoredHash> stored_hash;
  uint64_t raw = 0;
  bool at_end = false, checked = false;
  std::vector<std::string> problems;
  // Between the threads.
  BlockQueue free;
  HandOver<Shared> full, to_hash;
  Shared cur;
  size_t cur_pos = 0;
  std::thread producer, hasher;
  std::atomic<bool> stop{false};
  // Written by the producer before it closes `full`, read after.
  size_t pending = 1;  // ZSTD's "more input expected" (0 = frame complete)
  bool corrupt = false;
  std::exception_ptr error;

  void produce() {
    std::vector<char> in_buf(kBufferSize);
    ZSTD_inBuffer in{in_buf.data(), 0, 0};
    std::optional<Block> out;
    auto hand_over = [&] {
      if (out && out->size) {
        // The last of the two to drop it puts it back on the free list.
        Shared b(new Block(std::move(*out)), [this](Block* p) {
          free.push(std::move(*p));
          delete p;
        });
        to_hash.push(b);
        full.push(std::move(b));
      }
      out.reset();
    };
    // A call that filled the output may have left output inside zstd: call it
    // again before reading more (unless the frame ended: then that call would
    // start the next frame).
    bool out_was_full = false;
    try {
      for (;;) {
        if (stop) break;
        if (in.pos == in.size && !(out_was_full && pending != 0)) {
          throw_if_interrupt_requested();
          size_t n = reader->read(in_buf.data(), in_buf.size());
          if (n == 0) break;
          stored_hash->update(in_buf.data(), n);
          in = {in_buf.data(), n, 0};
        }
        if (!out) {
          out = free.pop();
          if (!out) break;  // the reader is being destroyed
          out->size = 0;
        }
        ZSTD_outBuffer ob{out->data.data() + out->size, out->data.size() - out->size, 0};
        pending = ZSTD_decompressStream(dctx.get(), &ob, &in);
        if (ZSTD_isError(pending)) {
          problems.push_back(file->name + ": corrupt zstd stream (" + ZSTD_getErrorName(pending) +
                             ")");
          corrupt = true;
          // Hash what is left unread, so the stored hash is of the whole file.
          while (!stop) {
            size_t n = reader->read(in_buf.data(), in_buf.size());
            if (n == 0) break;
            stored_hash->update(in_buf.data(), n);
          }
          break;
        }
        out->size += ob.pos;
        out_was_full = ob.pos == ob.size;
        if (out->size == out->data.size()) hand_over();
      }
      hand_over();
    } catch (...) {
      error = std::current_exception();
    }
    to_hash.close();
    full.close();  // last: nothing of the target is touched after this
  }
  void stop_threads() {
    stop = true;
    free.close();
    full.close();
    to_hash.close();
    if (producer.joinable()) producer.join();
    if (hasher.joinable()) hasher.join();
  }
};

StoredFileReader::StoredFileReader(BackupTarget& target, const std::string& dir,
                                   const ManifestFile& file)
    : impl_(std::make_unique<Impl>()) {
  Impl& im = *impl_;
  im.file = &file;
  if (file.compression == "chunks") {
    im.chunked = std::make_unique<ChunkedFileReader>(target, dir, file);
    return;
  }
  const std::string path = dir + "/" + file.name;
  auto size = target.file_size(path);
  if (!size) {
    im.problems.push_back(file.name + ": missing");
    im.at_end = true;
    return;
  }
  if (*size != file.stored_size)
    im.problems.push_back(file.name + ": " + std::to_string(*size) +
                          " bytes stored, manifest says " + std::to_string(file.stored_size) +
                          (*size < file.stored_size ? " (truncated)" : ""));
  im.reader = target.open(path);
  im.stored_hash.emplace(!file.stored_xxh128.empty());
  // zstd's frame checksum (XXH64 of the raw bytes) is not checked: the
  // SHA-256 of the raw bytes checks every one of them anyway, and the
  // stored hash every stored byte. (It cost about 5% of a restore's CPU.)
  ZSTD_DCtx_setParameter(im.dctx.get(), ZSTD_d_forceIgnoreChecksum, ZSTD_d_ignoreChecksum);
  for (size_t i = 0; i < kBlocks; ++i) im.free.push(Block{});
  im.hasher = std::thread([&im] {
    while (auto b = im.to_hash.pop()) im.raw_hash.update((*b)->data.data(), (*b)->size);
  });
  im.producer = std::thread([&im] { im.produce(); });
}

StoredFileReader::~StoredFileReader() { impl_->stop_threads(); }

size_t StoredFileReader::read(char* data, size_t size) {
  Impl& im = *impl_;
  if (im.chunked) return im.chunked->read(data, size);
  while (!im.at_end && size) {
    if (!im.cur || im.cur_pos == im.cur->size) {
      im.cur.reset();
      auto next = im.full.pop();
      im.cur_pos = 0;
      if (!next) {
        im.at_end = true;
        im.producer.join();  // it closed the hasher's queue too
        im.hasher.join();
        if (im.error) std::rethrow_exception(im.error);
        break;
      }
      im.cur = std::move(*next);
      continue;
    }
    size_t n = std::min(size, im.cur->size - im.cur_pos);
    std::memcpy(data, im.cur->data.data() + im.cur_pos, n);
    im.cur_pos += n;
    im.raw += n;
    return n;
  }
  return 0;
}

std::vector<std::string> StoredFileReader::problems() {
  Impl& im = *impl_;
  if (im.chunked) return im.chunked->problems();
  if (!im.at_end) fail("StoredFileReader::problems() before the end of " + im.file->name);
  if (im.checked || !im.reader) return im.problems;
  im.checked = true;
  const ManifestFile& f = *im.file;
  if (!im.corrupt && im.pending != 0)
    im.problems.push_back(f.name + ": zstd stream ends early (truncated)");
  const bool xxh = !f.stored_xxh128.empty();
  if (im.stored_hash->hex() != (xxh ? f.stored_xxh128 : f.stored_sha256))
    im.problems.push_back(f.name + (xxh ? ": XXH3-128" : ": SHA-256") +
                          " of the stored file differs from the manifest");
  if (!im.corrupt) {
    if (im.raw != f.size)
      im.problems.push_back(f.name + ": " + std::to_string(im.raw) +
                            " bytes after decompression, " + "manifest says " +
                            std::to_string(f.size));
    else if (im.raw_hash.hex() != f.sha256)
      im.problems.push_back(f.name + ": SHA-256 of the data differs from the manifest");
  }
  return im.problems;
}

std::vector<std::string> check_stored_file(BackupTarget& target, const std::string& dir,
                                           const ManifestFile& file,
                                           const std::function<void(const char*, size_t)>& sink) {
  StoredFileReader reader(target, dir, file);
  std::vector<char> buf(kBufferSize);
  while (size_t n = reader.read(buf.data(), buf.size()))
    if (sink) sink(buf.data(), n);
  return reader.problems();
}

// ---- ids, locks, in-progress markers ----

namespace {

constexpr const char* kInProgress = ".in-progress";
constexpr const char* kSnapshotPrefix = "ceso-backup ";
// Old runs' description (no run details): never removed automatically.
constexpr const char* kSnapshotDescription =
    "Temporary snapshot of a ceso-backup run; removed when the backup ends.";
// What follows this in a snapshot's description is the run as JSON.
constexpr const char* kSnapshotRunTag = " Run: ";

std::string hostname() {
  char buf[256] = {};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

std::string safe_name(const std::string& s, size_t max) {
  std::string out;
  for (unsigned char c : s) {
    bool ok = std::isalnum(c) || c == '.' || c == '_' || c == '-';
    char ch = ok ? static_cast<char>(c) : '_';
    if (ch == '_' && !out.empty() && out.back() == '_') continue;
    out += ch;
    if (out.size() >= max) break;
  }
  while (!out.empty() && (out.front() == '.' || out.front() == '-')) out.erase(0, 1);
  return out.empty() ? "vm" : out;
}

// One backup of a VM at a time on this machine: an flock on a file in the
// state directory, held for the whole run (released by the kernel when the
// process dies, so a killed run never blocks the next one).
class VmLock {
 public:
  VmLock(const std::string& key, const std::string& vm_name) : path_(path_for(key)) {
    fd_.reset(open_private_file(path_, O_RDWR));  // in the state directory: 0700/0600
    if (!fd_) fail("cannot open lock file " + quote(path_) + ": " + std::strerror(errno));
    if (flock(fd_.get(), LOCK_EX | LOCK_NB) != 0) {
      char buf[32] = {};
      ssize_t n = ::pread(fd_.get(), buf, sizeof buf - 1, 0);
      std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
      while (!pid.empty() && pid.back() == '\n') pid.pop_back();
      fail("VM " + quote(vm_name) + " is already being backed up" +
           (pid.empty() ? "" : " by process " + pid) + " on this machine");
    }
    std::string pid = std::to_string(getpid()) + "\n";
    if (ftruncate(fd_.get(), 0) == 0) (void)!::pwrite(fd_.get(), pid.data(), pid.size(), 0);
  }
  VmLock(const VmLock&) = delete;
  VmLock& operator=(const VmLock&) = delete;
  const std::string& path() const { return path_; }

  static std::string path_for(const std::string& key) {
    return state_dir() + "/locks/backup-" + safe_name(key, 200) + ".lock";
  }
  // Whether some process holds the lock at `path` now; nullopt when the
  // file cannot be opened (absent, or another user's).
  static std::optional<bool> held(const std::string& path) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return std::nullopt;
    return flock(fd.get(), LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  }

 private:
  std::string path_;
  Fd fd_;
};

bool process_exists(int64_t pid) {
  if (pid <= 0 || pid > std::numeric_limits<pid_t>::max()) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

// Whether the run a marker or a snapshot description names may still be
// going. `own_lock` is the lock this process holds (a run that used the
// same lock is dead: we could not hold it otherwise). Another machine's run
// cannot be checked from here: it counts as alive.
bool run_alive(const ordered_json& run, const std::string& own_lock = {}) {
  if (!run.is_object()) return true;
  std::string host = run.value("host", ""), lock = run.value("lock", "");
  if (host != hostname()) return true;
  if (!own_lock.empty() && lock == own_lock) return false;
  if (auto busy = VmLock::held(lock)) return *busy;
  // The lock file is gone or unreadable (another user's state directory):
  // the process decides (a reused pid only keeps a leftover longer).
  return run.value("pid", int64_t{0}) > 0 && process_exists(run.value("pid", int64_t{0}));
}

// A marker ceso wrote: a JSON object naming the run's machine and lock.
bool is_marker(const ordered_json& m) {
  return m.is_object() && m.contains("host") && m["host"].is_string() && m.contains("lock") &&
         m["lock"].is_string() && m.contains("vm_key") && m["vm_key"].is_string();
}

std::string describe_run(const ordered_json& run) {
  std::string s = "machine " + quote(run.value("host", "?"));
  if (run.contains("pid")) s += ", pid " + std::to_string(run.value("pid", int64_t{0}));
  if (run.contains("started") && run["started"].is_number_integer())
    s += ", started " + format_utc(run["started"].get<int64_t>());
  return s;
}

}  // namespace

std::string make_backup_id(const std::string& vm_name, int64_t now) {
  unsigned char rnd[8] = {};
  if (RAND_bytes(rnd, sizeof rnd) != 1) fail("cannot get random bytes for a backup id");
  return safe_name(vm_name, 48) + "-" + format_utc_compact(now) + "-" + hex_encode(rnd, sizeof rnd);
}

namespace {

std::string id_problem(std::string_view id) {
  if (id.empty()) return "empty";
  if (id.size() > 128) return "longer than 128 characters";
  if (id.front() == '.' || id.front() == '-') return "starts with '" + std::string(1, id[0]) + "'";
  for (unsigned char c : id)
    if (!std::isalnum(c) && c != '.' && c != '_' && c != '-')
      return c < 0x20 || c == 0x7f ? "holds a control character"
                                   : "holds " + quote(std::string(1, static_cast<char>(c))) +
                                         " (ids are letters, digits, '.', '_' and '-')";
  return {};
}

}  // namespace

bool is_backup_id(std::string_view id) { return id_problem(id).empty(); }

void check_backup_id(std::string_view id) {
  std::string why = id_problem(id);
  if (!why.empty()) bad_input("bad backup id " + quote(id.substr(0, 160)) + ": " + why);
}

std::optional<std::string> manifest_id_at(BackupTarget& target, const std::string& id) {
  check_backup_id(id);
  const std::string path = id + "/" + kManifestName;
  if (!target.file_size(path)) return std::nullopt;
  try {
    return manifest_from_json(target.read_file(path)).id;
  } catch (const Error& e) {
    bad_input("backup " + quote(id) + " at " + target.url() + ": " + e.what());
  }
}

namespace {

ordered_json read_marker(BackupTarget& target, const std::string& id) {
  try {
    return ordered_json::parse(target.read_file(id + "/" + kInProgress));
  } catch (const std::exception&) {
    return nullptr;
  }
}

}  // namespace

TargetListing list_target(BackupTarget& target) {
  TargetListing out;
  auto entries = target.list("");
  std::sort(entries.begin(), entries.end(),
            [](const TargetEntry& a, const TargetEntry& b) { return a.name < b.name; });
  for (const auto& e : entries) {
    if (e.dir && (e.name == kChunkDir || e.name == kGcLock)) continue;  // the chunk store's
    if (!e.dir || !is_backup_id(e.name))
      out.foreign.push_back(e.name);
    else if (target.file_size(e.name + "/" + kManifestName))
      out.complete.push_back(e.name);
    else if (target.file_size(e.name + "/" + kInProgress))
      out.incomplete.push_back(e.name);
    else
      out.foreign.push_back(e.name);
  }
  return out;
}

std::vector<std::string> collect_garbage(BackupTarget& target, bool dry_run,
                                         std::vector<std::string>* in_progress) {
  std::vector<std::string> removed;
  for (const auto& id : list_target(target).incomplete) {
    ordered_json marker = read_marker(target, id);
    // A marker that is not ours (or unreadable) is not proof that ceso made
    // the directory: leave it, like a live run's.
    if (!is_marker(marker) || run_alive(marker)) {
      if (in_progress) in_progress->push_back(id);
      continue;
    }
    if (!dry_run) target.remove_tree(id);
    removed.push_back(id);
  }
  return removed;
}

// ---- what to copy ----

namespace {

struct SourceFile {
  DatastorePath path;
  std::string kind;  // vmx | nvram | descriptor | extent
  int disk = -1;
  std::string name;   // stored name, without ".zst"
  uint64_t size = 0;  // from layoutEx; 0 when unknown
};

struct VmFacts {
  ordered_json details;  // vm_details record
  xml::Node config;      // the `config` property as the API reports it
  std::string power;
  std::vector<SourceFile> files;
  ordered_json disks = ordered_json::array();
  bool passthrough = false;
};

std::string flat_name(const std::string& descriptor) {
  const std::string ext = ".vmdk";
  if (descriptor.size() > ext.size() &&
      descriptor.compare(descriptor.size() - ext.size(), ext.size(), ext) == 0)
    return descriptor.substr(0, descriptor.size() - ext.size()) + "-flat.vmdk";
  return descriptor + "-flat";
}

// Disk files from layoutEx: for each disk its chain (base first, then the
// deltas of snapshots that exist already, the user's), each unit a descriptor
// and its extent(s). Without layoutEx (some hosts, some simulators), the
// descriptor from the device backing and ESXi's "-flat.vmdk" naming rule.
void add_disk_files(VmFacts& f, const xml::Node& device, int index, const xml::Node* layout) {
  std::string key = device.child_text("key");
  std::string file = device.find_text("backing/fileName");
  f.disks.push_back({{"index", index},
                     {"device_key", std::atoi(key.c_str())},
                     {"file", file},
                     {"capacity_bytes",
                      std::strtoull(device.child_text("capacityInBytes").c_str(), nullptr, 10)}});
  std::map<std::string, const xml::Node*> by_key;
  if (layout)
    for (const xml::Node* lf : layout->all("file")) by_key[lf->child_text("key")] = lf;
  const xml::Node* chain_owner = nullptr;
  if (layout)
    for (const xml::Node* d : layout->all("disk"))
      if (d->child_text("key") == key) chain_owner = d;
  std::string base = "disk" + std::to_string(index);
  bool found = false;
  if (chain_owner) {
    auto units = chain_owner->all("chain");
    for (size_t u = 0; u < units.size(); ++u) {
      std::string unit = base + (u ? "-s" + std::to_string(u) : "");
      int extent = 0;
      for (const xml::Node* fk : units[u]->all("fileKey")) {
        auto it = by_key.find(fk->text);
        if (it == by_key.end()) continue;
        const xml::Node* lf = it->second;
        std::string type = lf->child_text("type");
        bool is_extent = type == "diskExtent";
        std::string name = is_extent
                               ? unit + "-flat" + (extent ? std::to_string(extent) : "") + ".vmdk"
                               : unit + ".vmdk";
        if (is_extent) ++extent;
        f.files.push_back({parse_datastore_path(lf->child_text("name")),
                           is_extent ? "extent" : "descriptor", index, name,
                           std::strtoull(lf->child_text("size").c_str(), nullptr, 10)});
        found = true;
      }
    }
  }
  if (!found) {
    DatastorePath d = parse_datastore_path(file);
    f.files.push_back({d, "descriptor", index, base + ".vmdk", 0});
    f.files.push_back({{d.datastore, flat_name(d.path)}, "extent", index, base + "-flat.vmdk", 0});
  }
}

VmFacts read_vm(vim::Client& c, const vim::MoRef& ref) {
  auto details = c.retrieve({ref}, vm_detail_paths());
  auto raw = c.retrieve({ref}, {"config", "layoutEx"});
  if (details.empty() || raw.empty()) fail("the VM disappeared while reading it");
  VmFacts f;
  f.details = vm_details(details.front(), c.endpoint(), false);
  f.power = f.details.value("power", "");
  const xml::Node* config = raw.front().prop("config");
  if (!config) fail("the host reports no configuration for this VM");
  f.config = *config;
  const xml::Node* layout = raw.front().prop("layoutEx");
  std::string vmx = config->find_text("files/vmPathName");
  f.files.push_back({parse_datastore_path(vmx), "vmx", -1, "vm.vmx", 0});
  if (layout)
    for (const xml::Node* lf : layout->all("file"))
      if (lf->child_text("type") == "nvram")
        f.files.push_back({parse_datastore_path(lf->child_text("name")), "nvram", -1, "vm.nvram",
                           std::strtoull(lf->child_text("size").c_str(), nullptr, 10)});
  int index = 0;
  if (const xml::Node* hw = config->child("hardware"))
    for (const xml::Node* dev : hw->all("device")) {
      if (dev->type() == "VirtualPCIPassthrough") f.passthrough = true;
      if (dev->type() == "VirtualDisk") add_disk_files(f, *dev, index++, layout);
    }
  return f;
}

// The plain vm record (ceso-ls's fields) out of a detailed one.
ordered_json vm_record_of(const ordered_json& details) {
  ordered_json r = ordered_json::object();
  for (const char* k : {"type", "endpoint", "id", "name", "uuid", "power", "cpus", "memory_mib",
                        "disks_gib", "ip", "tags", "guest_id", "datastore", "vmx"})
    if (details.contains(k)) r[k] = details[k];
  return r;
}

// The datacenter part of /folder URLs: "ha-datacenter" on a standalone host;
// on vCenter the name of the datacenter that holds the VM.
std::string datacenter_of(vim::Client& c, const vim::MoRef& vm) {
  if (!c.content().is_vcenter()) return "ha-datacenter";
  vim::MoRef cur = vm;
  for (int depth = 0; depth < 32; ++depth) {
    auto objs = c.retrieve({cur}, {"parent", "name"});
    if (objs.empty()) break;
    if (cur.type == "Datacenter") return objs.front().text("name");
    const xml::Node* parent = objs.front().prop("parent");
    if (!parent) break;
    cur = vim::moref_of(*parent);
  }
  fail("cannot find the datacenter of the VM");
}

}  // namespace

// ---- one backup run ----

namespace {

class BackupRun {
 public:
  BackupRun(const LocatedVm& vm, const BackupOptions& o, BackupContext& ctx)
      : vm_(vm), c_(*vm.client), o_(o), ctx_(ctx) {}

  ordered_json run(ordered_json& record);

 private:
  const LocatedVm& vm_;
  vim::Client& c_;
  const BackupOptions& o_;
  BackupContext& ctx_;
  VmFacts facts_;
  Manifest m_;
  std::string vm_key_;
  std::map<std::string, std::string> descriptors_;  // stored name → text
  ordered_json run_;  // this run: id, machine, pid, lock (marker, snapshot description)
  std::string datacenter_;
  std::unique_ptr<DatastoreFiles> files_;
  VmWriter* writer_ = nullptr;          // the run's changes: SSH on a free-licensed host
  std::unique_ptr<ChunkStore> chunks_;  // format 2
  ChunkStats chunk_stats_;
  // --cbt (docs/backup.md "Incremental with CBT")
  vim::MoRef snap_;                        // the backup snapshot, while it exists
  std::map<int, std::string> change_ids_;  // device key → its change id in snap_
  std::optional<Manifest> cbt_base_;       // the previous backup built on
  ordered_json cbt_ = nullptr;             // the record's "cbt"

  Mutation mutation(std::string op, ordered_json params = ordered_json::object()) const {
    Mutation m{c_.endpoint().id, vm_.name, vm_.ref.value, std::move(op), std::move(params)};
    if (ctx_.writers) m.transport = writer_ ? "ssh" : "api";
    return m;
  }
  vim::MoRef take_snapshot(const std::string& name, const std::string& description);
  void drop_snapshot(const std::string& name, const vim::MoRef& ref);
  void shut_down();
  void power_on();
  void plan_only();
  void clean_leftovers(const std::string& lock_path);
  void copy_all(const std::vector<SourceFile>& files);
  void copy_file(const SourceFile& src);
  // What both ways of copying a file start from: its manifest entry (stored
  // as NAME + suffix) and the download's retries, limit and Ctrl-C.
  ManifestFile manifest_entry(const SourceFile& src, const char* suffix) const {
    ManifestFile mf;
    mf.name = src.name + suffix;
    mf.source = src.path.str();
    mf.kind = src.kind;
    mf.disk = src.disk;
    return mf;
  }
  DownloadOptions download_options(const SourceFile& src) {
    DownloadOptions dopt;
    dopt.retries = o_.retries;
    dopt.backoff = o_.backoff;
    dopt.limit_rate = o_.limit_rate;
    dopt.cancelled = [] { return interrupt_requested(); };
    dopt.on_retry = [this, where = src.path.str()](const std::string& why) {
      ctx_.warn(where + ": " + why);
    };
    return dopt;
  }
  void prepare_cbt();
  bool copy_extent_cbt(const SourceFile& src);
  void store_blob(const std::string& name, const std::string& kind, const std::string& data);
  void publish();
  void hot_copy(const std::vector<SourceFile>& disks);
  void cold_copy(const std::vector<SourceFile>& disks);
  bool remove_snapshot_retrying(const vim::MoRef& snap);
  void record_failure(const std::string& error);
};

void BackupRun::plan_only() {
  ordered_json files = ordered_json::array();
  for (const auto& f : facts_.files) files.push_back(f.path.str());
  bool running = facts_.power == "on";
  auto noop = [] {};
  if (o_.cbt && !change_tracking_enabled(c_, vm_.ref))
    ctx_.gate.perform(mutation("ReconfigVM_Task", {{"changeTrackingEnabled", true}}), noop);
  if (m_.mode == "hot")
    ctx_.gate.perform(mutation("CreateSnapshot_Task", {{"memory", false}, {"quiesce", o_.quiesce}}),
                      noop);
  if (running && o_.mode == "cold")
    ctx_.gate.perform(mutation("ShutdownGuest", {{"force", o_.force}}), noop);
  ctx_.gate.perform(
      mutation("Backup", {{"id", m_.id}, {"target", ctx_.target.url()}, {"files", files}}), noop);
  if (m_.mode == "hot") ctx_.gate.perform(mutation("RemoveSnapshot_Task"), noop);
  if (running && o_.mode == "cold") ctx_.gate.perform(mutation("PowerOnVM_Task"), noop);
}

// A killed run of this VM left a directory and maybe its snapshot. Its
// directory: when its marker names our lock (we hold it now, so that run is
// dead). A snapshot: only ours (our name prefix and a description naming
// the run) whose run is dead; one whose run may be alive (this machine: its
// lock is held or its process exists; another machine: always) stops this
// run, and a user's snapshot never matches.
void BackupRun::clean_leftovers(const std::string& lock_path) {
  for (const auto& id : list_target(ctx_.target).incomplete) {
    ordered_json marker = read_marker(ctx_.target, id);
    if (is_marker(marker) && marker.value("vm_key", "") == vm_key_ &&
        marker.value("lock", "") == lock_path && marker.value("host", "") == hostname()) {
      ctx_.target.remove_tree(id);
      ctx_.warn("removed " + quote(id) + " left by an interrupted run");
    }
  }
  for (const auto& s : list_snapshots(c_, vm_.ref)) {
    if (s.name.rfind(kSnapshotPrefix, 0) != 0) continue;
    std::string who;
    ordered_json run = nullptr;
    if (size_t at = s.description.find(kSnapshotRunTag); at != std::string::npos) {
      try {
        run = ordered_json::parse(s.description.substr(at + std::strlen(kSnapshotRunTag)));
      } catch (const std::exception&) {
        run = nullptr;
      }
    }
    if (!run.is_object() || !run.contains("host")) {
      if (s.description != kSnapshotDescription) continue;  // a user's snapshot
      fail("VM " + quote(vm_.name) + " has the snapshot " + quote(s.name) +
           " of a backup run of an older ceso-backup, which cannot tell whether that run is "
           "still going; if it is not, remove the snapshot (ceso-snap rm) and start again");
    }
    if (run_alive(run, lock_path))
      fail("VM " + quote(vm_.name) + " is being backed up by another run (" + describe_run(run) +
           ", snapshot " + quote(s.name) + "); if that run is dead, remove its snapshot " +
           "(ceso-snap rm) and start again");
    ctx_.gate.perform(mutation("RemoveSnapshot_Task", {{"snapshot", s.name}}),
                      [&] { drop_snapshot(s.name, s.ref); });
    ctx_.warn("removed snapshot " + quote(s.name) + " left by an interrupted run");
  }
}

void BackupRun::copy_file(const SourceFile& src) {
  throw_if_interrupt_requested();
  if (o_.cbt && chunks_ && src.kind == "extent" && copy_extent_cbt(src)) return;
  std::string url =
      vim::datastore_file_url(c_.endpoint(), datacenter_, src.path.datastore, src.path.path);
  ManifestFile mf = manifest_entry(src, ".zst");
  std::unique_ptr<StoredFileWriter> writer;
  std::unique_ptr<ChunkedFileWriter> chunked;
  if (chunks_ && src.kind == "extent") {
    mf.name = src.name + ".idx";
    chunked = std::make_unique<ChunkedFileWriter>(*chunks_, m_.id + "/" + mf.name);
  }
  auto open_writer = [&] {
    writer = std::make_unique<StoredFileWriter>(ctx_.target.create(m_.id + "/" + mf.name), o_.level,
                                                o_.threads);
  };
  std::string descriptor;
  int task = ctx_.progress.start(vm_.name + " " + src.name, src.size);
  DownloadOptions dopt = download_options(src);
  auto got = files_->download(
      url,
      [&](const char* data, size_t n) {
        if (chunked) {
          chunked->write(data, n);
        } else {
          if (!writer) open_writer();
          writer->write(data, n);
        }
        // Descriptors are checked the way restore reads them before the
        // backup is published (bounded: a real one is a few hundred bytes).
        if (src.kind == "descriptor" && descriptor.size() <= (1u << 20))
          descriptor.append(data, std::min<size_t>(n, (1u << 20) + 1 - descriptor.size()));
        ctx_.progress.advance(task, n);
      },
      dopt);
  ctx_.progress.finish(task);
  if (!got) {
    // layoutEx lists an NVRAM the host does not serve (a VM that never ran
    // has none yet): the backup is still usable, but the record says so.
    if (src.kind == "nvram") {
      std::string w = src.path.str() +
                      " (nvram): listed by the host but not served (HTTP 404); "
                      "not in the backup";
      m_.warnings.push_back(w);
      ctx_.warn(w);
      return;
    }
    fail("cannot download " + quote(src.path.str()) + ": the host says it does not exist");
  }
  if (src.kind == "extent" && src.size && *got != src.size)
    fail("copied " + std::to_string(*got) + " bytes of " + quote(src.path.str()) + ", expected " +
         std::to_string(src.size));
  if (chunked) {
    chunked->finish(mf);
    chunk_stats_.add(chunked->stats());
  } else {
    if (!writer) open_writer();
    writer->finish(mf);
  }
  if (src.kind == "descriptor") descriptors_[mf.name] = std::move(descriptor);
  m_.files.push_back(std::move(mf));
}

// ---- --cbt (docs/backup.md "Incremental with CBT") ----

// Tracking on (a mutation: the gate and the audit) and the previous backup to
// build on: the newest complete one of this VM (endpoint and uuid) at this
// target whose verify did not fail, read back from the target.
void BackupRun::prepare_cbt() {
  if (writer_)
    fail(
        "--cbt: this host's licence refuses API writes and change tracking is only available "
        "through the API; back up without --cbt");
  cbt_ = {{"disks", ordered_json::array()}, {"bytes_read", 0}, {"base", nullptr}};
  if (!change_tracking_enabled(c_, vm_.ref)) {
    ctx_.gate.perform(mutation("ReconfigVM_Task", {{"changeTrackingEnabled", true}}),
                      [&] { enable_change_tracking(c_, vm_.ref); });
    ctx_.warn("VM " + quote(vm_.name) +
              ": change tracking enabled; it starts with this backup's snapshot, which is "
              "read in full (all areas holding data)");
  }
  const std::string uuid = facts_.details.value("uuid", "");
  std::optional<CatalogEntry> newest;
  for (auto& e : ctx_.catalog.list(ctx_.target.url()))
    if (e.status == "complete" && e.endpoint == c_.endpoint().id && !uuid.empty() &&
        e.vm_uuid == uuid && e.verify != "failed" && e.id != m_.id &&
        (!newest || e.created >= newest->created))
      newest = e;
  if (!newest) return;
  try {
    Manifest m = manifest_from_json(ctx_.target.read_file(newest->id + "/" + kManifestName));
    if (m.id != newest->id) fail("its manifest names backup " + quote(m.id));
    cbt_base_ = std::move(m);
    cbt_["base"] = newest->id;
  } catch (const Error& e) {
    ctx_.warn("--cbt: the previous backup " + quote(newest->id) + " cannot be built on (" +
              e.what() + "): every disk is read in full");
  }
}

// One data file with CBT: the chunks holding changed areas are read with
// ranged GETs (whole 4 MiB chunks), the others come from the previous
// backup's index (or, for "*", are all zero) once the target is found to
// hold them. False, having copied nothing, when CBT cannot be used for this
// file: copy_file then reads it whole (a warning says why).
bool BackupRun::copy_extent_cbt(const SourceFile& src) {
  if (src.disk < 0 || static_cast<size_t>(src.disk) >= m_.disks.size()) return false;
  ordered_json& disk = m_.disks[static_cast<size_t>(src.disk)];
  const int key = disk.value("device_key", -1);
  ordered_json info = {{"disk", src.disk}, {"since", nullptr}, {"bytes_read", 0}};
  auto whole = [&](const std::string& why, bool keep_id) {
    ctx_.warn("disk " + std::to_string(src.disk) + " of " + quote(vm_.name) + ": read in full, " +
              why);
    info["since"] = "full";
    info["bytes_read"] = src.size;
    info["why"] = why;
    cbt_["disks"].push_back(info);
    cbt_["bytes_read"] = cbt_["bytes_read"].get<uint64_t>() + src.size;
    if (keep_id) disk["change_id"] = change_ids_[key];
    return false;
  };
  std::string id = change_ids_.count(key) ? change_ids_[key] : "";
  std::string uuid;
  uint64_t seq = 0;
  if (id.empty()) return whole("the host reports no change id for it", false);
  if (!parse_change_id(id, uuid, seq))
    return whole("the host's change id " + quote(id) + " is malformed", false);
  for (const auto& [k, other] : change_ids_)
    if (k != key && other.substr(0, other.rfind('/')) == uuid)
      return whole("the host reports its change id for another disk too", false);
  size_t units = 0;
  for (const auto& f : facts_.files)
    if (f.disk == src.disk && f.kind == "extent") ++units;
  if (units != 1) return whole("it has several extents or snapshots of its own", false);
  if (src.size == 0) return whole("its size is unknown", false);

  // What to ask for: changes since the previous backup's change id of this
  // disk, with its index; else "*" (every area holding data).
  std::string since = "*";
  std::optional<ChunkIndex> base;
  std::string why_star;
  if (!cbt_base_) {
    why_star = "no previous backup of this VM at this target";
  } else {
    const ordered_json* pd = nullptr;
    for (const auto& d : cbt_base_->disks)
      if (d.is_object() && d.value("device_key", -2) == key && d.value("index", -1) == src.disk)
        pd = &d;
    std::string prev = pd && (*pd).contains("change_id") && (*pd)["change_id"].is_string()
                           ? (*pd)["change_id"].get<std::string>()
                           : "";
    std::string prev_uuid;
    uint64_t prev_seq = 0;
    const ManifestFile* pf = nullptr;
    for (const auto& f : cbt_base_->files)
      if (f.kind == "extent" && f.disk == src.disk && f.compression == "chunks") pf = &f;
    if (prev.empty() || !pf) {
      why_star = "the previous backup has no change id for this disk";
    } else if (!parse_change_id(prev, prev_uuid, prev_seq) || prev_uuid != uuid) {
      why_star = "change tracking was reset since the previous backup (its change id " +
                 quote(prev) + ", now " + quote(id) + ")";
    } else if (prev_seq > seq) {
      why_star = "the previous backup's change id " + quote(prev) + " is newer than the host's";
    } else {
      try {
        base = read_index(ctx_.target, cbt_base_->id, *pf);
        if (base->size != src.size || base->chunk_size != kChunkSize)
          why_star = "the disk's size changed since the previous backup";
        else
          since = prev;
      } catch (const Error& e) {
        if (e.code() != Exit::bad_input) throw;
        why_star = std::string("the previous backup's index cannot be used: ") + e.what();
      }
    }
  }
  if (since == "*" && cbt_base_)
    ctx_.warn("disk " + std::to_string(src.disk) + " of " + quote(vm_.name) +
              ": all areas holding data are read: " + why_star);
  std::vector<DiskArea> areas;
  try {
    areas = query_changed_areas(c_, vm_.ref, snap_, key, src.size, since);
  } catch (const Error& e) {
    if (e.code() == Exit::interrupted) throw;
    return whole(std::string("its changed areas are not usable: ") + e.what(), true);
  }
  const uint64_t n = (src.size + kChunkSize - 1) / kChunkSize;
  std::vector<char> read(n, 0);
  for (const auto& a : areas)
    for (uint64_t i = a.start / kChunkSize; i <= (a.start + a.length - 1) / kChunkSize; ++i)
      read[i] = 1;

  std::string url =
      vim::datastore_file_url(c_.endpoint(), datacenter_, src.path.datastore, src.path.path);
  ManifestFile mf = manifest_entry(src, ".idx");
  ChunkedFileWriter writer(*chunks_, m_.id + "/" + mf.name);
  DownloadOptions dopt = download_options(src);
  int task = ctx_.progress.start(vm_.name + " " + src.name, src.size);
  uint64_t bytes_read = 0, chunks_read = 0, missing = 0;
  auto chunk_len = [&](uint64_t i) { return std::min(kChunkSize, src.size - i * kChunkSize); };
  for (uint64_t i = 0; i < n;) {
    throw_if_interrupt_requested();
    if (!read[i]) {
      const std::string known = base ? base->chunks[i] : "";
      if (writer.add_known(known, chunk_len(i))) {
        ctx_.progress.advance(task, chunk_len(i));
        ++i;
        continue;
      }
      ++missing;  // not at the target (any more): read it
      read[i] = 1;
    }
    uint64_t j = i;
    while (j < n && read[j]) ++j;
    const uint64_t off = i * kChunkSize, len = std::min(src.size, j * kChunkSize) - off;
    auto got = files_->download_range(
        url, off, len,
        [&](const char* data, size_t k) {
          writer.write(data, k);
          ctx_.progress.advance(task, k);
        },
        dopt);
    if (!got)
      fail("cannot download " + quote(src.path.str()) + ": the host says it does not exist");
    bytes_read += len;
    chunks_read += j - i;
    i = j;
  }
  ctx_.progress.finish(task);
  writer.finish(mf);
  chunk_stats_.add(writer.stats());
  if (missing)
    ctx_.warn("disk " + std::to_string(src.disk) + " of " + quote(vm_.name) + ": " +
              std::to_string(missing) +
              " unchanged chunk(s) of the previous backup are missing at the target; read again");
  disk["change_id"] = id;
  info["since"] = since;
  info["change_id"] = id;
  info["areas"] = areas.size();
  info["chunks_read"] = chunks_read;
  info["bytes_read"] = bytes_read;
  cbt_["disks"].push_back(info);
  cbt_["bytes_read"] = cbt_["bytes_read"].get<uint64_t>() + bytes_read;
  m_.files.push_back(std::move(mf));
  return true;
}

void BackupRun::store_blob(const std::string& name, const std::string& kind,
                           const std::string& data) {
  ManifestFile mf;
  mf.name = name + ".zst";
  mf.kind = kind;
  StoredFileWriter w(ctx_.target.create(m_.id + "/" + mf.name), o_.level, 1);
  w.write(data.data(), data.size());
  w.finish(mf);
  m_.files.push_back(std::move(mf));
}

void BackupRun::copy_all(const std::vector<SourceFile>& files) {
  for (const auto& f : files) copy_file(f);
}

// files → fsync (each file at commit, then the directory) → manifest → rename.
void BackupRun::publish() {
  m_.finished = unix_now();
  ctx_.target.sync_dir(m_.id);
  std::string tmp = m_.id + "/" + kManifestName + ".tmp";
  ctx_.target.write_file(tmp, manifest_json(m_).dump(2) + "\n");
  ctx_.target.rename(tmp, m_.id + "/" + kManifestName);
  ctx_.target.sync_dir(m_.id);
  ctx_.catalog.put(catalog_entry(m_, ctx_.target.url()));
  try {
    ctx_.target.remove_tree(m_.id + "/" + kInProgress);
  } catch (const Error&) {
    // Harmless: a manifest makes the backup complete whatever else is there.
  }
}

bool BackupRun::remove_snapshot_retrying(const vim::MoRef& snap) {
  auto delay = o_.backoff;
  for (int attempt = 0;; ++attempt) {
    try {
      ctx_.gate.perform(mutation("RemoveSnapshot_Task", {{"snapshot", kSnapshotPrefix + m_.id}}),
                        [&] { drop_snapshot(kSnapshotPrefix + m_.id, snap); });
      return true;
    } catch (const Error& e) {
      // The host may be back in a moment (the copy failed because it went away).
      if (e.code() != Exit::connection || attempt >= o_.retries) {
        ctx_.warn("could not remove the backup snapshot " + quote(kSnapshotPrefix + m_.id) + ": " +
                  e.what() + " (the next backup of this VM removes it)");
        return false;
      }
      std::this_thread::sleep_for(delay);
      delay = std::min(delay * 2, std::chrono::milliseconds(30000));
    }
  }
}

void BackupRun::hot_copy(const std::vector<SourceFile>& disks) {
  if (facts_.passthrough)
    fail("VM " + quote(vm_.name) +
         " has PCI passthrough devices and cannot be snapshotted; back it up with --cold");
  vim::MoRef snap;
  std::string name = kSnapshotPrefix + m_.id;
  ctx_.gate.perform(
      mutation("CreateSnapshot_Task", {{"name", name}, {"memory", false}, {"quiesce", o_.quiesce}}),
      [&] {
        std::string description = std::string(kSnapshotDescription) + kSnapshotRunTag + run_.dump();
        if (writer_) {
          snap = take_snapshot(name, description);
          return;
        }
        snap = create_snapshot(c_, vm_.ref, name, description, false, o_.quiesce);
        // The task result carries xsi:type="ManagedObjectReference" next to the
        // MoRef's own type attribute; both parse as "type".
        snap.type = "VirtualMachineSnapshot";
      });
  try {
    if (o_.cbt) {
      snap_ = snap;
      change_ids_ = snapshot_change_ids(c_, snap);
    }
    copy_all(disks);
  } catch (...) {
    snap_ = {};
    remove_snapshot_retrying(snap);
    throw;
  }
  snap_ = {};
  if (!remove_snapshot_retrying(snap)) fail("the backup snapshot could not be removed");
}

// Through the writer (vim-cmd prints no moref): the snapshot made is found
// in the tree read afterwards, by its name (unique: it holds the run id).
vim::MoRef BackupRun::take_snapshot(const std::string& name, const std::string& description) {
  auto before = list_snapshots(c_, vm_.ref);
  vim::MoRef ref = writer_->create_snapshot(vm_.ref, name, description, false, o_.quiesce);
  auto after = list_snapshots(c_, vm_.ref);
  const SnapshotInfo* made = new_snapshot(after, before, ref, name);
  if (!made)
    fail("the host reported no error creating snapshot " + quote(name) + ", but does not list it");
  return made->ref;
}

// Only our snapshot: by its ref, or over SSH by its name (never the user's).
void BackupRun::drop_snapshot(const std::string& name, const vim::MoRef& ref) {
  if (!writer_) {
    remove_snapshot(c_, ref, false, true);
    return;
  }
  const SnapshotInfo* ours = nullptr;
  auto list = list_snapshots(c_, vm_.ref);
  for (const auto& s : list)
    if ((!ref.empty() && s.ref.value == ref.value) || (ref.empty() && s.name == name)) ours = &s;
  if (!ours) return;  // already gone
  writer_->remove_snapshot(vm_.ref, *ours, false, true);
}

void BackupRun::shut_down() {
  if (writer_)
    set_power(*writer_, vm_.ref, PowerOp::shutdown, o_.timeout, o_.force);
  else
    set_power(c_, vm_.ref, PowerOp::shutdown, o_.timeout, o_.force);
}

void BackupRun::power_on() {
  if (writer_)
    set_power(*writer_, vm_.ref, PowerOp::on, o_.timeout, false);
  else
    set_power(c_, vm_.ref, PowerOp::on, o_.timeout, false);
}

void BackupRun::cold_copy(const std::vector<SourceFile>& disks) {
  bool was_on = facts_.power == "on";
  if (was_on)
    ctx_.gate.perform(mutation("ShutdownGuest", {{"force", o_.force}}), [&] { shut_down(); });
  auto power_back = [&] {
    if (!was_on) return;
    ctx_.gate.perform(mutation("PowerOnVM_Task"), [&] { power_on(); });
  };
  try {
    copy_all(disks);
  } catch (...) {
    try {
      power_back();
    } catch (const Error& e) {
      ctx_.warn(std::string("could not power the VM back on: ") + e.what());
    }
    throw;
  }
  power_back();
}

void BackupRun::record_failure(const std::string& error) {
  CatalogEntry e;
  e.id = m_.id;
  e.target = ctx_.target.url();
  e.endpoint = c_.endpoint().id;
  e.vm_id = vm_.ref.value;
  e.vm_name = vm_.name;
  e.vm_uuid = facts_.details.value("uuid", "");
  e.created = m_.started;
  e.status = "failed";
  e.mode = m_.mode;
  e.error = error;
  try {
    // Never over another run's row (an id is unique, but the catalog is shared).
    if (!ctx_.catalog.insert(e))
      ctx_.warn("the failure is not recorded: the catalog has a row for " + quote(e.id));
  } catch (const Error& ce) {
    ctx_.warn(std::string("could not record the failure in the catalog: ") + ce.what());
  }
}

ordered_json BackupRun::run(ordered_json& record) {
  throw_if_interrupt_requested();
  auto t0 = std::chrono::steady_clock::now();
  facts_ = read_vm(c_, vm_.ref);
  m_.started = unix_now();
  if (o_.forced_id.empty()) {
    m_.id = make_backup_id(vm_.name, m_.started);
  } else {
    check_backup_id(o_.forced_id);
    m_.id = o_.forced_id;
  }
  m_.tool_version = std::string(version());
  bool running = facts_.power == "on";
  // --cbt asks the backup snapshot for the changed areas: a VM that is off
  // is snapshotted too.
  m_.mode = (running || o_.cbt) && o_.mode == "hot" ? "hot" : "cold";
  m_.vm = vm_record_of(facts_.details);
  m_.config = facts_.details;
  m_.guestinfo = facts_.details.value("guestinfo", ordered_json::object());
  m_.tags = facts_.details.value("tags", std::vector<std::string>{});
  m_.disks = facts_.disks;
  if (ctx_.writers) {
    VmWriter& w = ctx_.writers->for_client(c_);
    if (w.transport() == Transport::ssh) writer_ = &w;  // the API path as it always was
  }
  if (o_.cbt && writer_)  // refused before any change
    fail(
        "--cbt: this host's licence refuses API writes and change tracking is only available "
        "through the API; back up without --cbt");
  record = m_.vm;  // vm_record_of leaves `template` out of the manifest, not out of records
  if (auto t = facts_.details.find("template"); t != facts_.details.end()) record["template"] = *t;
  if (ctx_.gate.dry_run()) {
    plan_only();
    return nullptr;
  }
  vm_key_ = c_.endpoint().id + "/" + facts_.details.value("uuid", vm_.ref.value);
  VmLock lock(vm_key_, vm_.name);
  datacenter_ = datacenter_of(c_, vm_.ref);
  files_ = std::make_unique<DatastoreFiles>(c_.endpoint(), c_.http().cookie());
  clean_leftovers(lock.path());
  // Ours alone from here on: mkdir fails when the id is taken (then nothing
  // is removed and no catalog row is written: they are another run's).
  try {
    ctx_.target.make_dir_exclusive(m_.id);
  } catch (const Error& e) {
    fail("cannot create backup directory " + quote(m_.id) + " at " + ctx_.target.url() + ": " +
         e.what() + " (another run owns it; nothing was changed)");
  }
  run_ = {{"run", m_.id},       {"vm_key", vm_key_}, {"vm", vm_.name},       {"lock", lock.path()},
          {"host", hostname()}, {"pid", getpid()},   {"started", m_.started}};
  try {
    std::vector<SourceFile> small, disks;
    for (const auto& f : facts_.files)
      (f.kind == "vmx" || f.kind == "nvram" ? small : disks).push_back(f);
    ctx_.target.write_file(m_.id + "/" + kInProgress, run_.dump() + "\n");
    if (o_.format == 2) {
      // The marker is written: from here on a sweep that starts sees this
      // run and removes nothing; one that started before it is waited for.
      wait_for_sweep(ctx_.target, ctx_.warn);
      chunks_ = std::make_unique<ChunkStore>(ctx_.target, o_.level,
                                             ChunkStore::cache_path_for(ctx_.target.url()));
      uint64_t lookups = 0;
      for (const auto& d : disks)
        if (d.kind == "extent") lookups += (d.size + kChunkSize - 1) / kChunkSize;
      chunks_->plan_lookups(lookups);
      m_.format = 2;
    }
    // The config as XML text again, so it can be stored as the API reported it.
    std::string config_xml = xml::serialize(
        facts_.config,
        "xmlns=\"urn:vim25\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"");
    store_blob("config.xml", "config", config_xml);
    if (o_.cbt) prepare_cbt();
    copy_all(small);  // before a snapshot rewrites the .vmx to name delta disks
    auto t1 = std::chrono::steady_clock::now();
    if (m_.mode == "hot")
      hot_copy(disks);
    else
      cold_copy(disks);
    auto t2 = std::chrono::steady_clock::now();
    m_.timings = {{"prepare_s", std::chrono::duration<double>(t1 - t0).count()},
                  {"copy_s", std::chrono::duration<double>(t2 - t1).count()}};
    if (chunks_)
      m_.chunk_stats = {{"chunks", chunk_stats_.chunks},
                        {"zero", chunk_stats_.zero},
                        {"reused", chunk_stats_.reused},
                        {"uploaded", chunk_stats_.uploaded},
                        {"bytes_uploaded", chunk_stats_.bytes_uploaded}};
    // A backup restore would refuse is a failed run, not a complete backup.
    auto blockers =
        restore_blockers(m_, [&](const ManifestFile& f) { return descriptors_[f.name]; });
    if (!blockers.empty())
      fail("the copy could not be restored, so it is not kept as a backup: " + blockers.front());
    publish();
  } catch (const Error& e) {
    try {
      ctx_.target.remove_tree(m_.id);
    } catch (const Error& re) {
      ctx_.warn(std::string("could not remove the partial backup: ") + re.what());
    }
    record_failure(e.what());
    throw;
  }
  ordered_json b = {{"id", m_.id},
                    {"target", ctx_.target.url()},
                    {"format", m_.format},
                    {"mode", m_.mode},
                    {"created", format_utc(m_.started)},
                    {"files", m_.files.size()},
                    {"bytes_raw", m_.bytes_raw()},
                    {"bytes_stored", m_.bytes_stored()},
                    {"seconds", m_.finished - m_.started}};
  if (!m_.warnings.empty()) b["warnings"] = m_.warnings;
  if (m_.chunk_stats.is_object()) b["chunks"] = m_.chunk_stats;
  if (!cbt_.is_null()) b["cbt"] = cbt_;
  return b;
}

}  // namespace

ordered_json backup_vm(const LocatedVm& vm, const BackupOptions& options, BackupContext& ctx,
                       ordered_json& record) {
  BackupRun run(vm, options, ctx);
  return run.run(record);
}

// ---- catalog operations ----

ordered_json backup_record(const CatalogEntry& e) {
  ordered_json r = {{"type", "backup"},
                    {"id", e.id},
                    {"vm", e.vm_name},
                    {"vm_id", e.vm_id},
                    {"endpoint", e.endpoint},
                    {"uuid", e.vm_uuid},
                    {"created", format_utc(e.created)},
                    {"status", e.status},
                    {"mode", e.mode},
                    {"bytes_raw", e.bytes_raw},
                    {"bytes_stored", e.bytes_stored},
                    {"verify", e.verify},
                    {"target", e.target}};
  if (e.verified_at) r["verified"] = format_utc(e.verified_at);
  if (!e.error.empty()) r["error"] = e.error;
  return r;
}

namespace {

// Format 2, --index-only or --sample: the index (size and hash against the
// manifest), then each chunk it names looked up, or read and re-hashed for
// the sampled share.
void verify_chunks(BackupTarget& target, const std::string& id, const ManifestFile& f,
                   const VerifyOptions& o, VerifyResult& r) {
  ChunkIndex idx;
  try {
    idx = read_index(target, id, f);
  } catch (const Error& e) {
    if (e.code() != Exit::bad_input) throw;
    r.problems.push_back(e.what());
    return;
  }
  if (!f.chunks_sha256.empty()) {
    // The chunks' digest from the index's ids (each chunk's own check is below).
    Sha256 digest;
    for (size_t i = 0; i < idx.chunks.size(); ++i) {
      uint64_t len = std::min<uint64_t>(idx.chunk_size, idx.size - i * idx.chunk_size);
      const std::string& c = idx.chunks[i].empty() ? zero_sha256(len) : idx.chunks[i];
      digest.update(c.data(), c.size());
      digest.update("\n", 1);
    }
    if (digest.hex() != f.chunks_sha256)
      r.problems.push_back(f.name + ": the chunks' digest differs from the manifest");
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < idx.chunks.size(); ++i) {
    const std::string& c = idx.chunks[i];
    if (c.empty() || !seen.insert(c).second) continue;
    throw_if_interrupt_requested();
    bool read = false;
    if (!o.index_only && !(o.checked && o.checked->count(c))) {
      if (o.sample_percent >= 100) {
        read = true;
      } else if (o.sample_percent > 0) {
        uint16_t x = 0;
        if (RAND_bytes(reinterpret_cast<unsigned char*>(&x), sizeof x) != 1)
          fail("no random bytes");
        read = x % 10000 < static_cast<unsigned>(o.sample_percent) * 100;
      }
    }
    uint64_t off = i * idx.chunk_size;
    uint64_t expect = std::min<uint64_t>(idx.chunk_size, idx.size - off);
    ++r.chunks_checked;
    if (auto p = check_chunk(target, c, read, expect))
      r.problems.push_back(f.name + ": " + *p + " (offset " + std::to_string(off) + ")");
    else if (read && o.checked)
      o.checked->insert(c);
  }
}

}  // namespace

VerifyResult verify_backup(BackupTarget& target, const std::string& id,
                           const VerifyOptions& options) {
  VerifyResult r;
  r.id = id;
  check_backup_id(id);
  if (!target.file_size(id + "/" + kManifestName)) {
    r.problems.push_back(!target.file_size(id) ? "backup directory missing"
                                               : "manifest.json missing (incomplete backup)");
    return r;
  }
  Manifest m;
  try {
    m = manifest_from_json(target.read_file(id + "/" + kManifestName));
  } catch (const Error& e) {
    r.problems.push_back(e.what());
    return r;
  }
  if (m.id != id) r.problems.push_back("manifest names backup " + quote(m.id));
  for (const auto& f : m.files) {
    if (f.compression == "chunks" && (options.index_only || options.sample_percent < 100)) {
      verify_chunks(target, id, f, options, r);
      continue;
    }
    auto p = check_stored_file(target, id, f);
    r.problems.insert(r.problems.end(), p.begin(), p.end());
    if (f.compression == "chunks") r.chunks_checked += (f.size + kChunkSize - 1) / kChunkSize;
  }
  // What restore would stop at, although every byte is as stored.
  if (r.problems.empty()) {
    auto read = [&](const ManifestFile& f) {
      std::string out;  // a descriptor; more than 1 MiB is reported as too large
      check_stored_file(target, id, f, [&](const char* d, size_t n) {
        if (out.size() <= (1u << 20))
          out.append(d, std::min<size_t>(n, (1u << 20) + 1 - out.size()));
      });
      return out;
    };
    for (auto& p : restore_blockers(m, read)) r.problems.push_back(std::move(p));
  }
  r.ok = r.problems.empty();
  return r;
}

std::optional<std::string> backup_presence_problem(BackupTarget& target, const std::string& id,
                                                   std::set<std::string>* known) {
  if (!is_backup_id(id)) return "not a well-formed backup id";
  if (!target.file_size(id + "/" + kManifestName))
    return !target.file_size(id) ? "backup directory missing" : "manifest.json missing";
  Manifest m;
  try {
    m = manifest_from_json(target.read_file(id + "/" + kManifestName));
  } catch (const Error& e) {
    return e.what();
  }
  if (m.id != id) return "its manifest names backup " + quote(m.id);
  for (const auto& f : m.files) {
    auto size = target.file_size(id + "/" + f.name);
    if (!size) return f.name + " missing";
    if (*size != f.stored_size)
      return f.name + " has " + std::to_string(*size) + " bytes, the manifest says " +
             std::to_string(f.stored_size);
    if (f.compression != "chunks") continue;
    ChunkIndex idx;
    try {
      idx = read_index(target, id, f);
    } catch (const Error& e) {
      if (e.code() != Exit::bad_input) throw;
      return e.what();
    }
    for (const auto& c : idx.chunks) {
      if (c.empty() || (known && known->count(c))) continue;
      if (auto p = check_chunk(target, c, false, 0)) return f.name + ": " + *p;
      if (known) known->insert(c);
    }
  }
  return std::nullopt;
}

ReindexResult reindex(BackupTarget& target, Catalog& catalog) {
  std::vector<CatalogEntry> rows;
  ReindexResult result;
  for (const auto& id : list_target(target).complete) {
    try {
      Manifest m = manifest_from_json(target.read_file(id + "/" + kManifestName));
      if (m.id != id) bad_input("its manifest names " + quote(m.id));
      rows.push_back(catalog_entry(m, target.url()));
    } catch (const Error& e) {
      if (e.code() == Exit::connection || e.code() == Exit::interrupted) throw;
      result.bad.push_back(id + ": " + e.what());
    }
  }
  // Verification results of backups still there are kept.
  std::map<std::string, CatalogEntry> old;
  for (auto& e : catalog.list(target.url())) old[e.id] = e;
  catalog.begin();
  try {
    catalog.remove_target(target.url());
    for (auto& r : rows) {
      if (auto it = old.find(r.id); it != old.end() && it->second.status == "complete") {
        r.verify = it->second.verify;
        r.verified_at = it->second.verified_at;
      }
      catalog.put(r);
    }
    catalog.commit();
  } catch (...) {
    catalog.rollback();
    throw;
  }
  result.indexed = rows.size();
  return result;
}

// ---- the chunk sweep ----

namespace {

// A sweep's or run's owner record: this machine's is alive while its
// process is; another machine's for kSweepGraceSeconds after it started.
bool owner_alive(const ordered_json& o) {
  if (!o.is_object() || !o.contains("host") || !o["host"].is_string()) return true;
  int64_t started = o.value("started", int64_t{0});
  if (o["host"].get<std::string>() != hostname()) return started + kSweepGraceSeconds > unix_now();
  return process_exists(o.value("pid", int64_t{0}));
}

ordered_json parse_owner(const std::string& text) {
  try {
    return ordered_json::parse(text);
  } catch (const std::exception&) {
    return nullptr;
  }
}

}  // namespace

void wait_for_sweep(BackupTarget& target, const std::function<void(const std::string&)>& note) {
  bool told = false;
  for (;;) {
    auto owner = sweep_lock_owner(target);
    if (!owner) return;
    ordered_json o = parse_owner(*owner);
    if (!owner_alive(o)) {
      if (o.is_object() && o.value("host", "") == hostname()) {
        note("removing the lock of a chunk sweep that died (" + describe_run(o) + ")");
        release_sweep_lock(target);
      } else {
        note("ignoring the lock of a chunk sweep older than the grace period (" + describe_run(o) +
             ")");
      }
      return;
    }
    if (!told)
      note("waiting for the chunk sweep at " + target.url() + " (" + describe_run(o) + ")");
    told = true;
    throw_if_interrupt_requested();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

SweepResult sweep_chunks(BackupTarget& target, bool dry_run) {
  SweepResult r;
  ordered_json me = {
      {"sweep", true}, {"host", hostname()}, {"pid", getpid()}, {"started", unix_now()}};
  // A dry run writes nothing, not even the lock: it reports what a sweep
  // would remove now.
  bool locked = dry_run || take_sweep_lock(target, me.dump() + "\n");
  if (!locked) {
    auto owner = sweep_lock_owner(target);
    ordered_json o = parse_owner(owner.value_or(""));
    if (owner && !owner_alive(o) && o.is_object() && o.value("host", "") == hostname()) {
      release_sweep_lock(target);  // a dead sweep of this machine
      locked = take_sweep_lock(target, me.dump() + "\n");
    }
    if (!locked) {
      r.why = "another chunk sweep holds " + target.url() + "/" + kGcLock + " (" + describe_run(o) +
              ")";
      return r;
    }
  }
  struct Unlock {
    BackupTarget& t;
    bool held;
    ~Unlock() {
      if (!held) return;
      try {
        release_sweep_lock(t);
      } catch (const Error&) {
        // The next sweep of this machine removes it (its process is gone).
      }
    }
  } unlock{target, !dry_run};
  // The lock is ours: runs that start now wait for us. Runs that started
  // before may rely on chunks no index names yet.
  auto listing = list_target(target);
  for (const auto& id : listing.incomplete) {
    ordered_json marker = read_marker(target, id);
    bool alive = !is_marker(marker) ||
                 (marker.value("host", "") == hostname() ? run_alive(marker) : owner_alive(marker));
    if (alive) {
      r.why = "backup run " + id + " is in progress (" + describe_run(marker) +
              "); its chunks are not published yet";
      return r;
    }
  }
  // Mark: every chunk an index of a complete backup names.
  std::set<std::string> marked;
  for (const auto& id : listing.complete) {
    Manifest m;
    try {
      m = manifest_from_json(target.read_file(id + "/" + kManifestName));
      for (const auto& f : m.files) {
        if (f.compression != "chunks") continue;
        for (auto& c : read_index(target, id, f).chunks)
          if (!c.empty()) marked.insert(std::move(c));
      }
    } catch (const Error& e) {
      if (e.code() != Exit::bad_input) throw;
      r.why = "backup " + id + " cannot be read (" + e.what() + "); what it names is unknown";
      return r;
    }
  }
  r.referenced = marked.size();
  // Sweep.
  auto chunks = list_chunks(target);
  r.present = chunks.ids.size();
  auto remove = [&](const std::string& path) {
    r.bytes_removed += target.file_size(path).value_or(0);
    if (!dry_run) target.remove_tree(path);
    r.removed.push_back(path);
  };
  for (const auto& c : chunks.ids)
    if (!marked.count(c)) remove(chunk_path(c));
  for (const auto& t : chunks.temporary) remove(t);
  r.swept = true;
  return r;
}

std::vector<PruneDecision> plan_prune(const std::vector<CatalogEntry>& entries,
                                      const RetentionPolicy& policy,
                                      const PresenceCheck& presence) {
  std::map<std::string, std::vector<const CatalogEntry*>> groups;  // target + VM
  for (const auto& e : entries) groups[e.target + "\n" + e.vm_key()].push_back(&e);
  std::vector<PruneDecision> out;
  for (auto& [key, list] : groups) {
    // Newest first. Times have one-second resolution: within a second a
    // failed run counts as the newer one (when in doubt, hold).
    std::stable_sort(list.begin(), list.end(), [](auto* a, auto* b) {
      bool af = a->status != "complete", bf = b->status != "complete";
      return std::tie(a->created, af, a->id) > std::tie(b->created, bf, b->id);
    });
    // The catalog is an index: only backups present at the target count.
    // One that is not is neither kept by a rule nor removed (gc forgets it).
    std::vector<const CatalogEntry*> present;
    for (auto* e : list) {
      if (e->status == "complete" && presence)
        if (auto why = presence(*e)) {
          out.push_back({*e, true, {"missing: " + *why}, true});
          continue;
        }
      present.push_back(e);
    }
    if (present.empty()) continue;
    const CatalogEntry* newest = present.front();
    std::string hold;
    if (newest->status != "complete")
      hold = "newest backup " + newest->id + " failed";
    else if (newest->verify == "failed")
      hold = "newest backup " + newest->id + " failed verification";
    if (!hold.empty()) {
      for (auto* e : present) out.push_back({*e, true, {"held: " + hold}});
      continue;
    }
    std::vector<RetentionItem> items;
    std::map<std::string, const CatalogEntry*> by_id;
    int64_t newest_complete = 0;
    for (auto* e : present)
      if (e->status == "complete") {
        items.push_back({e->id, e->created});
        by_id[e->id] = e;
        newest_complete = std::max(newest_complete, e->created);
      }
    bool first = true;
    for (auto& d : apply_retention(items, policy)) {
      // Whatever the rules say (--keep-within 0h), a VM keeps its newest
      // restorable backup.
      if (first && !d.keep) {
        d.keep = true;
        d.reasons.push_back("newest");
      }
      first = false;
      out.push_back({*by_id[d.id], d.keep, d.reasons});
    }
    for (auto* e : present)
      if (e->status != "complete")
        out.push_back({*e, e->created > newest_complete,
                       e->created > newest_complete ? std::vector<std::string>{"failed run"}
                                                    : std::vector<std::string>{}});
  }
  return out;
}

}  // namespace ceso
