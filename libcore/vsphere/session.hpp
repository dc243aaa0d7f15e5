// The session cache: one file per endpoint+user in
// ${XDG_CACHE_HOME:-~/.cache}/ceso/sessions/ (mode 0600, directory 0700), so
// the tools of a pipeline log in once. It also keeps what never changes for a
// session (the service content, the VM container view) to save round trips.
#pragma once

#include <optional>
#include <string>

#include "base/file.hpp"
#include "base/records.hpp"
#include "base/util.hpp"  // sha256_hex, used by callers of the cache

namespace ceso {

class SessionCache {
 public:
  struct Entry {
    std::string cookie;    // "vmware_soap_session=\"…\""
    ordered_json content;  // serialized vim::ServiceContent
    std::string vm_view;   // ContainerView moref value, or ""
    // The host's licence editions (LicenseManager.licenses[].editionKey,
    // comma-separated) once read (Client::api_writes_restricted), or "".
    std::string license;
  };

  // `dir`: the cache directory; endpoint_id + user pick the file.
  SessionCache(std::string dir, const std::string& endpoint_id, const std::string& user);

  std::optional<Entry> load() const;
  // Atomic replace (temp file + rename), mode 0600.
  void save(const Entry& entry) const;
  void remove() const;
  const std::string& path() const { return path_; }

  // Held while logging in, so that processes starting together wait for the
  // first one's login instead of each logging in.
  class Lock {
   public:
    explicit Lock(const std::string& path);
    Lock(const Lock&) = delete;
    Lock& operator=(const Lock&) = delete;

   private:
    Fd fd_;  // closing it releases the flock
  };
  Lock lock() const { return Lock(path_ + ".lock"); }

 private:
  std::string dir_;
  std::string path_;
};

}  // namespace ceso
