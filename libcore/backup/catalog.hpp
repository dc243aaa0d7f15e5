// The backup catalog: an SQLite database in
// ${XDG_STATE_HOME:-~/.local/state}/ceso/backups.db (WAL, busy timeout,
// schema versioned with PRAGMA user_version and migrated on open).
//
// The catalog is an index: the target's manifests are the truth, and
// `ceso-backup reindex` rebuilds the rows of a target from them. Failed runs
// have a row too (status "failed"), so retention can refuse to prune a VM
// whose newest backup failed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace ceso {

struct CatalogEntry {
  std::string id;
  std::string target;  // target URL
  std::string endpoint, vm_id, vm_name, vm_uuid;
  int64_t created = 0;  // UTC seconds
  std::string status;   // "complete" | "failed"
  std::string mode;     // "hot" | "cold" | "off"
  uint64_t bytes_raw = 0, bytes_stored = 0;
  std::string verify = "unverified";  // "unverified" | "ok" | "failed"
  int64_t verified_at = 0;
  std::string error;  // why a failed run failed

  // VMs are grouped by endpoint + BIOS uuid (names change), name as fallback.
  std::string vm_key() const;
};

// Opens (creating) the SQLite database at `path` as every file ceso keeps:
// made 0600 (its directories 0700) before SQLite opens it, which then gives
// its -wal, -shm and -journal files the same mode; shared by processes (30 s
// busy timeout, WAL) with `synchronous` as given ("NORMAL", or "OFF" for a
// cache). `what` names it in errors ("the backup catalog"). The caller owns
// the handle; on an error none is left open.
sqlite3* open_private_database(const std::string& path, const std::string& what,
                               const char* synchronous);

class Catalog {
 public:
  // Opens (creating it and its directory) and migrates to the current schema.
  explicit Catalog(const std::string& path);
  ~Catalog();
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  static std::string default_path();
  static constexpr int kSchemaVersion = 2;
  int schema_version();

  void put(const CatalogEntry& entry);  // insert or replace by id
  // Insert only: false (nothing changed) when a row with this id exists.
  bool insert(const CatalogEntry& entry);
  std::optional<CatalogEntry> find(const std::string& id);
  // Every entry, oldest first; `target` non-empty: only that target's.
  std::vector<CatalogEntry> list(const std::string& target = {});
  void set_verify(const std::string& id, const std::string& result, int64_t at);
  void remove(const std::string& id);
  // Drops every row of a target (reindex).
  void remove_target(const std::string& target);

  // Several statements as one transaction.
  void begin();
  void commit();
  void rollback();  // never throws

 private:
  sqlite3* db_ = nullptr;
  std::string path_;
  void exec(const char* sql);
  void migrate();
  void write(const CatalogEntry& entry, const char* verb);
};

}  // namespace ceso
