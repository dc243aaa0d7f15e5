// Datastore files over the host's HTTPS file service (/folder/…?dcPath=…&dsName=…),
// streamed, with resume.
//
// Each DatastoreFiles object has its own curl handle (a vim::Client's Http
// is busy with SOAP and hides the status line we need to check before the
// first byte is consumed); it uses the endpoint's TLS settings and the
// Client's session cookie.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "config/config.hpp"

namespace ceso {

// "[datastore1] web01/web01.vmdk" → {"datastore1", "web01/web01.vmdk"}.
struct DatastorePath {
  std::string datastore, path;
  std::string str() const { return "[" + datastore + "] " + path; }
};
// Throws Error(bad_input) for a string that is not a datastore path.
DatastorePath parse_datastore_path(std::string_view text);

struct DownloadOptions {
  int retries = 5;                                   // resumes after a cut connection
  std::chrono::milliseconds backoff{500};            // doubled after each retry (max 30 s)
  std::function<void(const std::string&)> on_retry;  // told why, before waiting
  std::function<bool()> cancelled;                   // polled; true stops with Exit::interrupted
  uint64_t limit_rate = 0;                           // bytes per second; 0: no limit
  // Told the body's length (the Content-Length of the first 200 answer)
  // before its first byte is handed to the sink; not called when the host
  // sends none or the body is empty. An exception thrown here stops the
  // download and is rethrown.
  std::function<void(uint64_t)> on_length;
};

class DatastoreFiles {
 public:
  DatastoreFiles(const Endpoint& endpoint, std::string cookie);
  ~DatastoreFiles();
  DatastoreFiles(const DatastoreFiles&) = delete;
  DatastoreFiles& operator=(const DatastoreFiles&) = delete;

  // Streams the file to `sink` in order, each byte once: a transfer cut
  // short is resumed with `Range: bytes=N-` from the last byte delivered, up
  // to options.retries times with backoff. Returns the byte count, or
  // nullopt when the host says the file does not exist (404). Throws
  // Error(connection) when the retries are used up, Error(failure) for other
  // HTTP errors, Error(interrupted) on SIGINT/SIGTERM.
  std::optional<uint64_t> download(const std::string& url,
                                   const std::function<void(const char*, size_t)>& sink,
                                   const DownloadOptions& options = {});

  // Streams bytes [offset, offset + length) of the file (`Range: bytes=A-B`,
  // which the host's /folder service honours for GET): the host must answer
  // 206 with exactly those bytes (200, more bytes, or fewer after the
  // retries fail: Error(failure) / Error(connection)); a cut transfer resumes
  // within the range. nullopt when the host says the file does not exist.
  std::optional<uint64_t> download_range(const std::string& url, uint64_t offset, uint64_t length,
                                         const std::function<void(const char*, size_t)>& sink,
                                         const DownloadOptions& options = {});
  // Streams the file from byte `offset` to its end (`Range: bytes=A-`, 206
  // answers as for download_range), resuming within it; returns the bytes
  // delivered, nullopt when the host says the file does not exist.
  std::optional<uint64_t> download_from(const std::string& url, uint64_t offset,
                                        const std::function<void(const char*, size_t)>& sink,
                                        const DownloadOptions& options = {});

  // Uploads `size` bytes (PUT) pulled from `source` (returns up to the
  // buffer's size; 0 at the end). The host's /folder service takes no
  // partial uploads, so a cut transfer is not resumed here: the caller
  // starts the file again. Throws Error(connection) for transport failures
  // and 401/403, Error(failure) for other HTTP errors and for a source that
  // ends before `size` bytes or goes on after, Error(interrupted) on
  // SIGINT/SIGTERM; an exception thrown by `source` is rethrown as it is.
  void upload(const std::string& url, uint64_t size,
              const std::function<size_t(char*, size_t)>& source,
              const std::function<bool()>& cancelled = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ceso
