#include "transport/target.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/error.hpp"
#include "base/file.hpp"
#include "base/url.hpp"
#include "base/util.hpp"
#include "config/config.hpp"
#include "transport/s3.hpp"

namespace ceso {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail_errno(const std::string& what, const std::string& path) {
  fail("cannot " + what + " " + quote(path) + ": " + std::strerror(errno));
}

class FileWriter : public TargetWriter {
 public:
  explicit FileWriter(std::string path) : path_(std::move(path)) {
    fd_.reset(::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd_) fail_errno("create", path_);
  }
  void write(const char* data, size_t size) override {
    if (int err = write_all(fd_.get(), {data, size})) {
      errno = err;
      fail_errno("write", path_);
    }
    written_ += size;
    if (written_ - started_ >= kWindow) write_back();
  }
  void commit() override {
    if (::fsync(fd_.get()) != 0) fail_errno("sync", path_);
    // The file is on disk: its pages leave the page cache (all of them, not
    // only the windows write_back() dropped). Freed pages are taken again by
    // the next writes; pages left cached make every new file take fresh ones,
    // which on this project's VMs cost more system time than the compression
    // of the bytes (docs/backup.md, "Format 2": one file per 4 MiB chunk).
    ::posix_fadvise(fd_.get(), 0, 0, POSIX_FADV_DONTNEED);
    if (fd_.close() != 0) fail_errno("close", path_);
  }

 private:
  // Streaming writes of whole disks: start the write-back of each window as
  // soon as it is full, and wait for the one before it, so the disk works
  // while the network and zstd do, the final fsync finds little left to do,
  // and dirty pages stay bounded (two windows) instead of filling the page
  // cache. The written pages are dropped from the cache too: a backup is
  // not read again soon. Errors here are not fatal: commit()'s fsync reports
  // any write that did not reach the disk.
  static constexpr uint64_t kWindow = 8u << 20;
  uint64_t written_ = 0, started_ = 0, waited_ = 0;
  void write_back() {
    auto off = static_cast<off64_t>(started_);
    auto len = static_cast<off64_t>(written_ - started_);
    ::sync_file_range(fd_.get(), off, len, SYNC_FILE_RANGE_WRITE);
    if (started_ > waited_) {
      auto prev = static_cast<off64_t>(waited_);
      auto plen = static_cast<off64_t>(started_ - waited_);
      ::sync_file_range(
          fd_.get(), prev, plen,
          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
      ::posix_fadvise(fd_.get(), prev, plen, POSIX_FADV_DONTNEED);
      waited_ = started_;
    }
    started_ = written_;
  }
  std::string path_;
  Fd fd_;
};

class FileReader : public TargetReader {
 public:
  explicit FileReader(std::string path) : path_(std::move(path)) {
    fd_.reset(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd_) fail_errno("open", path_);
    posix_fadvise(fd_.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  }
  size_t read(char* data, size_t size) override {
    for (;;) {
      ssize_t n = ::read(fd_.get(), data, size);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) fail_errno("read", path_);
    }
  }

 private:
  std::string path_;
  Fd fd_;
};

class FileTarget : public BackupTarget {
 public:
  FileTarget(std::string root, std::string url) : root_(std::move(root)), url_(std::move(url)) {}
  const std::string& url() const override { return url_; }

