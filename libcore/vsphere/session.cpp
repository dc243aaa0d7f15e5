#include "vsphere/session.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/error.hpp"
#include "base/file.hpp"
#include "config/config.hpp"

namespace ceso {

SessionCache::SessionCache(std::string dir, const std::string& endpoint_id, const std::string& user)
    : dir_(std::move(dir)) {
  // Hash the key: endpoint ids and user names may contain anything.
  path_ = dir_ + "/" + sha256_hex(endpoint_id + "\n" + user).substr(0, 32) + ".json";
}

std::optional<SessionCache::Entry> SessionCache::load() const {
  forbid_core_dumps();  // the cookie is a credential, like the password
  struct stat st {};
  std::optional<std::string> text;
  try {
    text = read_file(path_, {.missing_ok = true}, &st);
  } catch (const Error&) {
    return std::nullopt;  // an unreadable cache is a cache miss too
  }
  // Someone else's or a world-readable file is not ours to trust.
  if (!text || st.st_uid != ::geteuid() || (st.st_mode & 077)) return std::nullopt;
  try {
    auto j = ordered_json::parse(*text);
    Entry e;
    e.cookie = j.value("cookie", "");
    e.content = j.value("content", ordered_json::object());
    e.vm_view = j.value("vm_view", "");
    e.license = j.value("license", "");
    if (e.cookie.empty()) return std::nullopt;
    return e;
  } catch (const std::exception&) {
    return std::nullopt;  // a damaged cache is just a cache miss
  }
}

void SessionCache::save(const Entry& e) const {
  ordered_json j;
  j["cookie"] = e.cookie;
  j["content"] = e.content;
  j["vm_view"] = e.vm_view;
  if (!e.license.empty()) j["license"] = e.license;
  std::string text = j.dump() + "\n";
  std::string tmp = path_ + ".tmp." + std::to_string(::getpid());
  int fd = open_private_file(tmp, O_WRONLY | O_TRUNC);
  if (fd < 0) throw Error("cannot write session cache " + quote(tmp) + ": " + std::strerror(errno));
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = (::close(fd) == 0) && ok;
  if (!ok || ::rename(tmp.c_str(), path_.c_str()) != 0) {
    ::unlink(tmp.c_str());
    throw Error("cannot write session cache " + quote(path_) + ": " + std::strerror(errno));
  }
}

void SessionCache::remove() const { ::unlink(path_.c_str()); }

SessionCache::Lock::Lock(const std::string& path) {
  fd_.reset(open_private_file(path, O_RDWR));
  if (!fd_) throw Error("cannot open lock file " + quote(path) + ": " + std::strerror(errno));
  while (::flock(fd_.get(), LOCK_EX) != 0) {
    if (errno != EINTR) throw Error("cannot lock " + quote(path) + ": " + std::strerror(errno));
  }
}

}  // namespace ceso
