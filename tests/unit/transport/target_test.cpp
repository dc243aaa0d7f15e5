// Backup target URLs: sftp:// parsing (no connection is made) and file://
// targets opened on temporary directories.
#include "transport/target.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

#include "base/error.hpp"

namespace {

namespace fs = std::filesystem;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

template <typename F>
ceso::Error error_of(F&& f, const std::string& what) {
  try {
    f();
  } catch (const ceso::Error& e) {
    return e;
  }
  ADD_FAILURE() << "no error for " << what;
  return ceso::Error("none", ceso::Exit::ok);
}

ceso::Error sftp_error(const std::string& url) {
  return error_of([&] { ceso::parse_sftp_url(url); }, url);
}

ceso::Error open_error(const std::string& url) {
  return error_of([&] { ceso::open_backup_target(url); }, url);
}

// ------------------------------------------------------------------ sftp://

TEST(SftpUrl, UserHostPortPath) {
  auto u = ceso::parse_sftp_url("sftp://backup@nas.example:2222/srv/backups");
  EXPECT_EQ(u.user, "backup");
  EXPECT_EQ(u.host, "nas.example");
  EXPECT_EQ(u.port, 2222);
  EXPECT_EQ(u.path, "/srv/backups");
}

TEST(SftpUrl, DefaultPortAndUser) {
  ::setenv("USER", "operator", 1);
  auto u = ceso::parse_sftp_url("sftp://192.0.2.7/srv");
  EXPECT_EQ(u.user, "operator");
  EXPECT_EQ(u.host, "192.0.2.7");
  EXPECT_EQ(u.port, 22);
  u = ceso::parse_sftp_url("sftp://@192.0.2.7:22/srv");  // an empty user is no user
  EXPECT_EQ(u.user, "operator");
  EXPECT_EQ(u.port, 22);
}

TEST(SftpUrl, Ipv6WithAndWithoutPort) {
  auto u = ceso::parse_sftp_url("sftp://root@[2001:DB8::5]:2222/srv");
  EXPECT_EQ(u.host, "2001:db8::5");  // no brackets: getaddrinfo and known_hosts add them
  EXPECT_EQ(u.port, 2222);
  u = ceso::parse_sftp_url("sftp://root@[2001:db8::5]/srv");
  EXPECT_EQ(u.host, "2001:db8::5");
  EXPECT_EQ(u.port, 22);
  u = ceso::parse_sftp_url("sftp://[::1]:2022/tmp/t");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, 2022);
}

TEST(SftpUrl, Ipv6ZoneId) {
  auto u = ceso::parse_sftp_url("sftp://root@[fe80::1%25eth0]:2222/srv");
  EXPECT_EQ(u.host, "fe80::1%eth0");  // getaddrinfo's scope form
  EXPECT_EQ(u.port, 2222);
  EXPECT_EQ(ceso::parse_sftp_url("sftp://[FE80::1%eth1]/srv").host, "fe80::1%eth1");
}

TEST(SftpUrl, PercentEncodedUserAndPath) {
  auto u = ceso::parse_sftp_url("sftp://backup%40corp@nas/srv/my%20backups");
  EXPECT_EQ(u.user, "backup@corp");
  EXPECT_EQ(u.path, "/srv/my backups");
  // The last '@' ends the user, as for endpoint URLs.
  u = ceso::parse_sftp_url("sftp://backup@corp@nas/srv/100%25");
  EXPECT_EQ(u.user, "backup@corp");
  EXPECT_EQ(u.host, "nas");
  EXPECT_EQ(u.path, "/srv/100%");
}

TEST(SftpUrl, UppercaseSchemeAndHost) {
  auto u = ceso::parse_sftp_url("SFTP://Backup@NAS.Example/Srv");
  EXPECT_EQ(u.user, "Backup");  // user and path keep their case
  EXPECT_EQ(u.host, "nas.example");
  EXPECT_EQ(u.path, "/Srv");
}

TEST(SftpUrl, TrailingSlashes) {
  EXPECT_EQ(ceso::parse_sftp_url("sftp://nas/srv/backups/").path, "/srv/backups");
  EXPECT_EQ(ceso::parse_sftp_url("sftp://nas/srv/backups///").path, "/srv/backups");
}