  void make_dir(const std::string& dir) override {
    std::error_code ec;
    fs::create_directories(at(dir), ec);
    if (ec) fail("cannot create " + quote(at(dir)) + ": " + ec.message());
  }
  void make_dir_exclusive(const std::string& dir) override {
    check_target_path(dir, false);
    if (::mkdir(at(dir).c_str(), 0700) != 0) {
      if (errno == EEXIST) fail(quote(at(dir)) + " exists already");
      fail_errno("create", at(dir));
    }
  }
  std::vector<TargetEntry> list(const std::string& dir) override {
    std::vector<TargetEntry> entries;
    std::error_code ec;
    for (auto it = fs::directory_iterator(at(dir), ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
      std::error_code sec;
      bool is_dir = it->symlink_status(sec).type() == fs::file_type::directory;
      entries.push_back({it->path().filename().string(), is_dir});
    }
    if (ec && ec != std::errc::no_such_file_or_directory)
      fail("cannot list " + quote(at(dir)) + ": " + ec.message());
    return entries;
  }
  std::optional<uint64_t> file_size(const std::string& path) override {
    struct stat st {};
    if (::stat(at(path).c_str(), &st) != 0) {
      if (errno == ENOENT) return std::nullopt;
      fail_errno("stat", at(path));
    }
    return static_cast<uint64_t>(st.st_size);
  }
  std::unique_ptr<TargetWriter> create(const std::string& path) override {
    return std::make_unique<FileWriter>(at(path));
  }
  std::unique_ptr<TargetReader> open(const std::string& path) override {
    return std::make_unique<FileReader>(at(path));
  }
  void rename(const std::string& from, const std::string& to) override {
    if (::rename(at(from).c_str(), at(to).c_str()) != 0) fail_errno("rename", at(from));
  }
  void sync_dir(const std::string& dir) override {
    int fd = ::open(at(dir).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) fail_errno("open", at(dir));
    int rc = ::fsync(fd);
    ::close(fd);
    if (rc != 0) fail_errno("sync", at(dir));
  }
  void remove_tree(const std::string& dir) override {
    check_target_path(dir, false);
    std::error_code ec;
    fs::remove_all(at(dir), ec);
    if (ec) fail("cannot remove " + quote(at(dir)) + ": " + ec.message());
  }

 private:
  std::string root_, url_;
  std::string at(const std::string& rel) const {
    check_target_path(rel, true);
    return rel.empty() ? root_ : root_ + "/" + rel;
  }
};

}  // namespace

void check_target_path(const std::string& rel, bool allow_root) {
  auto bad = [&](const char* why) { bad_input("backup target path " + quote(rel) + ": " + why); };
  if (rel.empty()) {
    if (!allow_root) bad("the target's root itself");
    return;
  }
  if (rel.size() > 4096) bad("too long");
  for (unsigned char c : rel)
    if (c < 0x20 || c == 0x7f) bad("holds a control character");
  size_t start = 0;
  for (;;) {
    size_t slash = rel.find('/', start);
    std::string_view part(rel.data() + start,
                          (slash == std::string::npos ? rel.size() : slash) - start);
    if (part.empty()) bad("an empty component (leading, trailing or double '/')");
    if (part == "." || part == "..") bad("a '.' or '..' component");
    if (slash == std::string::npos) return;
    start = slash + 1;
  }
}

std::string BackupTarget::read_file(const std::string& path) {
  // Manifests and markers are small; whatever is at a target is untrusted,
  // so a huge one is refused instead of read into memory.
  constexpr size_t kMax = size_t{64} << 20;
  auto r = open(path);
  std::string data;
  char buf[65536];
  while (size_t n = r->read(buf, sizeof buf)) {
    data.append(buf, n);
    if (data.size() > kMax) bad_input(quote(path) + " at " + url() + " is larger than 64 MiB");
  }
  return data;
}

void BackupTarget::write_file(const std::string& path, const std::string& data) {
  auto w = create(path);
  w->write(data.data(), data.size());
  w->commit();
}

std::unique_ptr<BackupTarget> open_file_target(const std::string& root, std::string url) {
  struct stat st {};
  if (::stat(root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    fail("backup target " + quote(redact_url(url)) + ": " + quote(root) + " is not a directory");
  return std::make_unique<FileTarget>(root, std::move(url));
}

UrlParts parse_target_url(const std::string& url) {
  static const UrlSyntax kSyntax{{"file", "sftp"}, "", false};
  std::string why;
  auto parts = parse_url_parts(url, kSyntax, &why);
  if (!parts) usage_error("backup target " + quote(redact_url(url)) + ": " + why);
  return *parts;
}

std::string target_root(const UrlParts& parts, const std::string& url) {
  std::string path = parts.decoded_path;
  // The root anchors every path checked by check_target_path: it is
  // written out, not resolved ("/srv/../etc" is refused, not read as /etc).
  if (has_dot_segment(path))
    usage_error("backup target " + quote(redact_url(url)) +
                ": a '.' or '..' component in the path");
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

std::unique_ptr<BackupTarget> open_backup_target(const std::string& url,
                                                 const TargetOptions& options) {
  // A plain absolute path is a file:// URL; the catalog records it as one.
  if (!url.empty() && url[0] == '/') {
    for (unsigned char c : url)
      if (c < 0x20 || c == 0x7f)
        usage_error("backup target " + quote(url) + ": the path holds a control character");
    return open_backup_target(file_url(url), options);
  }
  if (ascii_lower(url.substr(0, 5)) == "s3://") return open_s3_target(url);
  UrlParts parts = parse_target_url(url);
  if (parts.scheme == "sftp") return open_sftp_target(url, options);
  return open_file_target(target_root(parts, url), url);
}

}  // namespace ceso
