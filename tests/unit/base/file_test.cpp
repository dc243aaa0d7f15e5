// read_file (the one whole-file read) and Fd (the one owner of a descriptor).
#include "base/file.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <fstream>
#include <string>

#include "test_support.hpp"

namespace ceso {
namespace {

using test::TempDir;

void write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

// The message and exit code of the Error `f` throws.
template <typename F>
std::pair<std::string, Exit> error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return {e.what(), e.code()};
  }
  ADD_FAILURE() << "no Error thrown";
  return {"", Exit::ok};
}

TEST(ReadFile, WholeContentWithNulBytesAndNoNewline) {
  TempDir dir;
  std::string text("a\0b\r\nlast", 9);
  write(dir / "f", text);
  EXPECT_EQ(read_file(dir / "f"), text);
}

TEST(ReadFile, EmptyFile) {
  TempDir dir;
  write(dir / "empty", "");
  auto text = read_file(dir / "empty", {.max_bytes = 1});
  ASSERT_TRUE(text.has_value());
  EXPECT_EQ(*text, "");
}

TEST(ReadFile, BigFileOverManyReads) {
  TempDir dir;
  std::string big;
  for (int i = 0; big.size() < (3u << 20) + 17; ++i) big += std::to_string(i) + ",";
  write(dir / "big", big);
  EXPECT_EQ(read_file(dir / "big"), big);  // no limit by default
}

TEST(ReadFile, SizeLimitIsInclusive) {
  TempDir dir;
  write(dir / "at", std::string(1 << 20, 'x'));
  write(dir / "over", std::string((1 << 20) + 1, 'x'));
  EXPECT_EQ(read_file(dir / "at", {.max_bytes = 1 << 20})->size(), size_t{1} << 20);
  auto [msg, code] =
      error_of([&] { read_file(dir / "over", {.what = "config file", .max_bytes = 1 << 20}); });
  EXPECT_EQ(msg, "config file: '" + dir / "over" + "' is larger than 1 MiB");
  EXPECT_EQ(code, Exit::failure);
  auto [msg8, code8] =
      error_of([&] { read_file(dir / "over", {.max_bytes = 1000, .exit = Exit::bad_input}); });
  EXPECT_EQ(msg8, "'" + dir / "over" + "' is larger than 1000 bytes");
  EXPECT_EQ(code8, Exit::bad_input);
}

TEST(ReadFile, MissingFile) {
  TempDir dir;
  EXPECT_EQ(read_file(dir / "nope", {.missing_ok = true}), std::nullopt);
  auto [msg, code] = error_of([&] { read_file(dir / "nope", {.what = "GOVC_TLS_KNOWN_HOSTS"}); });
  EXPECT_EQ(msg,
            "GOVC_TLS_KNOWN_HOSTS: cannot read '" + dir / "nope" + "': No such file or directory");
  EXPECT_EQ(code, Exit::failure);
}

TEST(ReadFile, MissingOkDoesNotHideOtherErrors) {
  TempDir dir;
  write(dir / "file", "x");
  // A path through a regular file: ENOTDIR, not ENOENT, so not "missing".
  auto [msg, code] =
      error_of([&] { read_file(dir / "file/sub", {.exit = Exit::bad_input, .missing_ok = true}); });
  EXPECT_EQ(msg, "cannot read '" + dir / "file/sub" + "': Not a directory");
  EXPECT_EQ(code, Exit::bad_input);
}

TEST(ReadFile, ADirectoryIsRefused) {
  TempDir dir;
  auto [msg, code] = error_of([&] { read_file(dir / ".", {.missing_ok = true}); });
  EXPECT_EQ(msg, "cannot read '" + dir / "." + "': Is a directory");
  EXPECT_EQ(code, Exit::failure);
}

TEST(ReadFile, UnreadableFile) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads files of mode 000";
  TempDir dir;
  write(dir / "secret", "x");
  ::chmod((dir / "secret").c_str(), 0);
  auto [msg, code] = error_of([&] { read_file(dir / "secret", {.what = "password file"}); });
  EXPECT_EQ(msg, "password file: cannot read '" + dir / "secret" + "': Permission denied");
  EXPECT_EQ(code, Exit::failure);
}

TEST(ReadFile, AReadThatFailsAfterOpening) {
  // Opening works, reading at offset 0 does not (no mapping there): EIO.
  auto [msg, code] = error_of([&] { read_file("/proc/self/mem", {.exit = Exit::bad_input}); });
  EXPECT_EQ(msg, "cannot read '/proc/self/mem': Input/output error");
  EXPECT_EQ(code, Exit::bad_input);
}

