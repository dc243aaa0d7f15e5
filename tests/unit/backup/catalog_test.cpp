#include "backup/catalog.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>

#include "base/error.hpp"

namespace {

std::string temp_db(const char* name) {
  auto dir = std::filesystem::temp_directory_path() / ("ceso-catalog-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto path = (dir / name).string();
  std::filesystem::remove(path);
  return path;
}

ceso::CatalogEntry entry(std::string id, int64_t created, std::string status = "complete") {
  ceso::CatalogEntry e;
  e.id = std::move(id);
  e.target = "file:///b";
  e.endpoint = "h:443";
  e.vm_id = "vm-1";
  e.vm_name = "web 01 'x'";
  e.vm_uuid = "u-1";
  e.created = created;
  e.status = std::move(status);
  e.mode = "hot";
  e.bytes_raw = 10;
  e.bytes_stored = 5;
  return e;
}

TEST(CatalogTest, CreatesTheCurrentSchemaAndRoundTripsRows) {
  ceso::Catalog c(temp_db("a.db"));
  EXPECT_EQ(c.schema_version(), ceso::Catalog::kSchemaVersion);
  c.put(entry("b", 20));
  c.put(entry("a", 10, "failed"));
  auto all = c.list();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].id, "a");  // oldest first
  EXPECT_EQ(all[1].vm_name, "web 01 'x'");
  EXPECT_EQ(all[1].verify, "unverified");
  c.set_verify("b", "ok", 30);
  EXPECT_EQ(c.find("b")->verify, "ok");
  EXPECT_EQ(c.find("b")->verified_at, 30);
  c.remove("a");
  EXPECT_FALSE(c.find("a"));
  EXPECT_TRUE(c.list("file:///other").empty());
  c.remove_target("file:///b");
  EXPECT_TRUE(c.list().empty());
}

TEST(CatalogTest, MigratesAVersionOneDatabase) {
  std::string path = temp_db("v1.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  const char* v1 =
      "CREATE TABLE backups (id TEXT PRIMARY KEY, target TEXT NOT NULL, endpoint TEXT NOT NULL,"
      " vm_id TEXT NOT NULL, vm_name TEXT NOT NULL, vm_uuid TEXT NOT NULL, created INTEGER NOT "
      "NULL, status TEXT NOT NULL, mode TEXT NOT NULL, bytes_raw INTEGER NOT NULL, bytes_stored "
      "INTEGER NOT NULL, error TEXT NOT NULL DEFAULT '');"
      "INSERT INTO backups VALUES ('old','file:///b','h:443','vm-1','n','u',5,'complete','cold',"
      "1,1,'');"
      "PRAGMA user_version=1;";
  ASSERT_EQ(sqlite3_exec(db, v1, nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  ceso::Catalog c(path);
  EXPECT_EQ(c.schema_version(), 2);
  auto e = c.find("old");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->verify, "unverified");
  EXPECT_EQ(e->mode, "cold");
}

TEST(CatalogTest, RefusesANewerSchema) {
  std::string path = temp_db("new.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  EXPECT_THROW(ceso::Catalog c(path), ceso::Error);
}

TEST(CatalogTest, GroupsVmsByEndpointAndUuid) {
  auto a = entry("a", 1), b = entry("b", 2);
  b.vm_name = "renamed";
  EXPECT_EQ(a.vm_key(), b.vm_key());
  b.vm_uuid.clear();
  EXPECT_NE(a.vm_key(), b.vm_key());
}

TEST(CatalogTest, InsertNeverReplacesAnotherRunsRow) {
  ceso::Catalog c(temp_db("insert.db"));
  c.put(entry("x", 10));
  EXPECT_FALSE(c.insert(entry("x", 20, "failed")));
  EXPECT_EQ(c.find("x")->status, "complete");
  EXPECT_EQ(c.find("x")->created, 10);
  EXPECT_TRUE(c.insert(entry("y", 20, "failed")));
  EXPECT_EQ(c.find("y")->status, "failed");
}

}  // namespace
