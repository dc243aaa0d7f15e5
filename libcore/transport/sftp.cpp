// sftp://user@host[:port]/path targets over libssh2.
//
// Host keys are checked against ~/.ssh/known_hosts (OpenSSH format, "[host]:port"
// for other ports than 22) by transport/ssh's check; an unknown host is refused
// unless the caller allows adding it (--accept-new-host-key: one line appended),
// a changed key always is. Authentication:
// the SSH agent, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa (unencrypted).
// One SSH session per target, shared by -j workers under a mutex.
#include <fcntl.h>
#include <libssh2.h>
#include <libssh2_sftp.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <mutex>

#include "base/error.hpp"
#include "base/file.hpp"
#include "config/config.hpp"
#include "transport/ssh.hpp"
#include "transport/target.hpp"

namespace ceso {

SftpUrl parse_sftp_url(const std::string& url) {
  UrlParts parts = parse_target_url(url);
  auto bad = [&](const std::string& why) {
    usage_error("backup target " + quote(redact_url(url)) + ": " + why);
  };
  if (parts.scheme != "sftp") bad("not an sftp:// URL");
  if (parts.password) bad("no password in the URL; use a key or the SSH agent");
  SftpUrl u;
  u.user = parts.user.value_or("");
  if (u.user.empty()) {
    const char* user = std::getenv("USER");
    u.user = user && *user ? user : "root";
  }
  u.host = parts.host;
  if (parts.port) u.port = parts.port;
  u.path = target_root(parts, url);
  if (u.path == "/") bad("no path: use sftp://[user@]host[:port]/path");
  return u;
}

namespace {

std::once_flag g_ssh_init;

int connect_tcp(const SftpUrl& u) {
  check_host_allowed(u.host, "backup target");  // allow_hosts: before DNS and TCP
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(u.port);
  if (getaddrinfo(u.host.c_str(), port.c_str(), &hints, &res) != 0)
    throw Error("sftp: cannot resolve " + quote(u.host), Exit::connection);
  int fd = -1;
  for (addrinfo* a = res; a; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    if (fd >= 0) close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0)
    throw Error("sftp: cannot connect to " + u.host + ":" + port + ": " + std::strerror(errno),
                Exit::connection);
  return fd;
}

class SftpTarget;

class SftpWriter : public TargetWriter {
 public:
  SftpWriter(SftpTarget& t, LIBSSH2_SFTP_HANDLE* h, std::string path)
      : t_(t), h_(h), path_(std::move(path)) {}
  ~SftpWriter() override;
  void write(const char* data, size_t size) override;
  void commit() override;

 private:
  SftpTarget& t_;
  LIBSSH2_SFTP_HANDLE* h_;
  std::string path_;
};

class SftpReader : public TargetReader {
 public:
  SftpReader(SftpTarget& t, LIBSSH2_SFTP_HANDLE* h, std::string path)
      : t_(t), h_(h), path_(std::move(path)) {}
  ~SftpReader() override;
  size_t read(char* data, size_t size) override;

 private:
  SftpTarget& t_;
  LIBSSH2_SFTP_HANDLE* h_;
  std::string path_;
};

class SftpTarget : public BackupTarget {
 public:
  SftpTarget(const std::string& url, const TargetOptions& options) : url_(url) {
    try {
      connect_session(options);
    } catch (...) {
      close_all();  // no destructor runs for a constructor that throws
      throw;
    }
  }
  ~SftpTarget() override { close_all(); }

 private:
  void connect_session(const TargetOptions& options) {
    std::call_once(g_ssh_init, [] { libssh2_init(0); });
    u_ = parse_sftp_url(url_);
    fd_.reset(connect_tcp(u_));
    session_ = libssh2_session_init();
    if (!session_ || libssh2_session_handshake(session_, fd_.get()) != 0)
      throw Error("sftp: SSH handshake with " + u_.host + " failed: " + last_error(),
                  Exit::connection);
    check_host_key(options.accept_new_host_key);
    authenticate();
    sftp_ = libssh2_sftp_init(session_);
    if (!sftp_)
      throw Error("sftp: cannot start the SFTP subsystem: " + last_error(), Exit::connection);
    LIBSSH2_SFTP_ATTRIBUTES a{};
    if (libssh2_sftp_stat(sftp_, u_.path.c_str(), &a) != 0 || !LIBSSH2_SFTP_S_ISDIR(a.permissions))
      fail("backup target " + quote(url_) + ": " + quote(u_.path) + " is not a directory");
  }
  void close_all() {
    if (sftp_) libssh2_sftp_shutdown(sftp_);
    sftp_ = nullptr;
    if (session_) {
      libssh2_session_disconnect(session_, "bye");
      libssh2_session_free(session_);
    }
    session_ = nullptr;
    fd_.reset();
  }

