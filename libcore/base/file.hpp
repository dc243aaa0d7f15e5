// Files: one owner of a file descriptor, one whole-file read.
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.hpp"

namespace ceso {

// Owns a file descriptor: closes it when destroyed (ignoring the result, as
// nothing can be done about it then). Where a failed close matters — the
// last chance to hear of a write error — call close() and check it.
class Fd {
 public:
  explicit Fd(int fd = -1) noexcept : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  // Gives the descriptor up without closing it.
  int release() noexcept;
  // Closes the descriptor held (if any) and holds `fd` instead.
  void reset(int fd = -1) noexcept;
  // Closes now: ::close's result (0, or -1 with errno set); 0 when empty.
  int close() noexcept;

 private:
  int fd_;
};

// Writes all of `data` to `fd`, again after a short write or EINTR. 0 when
// done, else the errno of the write that failed (EPIPE: the reader is gone).
int write_all(int fd, std::string_view data);

// How read_file names a file in its errors, and what it refuses.
struct ReadFileOptions {
  std::string_view what;      // "config file" → "config file: cannot read 'PATH': …"
  size_t max_bytes = 0;       // larger files fail: "'PATH' is larger than 1 MiB"; 0: no limit
  Exit exit = Exit::failure;  // the exit code of every error
  bool missing_ok = false;    // a file that does not exist: nullopt rather than an error
};

// The whole content of the file at `path` (a pipe such as /dev/fd/N or a
// /proc file too: it reads to the end, whatever stat says). A directory is
// refused with EISDIR's text. Throws ceso::Error with options.exit:
// "[WHAT: ]cannot read 'PATH': REASON" or "[WHAT: ]'PATH' is larger than N".
// `st`, when given, receives the status of the file read (fstat of the
// descriptor, so it describes the same file, not one swapped in since).
std::optional<std::string> read_file(const std::string& path, const ReadFileOptions& options = {},
                                     struct stat* st = nullptr);

}  // namespace ceso
