#include "base/file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ceso {

int Fd::release() noexcept {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

void Fd::reset(int fd) noexcept {
  if (fd_ >= 0 && fd_ != fd) ::close(fd_);
  fd_ = fd;
}

int Fd::close() noexcept {
  if (fd_ < 0) return 0;
  return ::close(release());
}

int write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return 0;
}

namespace {

std::string prefix(const ReadFileOptions& o) {
  return o.what.empty() ? std::string() : std::string(o.what) + ": ";
}

[[noreturn]] void cannot_read(const std::string& path, const ReadFileOptions& o, int err) {
  throw Error(prefix(o) + "cannot read " + quote(path) + ": " + std::strerror(err), o.exit);
}

}  // namespace

std::optional<std::string> read_file(const std::string& path, const ReadFileOptions& o,
                                     struct stat* st) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT && o.missing_ok) return std::nullopt;
    cannot_read(path, o, errno);
  }
  struct stat own {};
  if (!st) st = &own;
  if (::fstat(fd.get(), st) != 0) cannot_read(path, o, errno);
  if (S_ISDIR(st->st_mode)) cannot_read(path, o, EISDIR);
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) cannot_read(path, o, errno);
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (o.max_bytes && text.size() > o.max_bytes)
      throw Error(prefix(o) + quote(path) + " is larger than " + size_text(o.max_bytes), o.exit);
  }
  return text;
}

}  // namespace ceso