 public:
  const std::string& url() const override { return url_; }

  void make_dir(const std::string& dir) override {
    std::lock_guard lock(mutex_);
    std::string cur = u_.path;
    size_t start = 0;
    while (start < dir.size()) {
      size_t slash = dir.find('/', start);
      cur +=
          "/" + dir.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
      LIBSSH2_SFTP_ATTRIBUTES a{};
      if (libssh2_sftp_stat(sftp_, cur.c_str(), &a) != 0 &&
          libssh2_sftp_mkdir(sftp_, cur.c_str(), 0700) != 0)
        fail_op("create", cur);
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
  }
  void make_dir_exclusive(const std::string& dir) override {
    check_target_path(dir, false);
    std::lock_guard lock(mutex_);
    // SSH_FXP_MKDIR is mkdir(2) on the server: it fails when the name exists.
    if (libssh2_sftp_mkdir(sftp_, at(dir).c_str(), 0700) != 0) {
      LIBSSH2_SFTP_ATTRIBUTES a{};
      if (libssh2_sftp_lstat(sftp_, at(dir).c_str(), &a) == 0)
        fail("sftp: " + quote(at(dir)) + " exists already on " + u_.host);
      fail_op("create", at(dir));
    }
  }
  std::vector<TargetEntry> list(const std::string& dir) override {
    std::lock_guard lock(mutex_);
    return list_locked(at(dir));
  }
  std::optional<uint64_t> file_size(const std::string& path) override {
    std::lock_guard lock(mutex_);
    LIBSSH2_SFTP_ATTRIBUTES a{};
    if (libssh2_sftp_stat(sftp_, at(path).c_str(), &a) != 0) {
      if (libssh2_sftp_last_error(sftp_) == LIBSSH2_FX_NO_SUCH_FILE) return std::nullopt;
      fail_op("stat", at(path));
    }
    return a.filesize;
  }
  std::unique_ptr<TargetWriter> create(const std::string& path) override {
    std::lock_guard lock(mutex_);
    auto* h = libssh2_sftp_open(sftp_, at(path).c_str(),
                                LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC, 0600);
    if (!h) fail_op("create", at(path));
    return std::make_unique<SftpWriter>(*this, h, at(path));
  }
  std::unique_ptr<TargetReader> open(const std::string& path) override {
    std::lock_guard lock(mutex_);
    auto* h = libssh2_sftp_open(sftp_, at(path).c_str(), LIBSSH2_FXF_READ, 0);
    if (!h) fail_op("open", at(path));
    return std::make_unique<SftpReader>(*this, h, at(path));
  }
  void rename(const std::string& from, const std::string& to) override {
    std::lock_guard lock(mutex_);
    if (libssh2_sftp_rename_ex(sftp_, at(from).c_str(), static_cast<unsigned>(at(from).size()),
                               at(to).c_str(), static_cast<unsigned>(at(to).size()),
                               LIBSSH2_SFTP_RENAME_OVERWRITE | LIBSSH2_SFTP_RENAME_ATOMIC |
                                   LIBSSH2_SFTP_RENAME_NATIVE) != 0)
      fail_op("rename", at(from));
  }
  // SFTP has no directory fsync; each file was fsynced (fsync@openssh.com).
  void sync_dir(const std::string&) override {}
  void remove_tree(const std::string& dir) override {
    check_target_path(dir, false);
    std::lock_guard lock(mutex_);
    remove_locked(at(dir));
  }

  std::mutex mutex_;
  LIBSSH2_SFTP* sftp_ = nullptr;
  [[noreturn]] void fail_op(const std::string& what, const std::string& path) {
    fail("sftp: cannot " + what + " " + quote(path) + " on " + u_.host + ": " + last_error());
  }

 private:
  std::string url_;
  SftpUrl u_;
  Fd fd_;
  LIBSSH2_SESSION* session_ = nullptr;

  std::string at(const std::string& rel) const {
    check_target_path(rel, true);
    return rel.empty() ? u_.path : u_.path + "/" + rel;
  }

  std::string last_error() {
    char* msg = nullptr;
    if (!session_) return "out of memory";
    libssh2_session_last_error(session_, &msg, nullptr, 0);
    std::string s = msg ? msg : "unknown error";
    if (sftp_ && libssh2_session_last_errno(session_) == LIBSSH2_ERROR_SFTP_PROTOCOL)
      s += " (SFTP status " + std::to_string(libssh2_sftp_last_error(sftp_)) + ")";
    return s;
  }

  // The same check as SshConnection's (transport/ssh): ~/.ssh/known_hosts
  // read line by line (an unreadable line does not hide the rest), a changed
  // key refused whatever its type, a new one appended, never the file
  // rewritten.
  void check_host_key(bool accept_new) {
    std::string file = expand_home("~/.ssh/known_hosts");
    SshSettings s;
    s.host = u_.host;
    s.port = u_.port;
    s.known_hosts_files = {file};
    s.record_file = file;
    s.accept_new_host_key = accept_new;
    check_ssh_host_key(session_, s, "sftp: ", "");
  }

  void authenticate() {
    const char* user = u_.user.c_str();
    auto ulen = static_cast<unsigned>(u_.user.size());
    if (LIBSSH2_AGENT* agent = libssh2_agent_init(session_)) {
      bool ok = false;
      if (std::getenv("SSH_AUTH_SOCK") && libssh2_agent_connect(agent) == 0 &&
          libssh2_agent_list_identities(agent) == 0) {
        libssh2_agent_publickey *id = nullptr, *prev = nullptr;
        while (!ok && libssh2_agent_get_identity(agent, &id, prev) == 0) {
          ok = libssh2_agent_userauth(agent, user, id) == 0;
          prev = id;
        }
        libssh2_agent_disconnect(agent);
      }
      libssh2_agent_free(agent);
      if (ok) return;
    }
    for (const char* name : {"id_ed25519", "id_ecdsa", "id_rsa"}) {
      std::string key = expand_home(std::string("~/.ssh/") + name);
      if (access(key.c_str(), R_OK) != 0) continue;
      if (libssh2_userauth_publickey_fromfile_ex(session_, user, ulen, nullptr, key.c_str(),
                                                 nullptr) == 0)
        return;
    }
    throw Error("sftp: " + u_.user + "@" + u_.host +
                    ": authentication failed (tried the SSH agent and ~/.ssh/id_ed25519, "
                    "id_ecdsa, id_rsa)",
                Exit::connection);
  }

  std::vector<TargetEntry> list_locked(const std::string& dir) {
    std::vector<TargetEntry> entries;
    LIBSSH2_SFTP_HANDLE* h = libssh2_sftp_opendir(sftp_, dir.c_str());
    if (!h) {
      if (libssh2_sftp_last_error(sftp_) == LIBSSH2_FX_NO_SUCH_FILE) return entries;
      fail_op("list", dir);
    }
    char buf[1024];
    LIBSSH2_SFTP_ATTRIBUTES a{};
    int n;
    // readdir's attributes are lstat's (OpenSSH): a symbolic link is not a directory.
    while ((n = libssh2_sftp_readdir(h, buf, sizeof buf, &a)) > 0) {
      std::string name(buf, static_cast<size_t>(n));
      bool is_dir =
          (a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) && LIBSSH2_SFTP_S_ISDIR(a.permissions);
      if (name != "." && name != "..") entries.push_back({name, is_dir});
    }
    libssh2_sftp_closedir(h);
    return entries;
  }

  void remove_locked(const std::string& path) {
    LIBSSH2_SFTP_ATTRIBUTES a{};
    if (libssh2_sftp_lstat(sftp_, path.c_str(), &a) != 0) return;  // absent
    if (LIBSSH2_SFTP_S_ISDIR(a.permissions)) {
      for (const auto& e : list_locked(path)) remove_locked(path + "/" + e.name);
      if (libssh2_sftp_rmdir(sftp_, path.c_str()) != 0) fail_op("remove", path);
    } else if (libssh2_sftp_unlink(sftp_, path.c_str()) != 0) {
      fail_op("remove", path);
    }
  }
};

SftpWriter::~SftpWriter() {
  if (!h_) return;
  std::lock_guard lock(t_.mutex_);
  libssh2_sftp_close(h_);
}

void SftpWriter::write(const char* data, size_t size) {
  std::lock_guard lock(t_.mutex_);
  while (size > 0) {
    ssize_t n = libssh2_sftp_write(h_, data, size);
    if (n < 0) t_.fail_op("write", path_);
    data += n;
    size -= static_cast<size_t>(n);
  }
}

void SftpWriter::commit() {
  std::lock_guard lock(t_.mutex_);
  if (libssh2_sftp_fsync(h_) != 0) t_.fail_op("sync", path_);
  int rc = libssh2_sftp_close(h_);
  h_ = nullptr;
  if (rc != 0) t_.fail_op("close", path_);
}

SftpReader::~SftpReader() {
  std::lock_guard lock(t_.mutex_);
  libssh2_sftp_close(h_);
}

size_t SftpReader::read(char* data, size_t size) {
  std::lock_guard lock(t_.mutex_);
  ssize_t n = libssh2_sftp_read(h_, data, size);
  if (n < 0) t_.fail_op("read", path_);
  return static_cast<size_t>(n);
}

}  // namespace

std::unique_ptr<BackupTarget> open_sftp_target(const std::string& url,
                                               const TargetOptions& options) {
  return std::make_unique<SftpTarget>(url, options);
}

}  // namespace ceso