TEST(ReadFile, FilesWhoseSizeIsNotKnownInAdvance) {
  // /proc files say size 0; a pipe (a password from <(pass show x)) has none.
  EXPECT_NE(read_file("/proc/self/stat")->find(") "), std::string::npos);
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ASSERT_EQ(::write(p[1], "secret\n", 7), 7);
  ::close(p[1]);
  Fd reader(p[0]);
  EXPECT_EQ(read_file("/dev/fd/" + std::to_string(p[0])), "secret\n");
}

TEST(ReadFile, StatusOfTheFileRead) {
  TempDir dir;
  write(dir / "f", "12345");
  ::chmod((dir / "f").c_str(), 0640);
  struct stat st {};
  read_file(dir / "f", {}, &st);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_size, 5);
}

TEST(WriteAll, WritesEverythingInOrder) {
  TempDir dir;
  std::string big;
  for (int i = 0; big.size() < (2u << 20); ++i) big += std::to_string(i) + "\n";
  Fd fd(::open((dir / "out").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  ASSERT_TRUE(fd);
  EXPECT_EQ(write_all(fd.get(), big), 0);
  EXPECT_EQ(write_all(fd.get(), ""), 0);
  EXPECT_EQ(fd.close(), 0);
  EXPECT_EQ(read_file(dir / "out"), big);
}

TEST(WriteAll, ReportsTheErrno) {
  EXPECT_EQ(write_all(-1, "x"), EBADF);
  int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);  // open, but not for writing
  Fd ro(raw);
  EXPECT_EQ(write_all(ro.get(), "x"), EBADF);
  // A pipe whose reader is gone: EPIPE (SIGPIPE ignored, as run_tool does).
  auto old = std::signal(SIGPIPE, SIG_IGN);
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ::close(p[0]);
  Fd writer(p[1]);
  EXPECT_EQ(write_all(writer.get(), "record\n"), EPIPE);
  std::signal(SIGPIPE, old);
}

TEST(Fd, ClosesWhenDestroyed) {
  int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(raw, 0);
  {
    Fd fd(raw);
    EXPECT_TRUE(is_open(raw));
  }
  EXPECT_FALSE(is_open(raw));
}

TEST(Fd, EmptyByDefault) {
  Fd fd;
  EXPECT_FALSE(fd);
  EXPECT_EQ(fd.get(), -1);
  EXPECT_EQ(fd.close(), 0);
  EXPECT_FALSE(Fd(-1));
}

TEST(Fd, ReleaseKeepsItOpen) {
  int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  {
    Fd fd(raw);
    EXPECT_EQ(fd.release(), raw);
    EXPECT_FALSE(fd);
  }
  EXPECT_TRUE(is_open(raw));
  ::close(raw);
}

TEST(Fd, MoveTransfersOwnership) {
  int a = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int b = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  {
    Fd first(a);
    Fd second(std::move(first));
    EXPECT_FALSE(first);  // NOLINT(bugprone-use-after-move): moved-from is empty
    EXPECT_EQ(second.get(), a);
    Fd third(b);
    third = std::move(second);  // closes b, takes a
    EXPECT_FALSE(is_open(b));
    EXPECT_EQ(third.get(), a);
    EXPECT_TRUE(is_open(a));
  }
  EXPECT_FALSE(is_open(a));
}

TEST(Fd, ResetClosesTheOldOne) {
  int a = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int b = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  Fd fd(a);
  fd.reset(b);
  EXPECT_FALSE(is_open(a));
  EXPECT_EQ(fd.get(), b);
  fd.reset(b);  // the same descriptor again: kept, not closed
  EXPECT_TRUE(is_open(b));
  fd.reset();
  EXPECT_FALSE(is_open(b));
  EXPECT_FALSE(fd);
}

TEST(Fd, CloseReportsTheResult) {
  int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  Fd fd(raw);
  EXPECT_EQ(fd.close(), 0);
  EXPECT_FALSE(fd);
  EXPECT_FALSE(is_open(raw));
  Fd stale(raw);  // no longer a descriptor
  errno = 0;
  EXPECT_EQ(stale.close(), -1);
  EXPECT_EQ(errno, EBADF);
}

}  // namespace
}  // namespace ceso