TEST(SftpUrl, GarbageIsAUsageError) {
  for (const std::string& bad : std::vector<std::string>{"sftp://",
                                                         "sftp:///srv",
                                                         "sftp://nas",
                                                         "sftp://nas/",
                                                         "sftp://nas//",
                                                         "sftp://nas:0/srv",
                                                         "sftp://nas:65536/srv",
                                                         "sftp://nas:x/srv",
                                                         "sftp://nas:/srv",
                                                         "sftp://nas/srv?x",
                                                         "sftp://nas/srv#",
                                                         "sftp://fe80::1/srv",
                                                         "sftp://2001:db8::5:22/srv",
                                                         "sftp://nas/srv/../etc",
                                                         "sftp://nas/./srv",
                                                         "sftp://nas/srv/%2e%2E/etc",
                                                         "sftp://nas/srv/..",
                                                         "sftp://n as/srv",
                                                         "sftp://nas/sr\nv",
                                                         "sftp://nas/a%zz",
                                                         "sftp://nas/a%0a",
                                                         "sftp://nas/a%00",
                                                         "sftp://us%0aer@nas/srv",
                                                         "sftp://bad!host/srv",
                                                         "sftp://n%61s/srv",
                                                         "sftp://[zz::1]/srv",
                                                         "sftp://[::1/srv",
                                                         "sftp://[fe80::1%25]/srv",
                                                         "sftpx://nas/srv",
                                                         "file:///srv",
                                                         "nas:/srv",
                                                         ""}) {
    auto e = sftp_error(bad);
    EXPECT_EQ(e.code(), ceso::Exit::usage) << bad << ": " << e.what();
    EXPECT_TRUE(contains(e.what(), "backup target")) << bad << ": " << e.what();
  }
}

TEST(SftpUrl, ReasonsNameTheFault) {
  EXPECT_TRUE(contains(sftp_error("sftp://nas:0/srv").what(), "port"));
  EXPECT_TRUE(contains(sftp_error("sftp:///srv").what(), "no host"));
  EXPECT_TRUE(contains(sftp_error("sftp://nas").what(), "no path"));
  EXPECT_TRUE(contains(sftp_error("sftp://nas/a/../b").what(), "'..'"));
  EXPECT_TRUE(contains(sftp_error("sftp://fe80::1/srv").what(), "needs brackets"));
  EXPECT_TRUE(contains(sftp_error("sftp://nas/srv?x=1").what(), "query or fragment"));
}

TEST(SftpUrl, PasswordIsRefusedAndNeverShown) {
  const std::string pw = "Pw9sEcReT";
  for (const std::string& bad :
       {"sftp://backup:" + pw + "@nas/srv", "sftp://:" + pw + "@nas/srv",
        "sftp://backup:" + pw + "@nas:0/srv", "sftp://backup:" + pw + "@/srv",
        "sftp://backup:" + pw + "@nas", "sftp://backup:" + pw + "%zz@nas/srv",
        "sftp://backup:" + pw + "@nas/srv?x", "SFTP://backup:" + pw + "@nas/srv"}) {
    auto e = sftp_error(bad);
    EXPECT_EQ(e.code(), ceso::Exit::usage) << bad;
    EXPECT_FALSE(contains(e.what(), pw)) << bad << " -> " << e.what();
    EXPECT_FALSE(contains(e.what(), "backup:")) << bad << " -> " << e.what();
  }
  EXPECT_TRUE(contains(sftp_error("sftp://backup:" + pw + "@nas/srv").what(), "no password"));
}

// ------------------------------------------------------------------ file://

