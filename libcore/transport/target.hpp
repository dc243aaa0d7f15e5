// Backup targets: where backup directories are stored.
//
// A target is a root directory reached through a URL: file:///path (local
// disk or an NFS mount) or sftp://user@host[:port]/path. The interface is the
// handful of file operations the backup logic needs, so another scheme
// (s3://) is one more implementation and a line in open_backup_target().
// Paths given to a target are relative to its root and use '/'. Every
// operation checks its path (check_target_path): no empty, "." or ".."
// component, no leading '/', no control character, so that nothing built
// from untrusted input (a backup id, a manifest's file name) reaches outside
// the root; remove_tree never removes the root itself.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/url.hpp"

namespace ceso {

// A file being written. commit() makes the data durable (fsync) and closes
// it; destroying a writer without commit() leaves a partial file that the
// caller's directory cleanup removes.
class TargetWriter {
 public:
  virtual ~TargetWriter() = default;
  virtual void write(const char* data, size_t size) = 0;
  virtual void commit() = 0;
};

class TargetReader {
 public:
  virtual ~TargetReader() = default;
  // Up to `size` bytes; 0 at end of file.
  virtual size_t read(char* data, size_t size) = 0;
};

// An entry of a directory listing. `dir` is true for a real directory only
// (a symbolic link to one is not: it is never descended into or removed
// through).
struct TargetEntry {
  std::string name;
  bool dir = false;
};

// Throws Error(bad_input) naming `rel` when it is not a clean relative path
// (see above); "" (the root) only when allow_root.
void check_target_path(const std::string& rel, bool allow_root);

struct TargetOptions {
  bool accept_new_host_key = false;  // sftp: add an unknown host to known_hosts
};

class BackupTarget {
 public:
  virtual ~BackupTarget() = default;
  // The URL it was opened with (no password), as recorded in the catalog.
  virtual const std::string& url() const = 0;

  virtual void make_dir(const std::string& dir) = 0;  // with parents; exists is fine
  // One new directory, created atomically: Error(failure) when anything of
  // that name exists already (mkdir(2) semantics on both schemes), so two
  // runs can never share a directory.
  virtual void make_dir_exclusive(const std::string& dir) = 0;
  // Entries of a directory (not "." / ".."); empty when it does not exist;
  // Error(failure) when `dir` is not a directory.
  virtual std::vector<TargetEntry> list(const std::string& dir) = 0;
  virtual std::optional<uint64_t> file_size(const std::string& path) = 0;  // nullopt: absent
  virtual std::unique_ptr<TargetWriter> create(const std::string& path) = 0;
  virtual std::unique_ptr<TargetReader> open(const std::string& path) = 0;
  // Atomic within the target (used to publish manifest.json).
  virtual void rename(const std::string& from, const std::string& to) = 0;
  // Make the directory's entries durable (fsync of the directory).
  virtual void sync_dir(const std::string& dir) = 0;
  // Remove a directory and everything in it (or a file); absent is fine.
  // Never the root: Error(bad_input) for "".
  virtual void remove_tree(const std::string& dir) = 0;

  // Calls `each` with every file under `dir`, recursively, as a path
  // relative to it, from a flat listing of `listing_page()` names a request
  // (page by page: memory stays bounded); false, calling nothing, where the
  // target has none (file://, sftp://: one listing a directory).
  virtual bool list_flat(const std::string& dir,
                         const std::function<void(const std::string&)>& each) {
    (void)dir;
    (void)each;
    return false;
  }
  virtual size_t listing_page() const { return 0; }
  // True when a file written with create() appears under its name only at
  // commit(), whole (an S3 PUT), so no temporary name and rename are needed.
  virtual bool atomic_create() const { return false; }

  // Small whole files (manifests, markers); read_file refuses more than
  // 64 MiB with Error(bad_input).
  std::string read_file(const std::string& path);
  void write_file(const std::string& path, const std::string& data);
};

// Opens the target of a URL: file:///path, file://localhost/path, a plain
// absolute path (recorded as its file:// URL), sftp://…. Throws Error(usage)
// for an unknown scheme or a malformed URL, Error(connection) when an sftp host cannot be reached
// or its key is not trusted, Error(failure) when the root does not exist.
std::unique_ptr<BackupTarget> open_backup_target(const std::string& url,
                                                 const TargetOptions& options = {});

// A file:// or sftp:// URL split by parse_url_parts (base/url.hpp); the
// scheme may be written in any case. Throws Error(usage) "backup target
// 'URL': why" (user information redacted) for a malformed one.
UrlParts parse_target_url(const std::string& url);

// The root directory of a parsed target URL: %-decoded, trailing '/'
// dropped ("/" stays). Throws Error(usage) for a "." or ".." component:
// the root is what every checked target path stays under, so it is never
// resolved.
std::string target_root(const UrlParts& parts, const std::string& url);

// The parts of sftp://[user@]host[:port]/path (user %-decoded, defaults to
// $USER, port to 22; host without IPv6 brackets; path %-decoded, not "/").
// Throws Error(usage) for a malformed URL or one with a password.
// Used by open_sftp_target; public for tests and fuzzing (no connection).
struct SftpUrl {
  std::string user, host, path;
  int port = 22;
};
SftpUrl parse_sftp_url(const std::string& url);

// sftp://user@host[:port]/path (sftp.cpp): host key checked against
// ~/.ssh/known_hosts, agent or key-file authentication.
std::unique_ptr<BackupTarget> open_sftp_target(const std::string& url,
                                               const TargetOptions& options);

// A local directory as a target (file:// URLs).
std::unique_ptr<BackupTarget> open_file_target(const std::string& root, std::string url);

}  // namespace ceso
