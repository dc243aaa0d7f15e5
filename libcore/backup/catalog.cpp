#include "backup/catalog.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "base/error.hpp"
#include "config/config.hpp"

namespace ceso {

namespace {

// Each step migrates from version i to i+1; never edit a released step.
const char* const kMigrations[] = {
    // 0 → 1
    "CREATE TABLE backups ("
    " id TEXT PRIMARY KEY, target TEXT NOT NULL, endpoint TEXT NOT NULL, vm_id TEXT NOT NULL,"
    " vm_name TEXT NOT NULL, vm_uuid TEXT NOT NULL, created INTEGER NOT NULL,"
    " status TEXT NOT NULL, mode TEXT NOT NULL, bytes_raw INTEGER NOT NULL,"
    " bytes_stored INTEGER NOT NULL, error TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX backups_vm ON backups(endpoint, vm_uuid, created);",
    // 1 → 2: verification results
    "ALTER TABLE backups ADD COLUMN verify TEXT NOT NULL DEFAULT 'unverified';"
    "ALTER TABLE backups ADD COLUMN verified_at INTEGER NOT NULL DEFAULT 0;",
};
static_assert(std::size(kMigrations) == Catalog::kSchemaVersion);

struct StmtDeleter {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

const char* kColumns =
    "id, target, endpoint, vm_id, vm_name, vm_uuid, created, status, mode, bytes_raw,"
    " bytes_stored, error, verify, verified_at";

std::string text_col(sqlite3_stmt* s, int i) {
  auto* t = sqlite3_column_text(s, i);
  return t ? reinterpret_cast<const char*>(t) : "";
}

CatalogEntry row(sqlite3_stmt* s) {
  CatalogEntry e;
  e.id = text_col(s, 0);
  e.target = text_col(s, 1);
  e.endpoint = text_col(s, 2);
  e.vm_id = text_col(s, 3);
  e.vm_name = text_col(s, 4);
  e.vm_uuid = text_col(s, 5);
  e.created = sqlite3_column_int64(s, 6);
  e.status = text_col(s, 7);
  e.mode = text_col(s, 8);
  e.bytes_raw = static_cast<uint64_t>(sqlite3_column_int64(s, 9));
  e.bytes_stored = static_cast<uint64_t>(sqlite3_column_int64(s, 10));
  e.error = text_col(s, 11);
  e.verify = text_col(s, 12);
  e.verified_at = sqlite3_column_int64(s, 13);
  return e;
}

}  // namespace

std::string CatalogEntry::vm_key() const {
  return endpoint + "/" + (vm_uuid.empty() ? "name:" + vm_name : vm_uuid);
}

sqlite3* open_private_database(const std::string& path, const std::string& what,
                               const char* synchronous) {
  int fd = open_private_file(path, O_RDWR);
  if (fd < 0) fail("cannot open " + what + " " + quote(path) + ": " + std::strerror(errno));
  ::close(fd);
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    fail("cannot open " + what + " " + quote(path) + ": " + msg);
  }
  // Several ceso processes (and -j workers) share the file.
  sqlite3_busy_timeout(db, 30000);
  const std::string pragmas =
      std::string("PRAGMA journal_mode=WAL; PRAGMA synchronous=") + synchronous + ";";
  char* err = nullptr;
  if (sqlite3_exec(db, pragmas.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db);
    sqlite3_free(err);
    sqlite3_close(db);
    fail(what + " " + quote(path) + ": " + msg);
  }
  return db;
}

Catalog::Catalog(const std::string& path)
    : db_(open_private_database(path, "the backup catalog", "NORMAL")), path_(path) {
  try {
    migrate();
  } catch (...) {
    // No destructor runs for a constructor that throws: close here.
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

Catalog::~Catalog() { sqlite3_close(db_); }

std::string Catalog::default_path() { return state_dir() + "/backups.db"; }

void Catalog::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    fail("backup catalog " + quote(path_) + ": " + msg);
  }
}

int Catalog::schema_version() {
  sqlite3_stmt* raw = nullptr;
  sqlite3_prepare_v2(db_, "PRAGMA user_version", -1, &raw, nullptr);
  Stmt s(raw);
  return s && sqlite3_step(s.get()) == SQLITE_ROW ? sqlite3_column_int(s.get(), 0) : 0;
}

void Catalog::migrate() {
  exec("BEGIN IMMEDIATE");
  try {
    int v = schema_version();
    if (v > kSchemaVersion)
      fail("backup catalog " + quote(path_) + " has schema version " + std::to_string(v) +
           ", newer than this ceso-backup understands (" + std::to_string(kSchemaVersion) + ")");
    for (; v < kSchemaVersion; ++v) {
      exec(kMigrations[v]);
      exec(("PRAGMA user_version=" + std::to_string(v + 1)).c_str());
    }
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void Catalog::begin() { exec("BEGIN IMMEDIATE"); }
void Catalog::commit() { exec("COMMIT"); }
void Catalog::rollback() { sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr); }

namespace {

Stmt prepare(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK)
    fail(std::string("backup catalog: ") + sqlite3_errmsg(db));
  return Stmt(raw);
}

void bind(sqlite3_stmt* s, int i, const std::string& v) {
  sqlite3_bind_text(s, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}
void bind(sqlite3_stmt* s, int i, int64_t v) { sqlite3_bind_int64(s, i, v); }

void step_done(sqlite3* db, sqlite3_stmt* s) {
  if (sqlite3_step(s) != SQLITE_DONE) fail(std::string("backup catalog: ") + sqlite3_errmsg(db));
}

}  // namespace

void Catalog::put(const CatalogEntry& e) { write(e, "INSERT OR REPLACE"); }

bool Catalog::insert(const CatalogEntry& e) {
  write(e, "INSERT OR IGNORE");
  return sqlite3_changes(db_) > 0;
}

void Catalog::write(const CatalogEntry& e, const char* verb) {
  auto s = prepare(db_, std::string(verb) + " INTO backups (" + kColumns +
                            ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  bind(s.get(), 1, e.id);
  bind(s.get(), 2, e.target);
  bind(s.get(), 3, e.endpoint);
  bind(s.get(), 4, e.vm_id);
  bind(s.get(), 5, e.vm_name);
  bind(s.get(), 6, e.vm_uuid);
  bind(s.get(), 7, e.created);
  bind(s.get(), 8, e.status);
  bind(s.get(), 9, e.mode);
  bind(s.get(), 10, static_cast<int64_t>(e.bytes_raw));
  bind(s.get(), 11, static_cast<int64_t>(e.bytes_stored));
  bind(s.get(), 12, e.error);
  bind(s.get(), 13, e.verify);
  bind(s.get(), 14, e.verified_at);
  step_done(db_, s.get());
}

std::optional<CatalogEntry> Catalog::find(const std::string& id) {
  auto s = prepare(db_, std::string("SELECT ") + kColumns + " FROM backups WHERE id = ?");
  bind(s.get(), 1, id);
  if (sqlite3_step(s.get()) == SQLITE_ROW) return row(s.get());
  return std::nullopt;
}

std::vector<CatalogEntry> Catalog::list(const std::string& target) {
  std::string sql = std::string("SELECT ") + kColumns + " FROM backups";
  if (!target.empty()) sql += " WHERE target = ?";
  sql += " ORDER BY created, id";
  auto s = prepare(db_, sql);
  if (!target.empty()) bind(s.get(), 1, target);
  std::vector<CatalogEntry> out;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) out.push_back(row(s.get()));
  if (rc != SQLITE_DONE) fail(std::string("backup catalog: ") + sqlite3_errmsg(db_));
  return out;
}

void Catalog::set_verify(const std::string& id, const std::string& result, int64_t at) {
  auto s = prepare(db_, "UPDATE backups SET verify = ?, verified_at = ? WHERE id = ?");
  bind(s.get(), 1, result);
  bind(s.get(), 2, at);
  bind(s.get(), 3, id);
  step_done(db_, s.get());
}

void Catalog::remove(const std::string& id) {
  auto s = prepare(db_, "DELETE FROM backups WHERE id = ?");
  bind(s.get(), 1, id);
  step_done(db_, s.get());
}

void Catalog::remove_target(const std::string& target) {
  auto s = prepare(db_, "DELETE FROM backups WHERE target = ?");
  bind(s.get(), 1, target);
  step_done(db_, s.get());
}

}  // namespace ceso