class FileTargetUrl : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = (fs::temp_directory_path() /
             ("ceso-target-test-" + std::to_string(getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                .string();
    fs::remove_all(base_);
    fs::create_directories(base_);
  }
  void TearDown() override { fs::remove_all(base_); }

  // Writes a file through the target and says where it landed.
  bool lands_in(ceso::BackupTarget& t, const std::string& dir) {
    t.write_file("probe", "x");
    bool there = fs::exists(dir + "/probe");
    fs::remove(dir + "/probe");
    return there;
  }

  std::string base_;
};

TEST_F(FileTargetUrl, FileUrlForms) {
  for (const std::string& url :
       {"file://" + base_, "FILE://" + base_, "File://" + base_, "file://localhost" + base_,
        "file://" + base_ + "/", "file://" + base_ + "///"}) {
    auto t = ceso::open_backup_target(url);
    EXPECT_EQ(t->url(), url);  // recorded in the catalog as given
    EXPECT_TRUE(lands_in(*t, base_)) << url;
  }
}

TEST_F(FileTargetUrl, PercentEncodedPath) {
  std::string dir = base_ + "/my backups";
  fs::create_directories(dir);
  auto t = ceso::open_backup_target("file://" + base_ + "/my%20backups");
  EXPECT_TRUE(lands_in(*t, dir));
}

// A plain path is recorded as a file:// URL that opens the same directory:
// characters a URL gives a meaning ('%', ' ', '#', '?') are escaped.
TEST_F(FileTargetUrl, PlainPathBecomesAnEquivalentUrl) {
  for (const std::string& name :
       std::vector<std::string>{"plain", "my backups", "100%41", "a#b", "what?", "x%"}) {
    std::string dir = base_ + "/" + name;
    fs::create_directories(dir);
    auto t = ceso::open_backup_target(dir);
    EXPECT_EQ(t->url().rfind("file:///", 0), 0u) << t->url();
    EXPECT_TRUE(lands_in(*t, dir)) << name << " -> " << t->url();
    auto again = ceso::open_backup_target(t->url());
    EXPECT_TRUE(lands_in(*again, dir)) << name << " -> " << t->url();
  }
  EXPECT_EQ(ceso::open_backup_target(base_ + "/plain")->url(), "file://" + base_ + "/plain");
}

TEST_F(FileTargetUrl, MissingDirectoryIsAFailure) {
  auto e = open_error("file://" + base_ + "/nonexistent");
  EXPECT_EQ(e.code(), ceso::Exit::failure) << e.what();
  EXPECT_TRUE(contains(e.what(), "is not a directory")) << e.what();
}

TEST_F(FileTargetUrl, GarbageIsAUsageError) {
  for (const std::string& bad : std::vector<std::string>{"file://nas/srv",
                                                         "file://192.0.2.7/srv",
                                                         "file://[::1]/srv",
                                                         "file://u@/srv",
                                                         "file://u@localhost/srv",
                                                         "file://" + base_ + "?x",
                                                         "file://" + base_ + "#",
                                                         "file://" + base_ + "/../x",
                                                         "file://" + base_ + "/./",
                                                         "file://" + base_ + "/%2e%2e",
                                                         "file:" + base_,
                                                         "file:/" + base_,
                                                         "relative/dir",
                                                         "ftp://nas/srv",
                                                         "s3://Bad_Bucket/x",
                                                         "file://" + base_ + "/a b",
                                                         "file://" + base_ + "/a%zz",
                                                         "file://" + base_ + "/a%00b",
                                                         "file://" + base_ + "/a%0ab",
                                                         "file://" + base_ + "/a\tb",
                                                         base_ + "/a\x01" + "b",
                                                         base_ + "/../x",
                                                         base_ + "/.",
                                                         "",
                                                         "file://"}) {
    auto e = open_error(bad);
    EXPECT_EQ(e.code(), ceso::Exit::usage) << bad << ": " << e.what();
    EXPECT_TRUE(contains(e.what(), "backup target")) << bad << ": " << e.what();
  }
}

TEST_F(FileTargetUrl, ReasonsNameTheFault) {
  EXPECT_TRUE(contains(open_error("file://nas/srv").what(), "localhost"));
  EXPECT_TRUE(contains(open_error("file://u@/srv").what(), "no user information"));
  EXPECT_TRUE(contains(open_error("ftp://nas/srv").what(), "use file:// or sftp://"));
  EXPECT_TRUE(contains(open_error("relative/dir").what(), "use file:// or sftp://"));
  EXPECT_TRUE(contains(open_error("file:///srv/../etc").what(), "'..'"));
}

TEST_F(FileTargetUrl, PasswordIsNeverShown) {
  const std::string pw = "Pw9sEcReT";
  for (const std::string& bad : {"file://backup:" + pw + "@/srv", "file://backup:" + pw + "@",
                                 "nas:" + pw + "@x", "ftp://u:" + pw + "@nas/x"}) {
    auto e = open_error(bad);
    EXPECT_EQ(e.code(), ceso::Exit::usage) << bad;
    EXPECT_FALSE(contains(e.what(), pw)) << bad << " -> " << e.what();
  }
}

// A committed file leaves the page cache (a backup is not read again soon;
// format 2 writes a file per 4 MiB chunk, and pages left cached made every
// chunk take fresh ones: docs/backup.md). Its bytes are all there.
TEST_F(FileTargetUrl, CommitDropsTheFileFromThePageCache) {
  struct statfs sf {};
  ASSERT_EQ(statfs(base_.c_str(), &sf), 0);
  if (sf.f_type == TMPFS_MAGIC) GTEST_SKIP() << "tmpfs keeps files in memory: nothing to drop";
  auto t = ceso::open_backup_target("file://" + base_);
  const size_t size = size_t{3} << 20;  // 768 pages
  std::string data(size, '\0');
  for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>(i * 131 % 251);
  auto w = t->create("chunk");
  w->write(data.data(), data.size());
  w->commit();
  const std::string path = base_ + "/chunk";
  int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  ASSERT_NE(map, MAP_FAILED);
  const size_t pages = (size + ::getpagesize() - 1) / ::getpagesize();
  std::vector<unsigned char> resident(pages);
  ASSERT_EQ(::mincore(map, size, resident.data()), 0);
  size_t cached = 0;
  for (unsigned char r : resident) cached += r & 1;
  ::munmap(map, size);
  ::close(fd);
  EXPECT_EQ(cached, 0u) << cached << " of " << pages << " pages still cached";
  EXPECT_EQ(t->read_file("chunk"), data);
}

}  // namespace
