// ceso-backup's logic: hot/cold backups of VMs to a target, verification,
// garbage collection, reindexing and retention over the catalog.
//
// A backup is a directory <id>/ at the target holding each file compressed
// with zstd (`NAME.zst`) and manifest.json, written last:
//   files → fsync → manifest.json.tmp → fsync → rename → catalog row.
// The directory is created exclusively (mkdir fails when it exists), so a
// run owns it; a failing run removes only a directory it created. While a
// run is writing, <id>/.in-progress names the run (id, machine, pid, the
// VM's lock), so `gc` (and the next run of the same VM) can tell a live run
// from a killed one; `gc` touches nothing else.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "backup/catalog.hpp"
#include "backup/manifest.hpp"
#include "backup/retention.hpp"
#include "base/progress.hpp"
#include "base/records.hpp"
#include "safety/policy.hpp"
#include "transport/target.hpp"
#include "vm/vm.hpp"

namespace ceso {

class VmWriters;

// Interruption: a backup run defers SIGINT/SIGTERM (DeferredInterrupts,
// base/cancel.hpp) and stops at interrupt_requested() checkpoints.

// ---- the stored stream ----

// Compresses (zstd, multi-threaded) what is written to it and hashes both the
// raw and the stored bytes on the way to a target file. Memory stays bounded
// whatever the size.
class StoredFileWriter {
 public:
  StoredFileWriter(std::unique_ptr<TargetWriter> out, int level, int threads);
  ~StoredFileWriter();
  StoredFileWriter(const StoredFileWriter&) = delete;
  StoredFileWriter& operator=(const StoredFileWriter&) = delete;
  void write(const char* data, size_t size);
  // Ends the zstd frame, syncs the file and fills in sizes and hashes.
  void finish(ManifestFile& file);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads a stored file back: decompressed on the fly (pull), both streams
// hashed on the way. problems() (after read() returned 0) lists what is
// wrong: "missing", sizes, hashes, a corrupt or truncated stream; empty when
// the bytes read are exactly the ones backed up.
class StoredFileReader {
 public:
  StoredFileReader(BackupTarget& target, const std::string& dir, const ManifestFile& file);
  ~StoredFileReader();
  StoredFileReader(const StoredFileReader&) = delete;
  StoredFileReader& operator=(const StoredFileReader&) = delete;
  // Up to `size` raw bytes; 0 at the end (also of a missing or corrupt file).
  size_t read(char* data, size_t size);
  std::vector<std::string> problems();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Re-reads a stored file, decompresses it fully and re-hashes both streams.
// Returns the problems found ("missing", size or hash mismatches, corrupt
// stream); empty when the file is intact. `sink` (optional) gets the raw bytes.
std::vector<std::string> check_stored_file(
    BackupTarget& target, const std::string& dir, const ManifestFile& file,
    const std::function<void(const char*, size_t)>& sink = nullptr);

// ---- backups ----

struct BackupOptions {
  std::string mode = "hot";  // "hot" | "cold"
  bool quiesce = false;
  bool force = false;  // cold: hard power-off after `timeout`
  std::chrono::seconds timeout{300};
  int level = 3;    // zstd level
  int threads = 0;  // zstd workers; 0: one per CPU (max 8)
  int retries = 5;
  std::chrono::milliseconds backoff{1000};
  uint64_t limit_rate = 0;  // bytes/s per download; 0: unlimited
  // 1: each file one zstd stream; 2: disk data in the target's chunk store
  // (backup/chunks.hpp), deduplicated across VMs and backups.
  int format = 1;
  // Format 2, hot: Changed Block Tracking (docs/backup.md "Incremental with
  // CBT"): enable it if needed, read only the areas changed since the
  // previous backup of the VM at this target, take the rest from its index.
  bool cbt = false;
  // Test hook (CESO_BACKUP_TEST_ID): use this id instead of a fresh one, to
  // exercise id collisions. Never set it in production.
  std::string forced_id;
};

// Everything a run shares between its VMs (and -j workers).
struct BackupContext {
  Gate& gate;
  Catalog& catalog;
  BackupTarget& target;
  Progress& progress;
  std::function<void(const std::string&)> warn;  // diagnostics naming the VM
  // The writers of the run's changes (snapshot, power; vm/writer.hpp): over
  // SSH on a free-licensed host. Null: the API. Reads and the disk copy stay
  // on the API session (/folder GET is allowed on a free licence).
  VmWriters* writers = nullptr;
};

// "web 01" at 2026-11-22 03:00:00 → "web_01-20261122T030000Z-4f3a9c0e12d7b658"
// (64 random bits).
std::string make_backup_id(const std::string& vm_name, int64_t now);

// Backup ids typed by a user or read from a target are untrusted. A
// well-formed id is 1-128 characters of [A-Za-z0-9._-], not starting with
// '.' or '-' (so never "", ".", "..", a path, or a name with a newline).
bool is_backup_id(std::string_view id);
// Throws Error(bad_input) naming the id and what is wrong with it.
void check_backup_id(std::string_view id);

// The id that <id>/manifest.json at the target names: nullopt when there is
// no manifest; Error(bad_input) when it cannot be read as one.
std::optional<std::string> manifest_id_at(BackupTarget& target, const std::string& id);

// Backs up one VM; returns the `backup` field of its output record, or null
// in --dry-run (the plan records went to the gate's plan sink). `record`
// receives the VM's `vm` record as read for the backup (the tool passes it
// through with the input record, base/records.hpp pass_through). Throws
// Error; the snapshot is removed (and the power state restored) before it does.
ordered_json backup_vm(const LocatedVm& vm, const BackupOptions& options, BackupContext& ctx,
                       ordered_json& record);

// ---- catalog operations ----

// The `backup` record of a catalog entry (ls, rm, verify output).
ordered_json backup_record(const CatalogEntry& e);

struct VerifyResult {
  std::string id;
  bool ok = false;
  std::vector<std::string> problems;  // "disk0-flat.vmdk.zst: sha256 mismatch"
  uint64_t chunks_checked = 0;        // format 2: chunks read (or looked up) for this backup
};
// How much of a format 2 backup's chunks verify reads. Format 1 backups
// are always read whole.
struct VerifyOptions {
  bool index_only = false;   // chunks: presence only (no reads)
  int sample_percent = 100;  // chunks: read this share, picked at random; the rest: presence
  // Chunks already read and found good by this verify run (several
  // backups share chunks): not read again. May be null.
  std::set<std::string>* checked = nullptr;
};
VerifyResult verify_backup(BackupTarget& target, const std::string& id,
                           const VerifyOptions& options = {});

// The entries at a target's root: complete backups (a directory with a
// well-formed id and a manifest.json), runs in progress or killed (a
// directory with a well-formed id, ceso's .in-progress marker and no
// manifest), and everything else (`foreign`: files, lost+found, directories
// without a marker). Nothing foreign is ever removed by ceso.
struct TargetListing {
  std::vector<std::string> complete;
  std::vector<std::string> incomplete;
  std::vector<std::string> foreign;
};
TargetListing list_target(BackupTarget& target);

// Removes leftovers of killed runs: directories carrying ceso's
// .in-progress marker, without a manifest, whose run is dead (on this
// machine: its lock is free and its process gone; a run of another machine
// counts as alive). Returns the ids removed; `in_progress` gets the ids
// skipped because their run may still be going.
std::vector<std::string> collect_garbage(BackupTarget& target, bool dry_run,
                                         std::vector<std::string>* in_progress = nullptr);

// Rebuilds the target's catalog rows from its manifests: every good one is
// indexed, each bad one (unreadable, malformed, naming another id) is named
// in `bad` ("ID: reason") and left out.
struct ReindexResult {
  size_t indexed = 0;
  std::vector<std::string> bad;
};
ReindexResult reindex(BackupTarget& target, Catalog& catalog);

// Whether a backup at its target is present as the catalog says: its
// manifest names it and every file it lists has the stored size. Returns
// the first problem, or nullopt when present (no hashes are computed).
// Format 2: every chunk its indexes name is present too (`known` caches
// chunks found present, across the backups of one prune; may be null).
std::optional<std::string> backup_presence_problem(BackupTarget& target, const std::string& id,
                                                   std::set<std::string>* known = nullptr);

// ---- the chunk sweep (format 2) ----

// Another machine's run or sweep cannot be checked from here: it counts as
// alive for this long after it started.
inline constexpr int64_t kSweepGraceSeconds = 24 * 3600;

struct SweepResult {
  bool swept = false;  // false: nothing removed, `why` says why
  std::string why;
  size_t referenced = 0, present = 0;  // chunks named by indexes; chunks at the target
  std::vector<std::string> removed;    // chunk paths (and leftover temporary uploads)
  uint64_t bytes_removed = 0;
};

// Mark and sweep of the target's chunks: removes those no complete backup's
// index names. Safe against backups running at the same time: the sweep
// takes the target's .gc-lock (exclusive mkdir) and only then looks at the
// runs in progress; while any may be alive (this machine: its lock is held;
// another machine: less than kSweepGraceSeconds since it started) it
// removes nothing. A run writes its marker first and then waits while a live
// sweep holds the lock (wait_for_sweep), so a chunk a run relies on is
// either protected by its marker or looked up after the sweep. An index that
// cannot be read stops the sweep too (what it names is unknown).
SweepResult sweep_chunks(BackupTarget& target, bool dry_run);

// A backup run, after its marker is written: waits while a live sweep holds
// the target's lock; the lock of a dead sweep of this machine is removed.
void wait_for_sweep(BackupTarget& target, const std::function<void(const std::string&)>& note);

}  // namespace ceso

namespace ceso {

// What prune does with each backup: retention per VM and target over the
// complete backups that are present at the target (`presence` returns why a
// backup is not, or nullopt; such a backup is neither counted nor removed:
// reason "missing: …"); a VM whose newest run failed or whose newest backup
// failed verification keeps everything (reason says why); the newest present
// backup of a VM is always kept, whatever the rules. Failed runs older than
// the VM's newest complete backup are dropped (they hold no data).
struct PruneDecision {
  CatalogEntry entry;
  bool keep = true;
  std::vector<std::string> reasons;
  bool missing = false;  // not present at the target (see above)
};
using PresenceCheck = std::function<std::optional<std::string>(const CatalogEntry&)>;
std::vector<PruneDecision> plan_prune(const std::vector<CatalogEntry>& entries,
                                      const RetentionPolicy& policy,
                                      const PresenceCheck& presence = nullptr);

}  // namespace ceso
