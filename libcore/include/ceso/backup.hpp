// ceso-backup's logic: hot/cold backups of VMs to a target, verification,
// garbage collection, reindexing and retention over the catalog.
//
// A backup is a directory <id>/ at the target holding each file compressed
// with zstd (`NAME.zst`) and manifest.json, written last:
//   files → fsync → manifest.json.tmp → fsync → rename → catalog row.
// While a run is writing, <id>/.in-progress names the VM's lock, so `gc` (and
// the next run of the same VM) can tell a live run from a killed one.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ceso/catalog.hpp"
#include "ceso/manifest.hpp"
#include "ceso/policy.hpp"
#include "ceso/progress.hpp"
#include "ceso/records.hpp"
#include "ceso/retention.hpp"
#include "ceso/target.hpp"
#include "ceso/vm.hpp"

namespace ceso {

// ---- interruption ----

// SIGINT/SIGTERM for a backup run: replaces run_tool's handlers so that a
// signal stops the copy but still lets the cleanup (removing the snapshot,
// powering the VM back on) talk to the host. Call once from the tool.
void defer_interrupts();
bool interrupt_requested();
void throw_if_interrupt_requested();

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
};

// Everything a run shares between its VMs (and -j workers).
struct BackupContext {
  Gate& gate;
  Catalog& catalog;
  BackupTarget& target;
  Progress& progress;
  std::function<void(const std::string&)> warn;  // diagnostics naming the VM
};

// "web 01" at 2026-11-22 03:00:00 → "web_01-20261122T030000Z-4f3a".
std::string make_backup_id(const std::string& vm_name, int64_t now);

// Backs up one VM; returns the `backup` field of its output record, or null
// in --dry-run (the plan records went to the gate's plan sink). `record` is
// the input record; an empty one is replaced by the VM's record. Throws
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
};
VerifyResult verify_backup(BackupTarget& target, const std::string& id);

// Backup directories of a target: complete (with a manifest) or not.
struct TargetListing {
  std::vector<std::string> complete;
  std::vector<std::string> incomplete;
};
TargetListing list_target(BackupTarget& target);

// Removes leftovers of killed runs: directories without a manifest whose run
// is not alive on this machine. Returns the ids removed; `in_progress` gets
// the ids skipped because their run still holds its lock.
std::vector<std::string> collect_garbage(BackupTarget& target, bool dry_run,
                                         std::vector<std::string>* in_progress = nullptr);

// Rebuilds the target's catalog rows from its manifests; returns the count.
size_t reindex(BackupTarget& target, Catalog& catalog);

}  // namespace ceso

namespace ceso {

// What prune does with each backup: retention per VM and target over the
// complete backups; a VM whose newest run failed or whose newest backup
// failed verification keeps everything (reason says why). Failed runs older
// than the VM's newest complete backup are dropped (they hold no data).
struct PruneDecision {
  CatalogEntry entry;
  bool keep = true;
  std::vector<std::string> reasons;
};
std::vector<PruneDecision> plan_prune(const std::vector<CatalogEntry>& entries,
                                      const RetentionPolicy& policy);

}  // namespace ceso
