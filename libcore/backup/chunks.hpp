// The chunk store of backup format 2 (docs/backup.md, "Format 2").
//
// A disk's data file is cut into fixed 4 MiB chunks. Each chunk is stored
// once per target under chunks/<first two hex digits>/<SHA-256 of its raw
// bytes>, as one zstd frame; an all-zero chunk is never stored. The backup
// directory holds, per data file, an index NAME.idx (text: a header, then one
// line per chunk: its id, or "0" for an all-zero chunk), and the manifest
// carries the index's size and SHA-256 (stored_size, stored_sha256) next to
// the raw size and SHA-256 of the whole file. Everything goes through the
// BackupTarget interface only (file://, sftp://, and any later scheme).
//
// Which chunks a target holds is cached locally (an SQLite file per target in
// the cache directory). The cache only ever says "probably present": a hit is
// confirmed at the target (file_size, or a listing of the target's chunks
// taken by the same run: plan_lookups) before a backup relies on it, and a
// miss is uploaded. So a chunk lost behind ceso's back is uploaded again, never
// assumed present. On a target whose create() is atomic (S3) a chunk is
// written under its final name at once: one request a new chunk.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "backup/manifest.hpp"
#include "base/digest.hpp"
#include "transport/target.hpp"

namespace ceso {

inline constexpr uint64_t kChunkSize = uint64_t{4} << 20;
inline constexpr const char* kChunkDir = "chunks";
// Taken (exclusive mkdir) by a chunk sweep; a backup run waits while it is held.
inline constexpr const char* kGcLock = ".gc-lock";
inline constexpr const char* kIndexMagic = "ceso-chunk-index 1";

std::string sha256_hex(const void* data, size_t size);
// SHA-256 of `size` zero bytes (an all-zero chunk's hash in chunks_sha256).
const std::string& zero_sha256(size_t size);

// 64 lowercase hex digits.
bool is_chunk_id(std::string_view id);
// "chunks/ab/ab12…"; Error(bad_input) for a malformed id.
std::string chunk_path(const std::string& id);

struct ChunkIndex {
  uint64_t size = 0;  // raw bytes of the file
  uint64_t chunk_size = kChunkSize;
  std::vector<std::string> chunks;  // one per chunk_size bytes; "" = all zero
};
std::string index_text(const ChunkIndex& index);
// Error(bad_input) naming the line for anything but a well-formed index
// (hostile input: it comes from the target).
ChunkIndex parse_index(const std::string& text);
// Reads NAME.idx of backup `dir` and checks it against the manifest entry
// (size and SHA-256 of the index, raw size). Error(bad_input) saying why.
ChunkIndex read_index(BackupTarget& target, const std::string& dir, const ManifestFile& file);

struct ChunkStats {
  uint64_t chunks = 0, zero = 0, reused = 0, uploaded = 0;
  uint64_t bytes_uploaded = 0;  // stored (compressed) bytes of new chunks
  void add(const ChunkStats& o);
};

// The chunks of one target: presence (cache confirmed at the target) and
// uploads (to a temporary name, committed, then renamed into place, so a
// chunk at its final name is always whole).
class ChunkStore {
 public:
  // `cache_path` "" = no cache (every chunk is looked up at the target).
  ChunkStore(BackupTarget& target, int level, const std::string& cache_path);
  ~ChunkStore();
  ChunkStore(const ChunkStore&) = delete;
  ChunkStore& operator=(const ChunkStore&) = delete;
  BackupTarget& target() { return target_; }
  // Whether the target holds chunk `id`: a cache hit is confirmed at the
  // target; a cache miss is taken as absent (it is then uploaded).
  bool present(const std::string& id);
  // This run will look up about `lookups` chunks. Where one listing of the
  // target's chunks costs fewer requests than that many presence checks
  // (S3: 1,000 names a request, estimated from the cache's size), the
  // chunks are listed now and that listing, taken by this run at the
  // target, answers present() from then on; otherwise each cache hit is
  // confirmed at the target.
  void plan_lookups(uint64_t lookups);
  // Stores raw bytes under `id` (compressed); returns the stored size.
  // The chunk file is synced; its rename is made durable by sync().
  uint64_t upload(const std::string& id, const char* data, size_t size);
  // Makes the renames of the chunks uploaded so far durable (sync_dir of
  // each chunks/xx they went to), before an index may name them.
  void sync();
  // The cache file of a target URL: $XDG_CACHE_HOME/ceso/chunks/<hash>.db.
  static std::string cache_path_for(const std::string& url);
  // Rebuilds the cache from a listing of the target's chunks/ (reindex).
  // Returns the number of chunks found.
  size_t rebuild_cache();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  BackupTarget& target_;
};

// Writes one data file as chunks plus its index NAME.idx. The calling thread
// only copies into chunk buffers; the whole file is hashed on a thread of its
// own, and a pool of workers (one per CPU, 2 to 3) hashes, looks up,
// compresses and uploads the chunks; a fixed number of buffers bounds memory.
class ChunkedFileWriter {
 public:
  ChunkedFileWriter(ChunkStore& store, std::string index_path);
  ~ChunkedFileWriter();
  ChunkedFileWriter(const ChunkedFileWriter&) = delete;
  ChunkedFileWriter& operator=(const ChunkedFileWriter&) = delete;
  void write(const char* data, size_t size);
  // CBT: the next chunk (at a chunk boundary) is chunk `id` of the previous
  // backup's index, `size` raw bytes ("" = all zero), without its bytes.
  // Returns false, adding nothing, when the target does not hold it (the
  // caller then reads those bytes and write()s them): a chunk missing at the
  // target is never assumed present. The file's whole SHA-256 is then
  // unknown: finish() leaves `sha256` empty and chunks_sha256 is the check.
  bool add_known(const std::string& id, uint64_t size);
  // Waits for the uploads, writes and syncs the index, fills in `file`
  // (size, sha256 of the raw bytes; stored_size, stored_sha256 of the
  // index; compression "chunks"; chunks_sha256).
  void finish(ManifestFile& file);
  const ChunkStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads a chunked file back (pull): every chunk decompressed and its
// SHA-256 checked against its id, the whole file against the manifest.
// Same contract as StoredFileReader (which delegates to it).
class ChunkedFileReader {
 public:
  ChunkedFileReader(BackupTarget& target, const std::string& dir, const ManifestFile& file);
  ~ChunkedFileReader();
  size_t read(char* data, size_t size);
  std::vector<std::string> problems();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Checks one chunk at the target: presence (`read` false: file_size only),
// or presence, decompression and hash. Returns the problem or nullopt.
std::optional<std::string> check_chunk(BackupTarget& target, const std::string& id, bool read,
                                       uint64_t expect_size);

// ---- what the sweep works with (the sweep itself: backup.hpp) ----

// Every file under chunks/: chunk ids at their final name, and other files
// (leftover temporary uploads "ID.RANDOM.tmp", anything foreign) by path.
struct ChunkListing {
  std::vector<std::string> ids;
  std::vector<std::string> temporary;  // paths of leftover uploads
};
ChunkListing list_chunks(BackupTarget& target);
// The same from a flat listing, page by page (`id` per chunk, `temporary`
// per leftover upload); false, calling nothing, where the target has none.
bool each_chunk(BackupTarget& target, const std::function<void(const std::string&)>& id,
                const std::function<void(const std::string&)>& temporary);

// The sweep's lock: an exclusive mkdir of .gc-lock holding owner.json.
// take_sweep_lock returns false when it exists already (another sweep).
bool take_sweep_lock(BackupTarget& target, const std::string& owner_json);
void release_sweep_lock(BackupTarget& target);
// The owner record of a held lock; nullopt when there is no lock ("" when
// it cannot be read).
std::optional<std::string> sweep_lock_owner(BackupTarget& target);

}  // namespace ceso
