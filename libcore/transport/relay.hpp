// Host-to-host file copies through the datastore HTTP endpoints (ceso-mv):
// a GET on one host and a PUT on the other run at once, joined by a bounded
// in-memory pipe, so a disk never lands on the local machine and memory
// stays at the pipe's size whatever the file's size. The bytes are hashed
// (SHA-256) as they pass.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/digest.hpp"
#include "transport/datastore.hpp"

namespace ceso {

// A bounded byte pipe between one writer thread and one reader thread. Either
// side may stop it with an error, which the other side then throws from its
// next (or current, blocked) call. Thread-safe for one writer and one reader.
class BytePipe {
 public:
  explicit BytePipe(size_t capacity);

  // Blocks while the pipe is full. Throws the error the reader stopped it
  // with, or Error(failure) when the reader closed it without one.
  void write(const char* data, size_t n);
  // The writer's end of data: read() returns 0 once the pipe is drained.
  void close();
  // Blocks while the pipe is empty and open; returns up to n bytes, 0 at the
  // end. Throws the error the writer stopped it with.
  size_t read(char* out, size_t n);
  // Stops both sides: blocked and later calls of the other side throw `e`.
  // The first error wins.
  void fail(std::exception_ptr e);

  // The length the writer announces before its data (the PUT needs it
  // first); wait_length() blocks until it is set, returns nullopt when the
  // pipe was closed or filled up first, throws the error when it failed first.
  void set_length(uint64_t n);
  std::optional<uint64_t> wait_length();

 private:
  size_t batch() const;
  std::mutex mutex_;
  std::condition_variable data_, room_;
  std::vector<char> buf_;
  size_t head_ = 0, size_ = 0;
  size_t wanted_ = SIZE_MAX;  // what a waiting reader waits for
  bool closed_ = false;
  std::exception_ptr error_;
  std::optional<uint64_t> length_;
};

// A file is read back and compared in segments of this size, each on its
// own (verify_remote_file): an eighth of the file in whole MiB, at least
// 1 MiB and at most 64 MiB.
uint64_t verify_segment(uint64_t file_bytes);

struct RelayResult {
  uint64_t bytes = 0;
  std::string sha256;  // lowercase hex of the bytes
  // XXH3-128 of each verify_segment(bytes) bytes (the last piece may be
  // shorter), what verify_remote_file compares.
  std::vector<std::string> segments;
};

struct RelayOptions {
  size_t pipe_bytes = 8u << 20;  // memory between the GET and the PUT
  DownloadOptions download;      // the GET's retries (it resumes), cancel, rate
  // The PUT cannot resume: after a connection failure the whole file is
  // copied again, GET included, this many times.
  int put_retries = 2;
  std::function<void(uint64_t)> progress;  // bytes that reached the target
  std::function<void(const std::string&)> on_retry;
};

// The writing side of a relay: told the file's length first, it pulls every
// byte from `source` (which returns 0 at the end and throws the GET's error)
// and puts them on the target. Its exceptions stop the GET.
using RelaySink =
    std::function<void(uint64_t length, const std::function<size_t(char*, size_t)>& source)>;

// Copies `from_url` (GET on `from`) into `sink` through a BytePipe, the GET
// on its own thread, once (no restart: a sink that fails leaves the target
// to the caller). Returns the byte count and SHA-256 of what the sink took;
// errors as relay_file. ceso-mv's SSH target (a free host) writes this way.
RelayResult relay_to(DatastoreFiles& from, const std::string& from_url, const RelaySink& sink,
                     const RelayOptions& options);

// Copies `from_url` (GET on `from`) to `to_url` (PUT on `to`) through a
// BytePipe, the GET on its own thread. Returns the byte count and the
// SHA-256 of what was sent. Throws Error(failure) when the source file does
// not exist (404) or sends no length, the errors of DatastoreFiles otherwise
// (the first of the two sides'), Error(interrupted) when `download.cancelled`
// says so. What the target holds after a failure is unknown: the caller
// removes it.
RelayResult relay_file(DatastoreFiles& from, const std::string& from_url, DatastoreFiles& to,
                       const std::string& to_url, const RelayOptions& options);

// Reads the file at `url` back from the host and compares it with what was
// sent: its size, and each segment's XXH3-128 (a check of bytes against
// bytes: SHA-256, the identity the records carry, is taken once, as the
// bytes pass on the way out). Up to `streams` ranged GETs run at once, each
// on its own connection with the endpoint's settings and `cookie`. Returns
// "" when everything matches, else a sentence saying where the file differs;
// nullopt when the host says the file does not exist. Throws the errors of
// DatastoreFiles (the first worker's).
std::optional<std::string> verify_remote_file(const Endpoint& endpoint, const std::string& cookie,
                                              const std::string& url, const RelayResult& sent,
                                              const DownloadOptions& options = {}, int streams = 2);

// SHA-256 and segments of a string, as RelayResult (a file sent from memory).
RelayResult hash_bytes(std::string_view data);

// SHA-256 and byte count of data given in pieces (a file read back).
class StreamHash {
 public:
  void add(const char* data, size_t n) {
    sha_.update(data, n);
    bytes_ += n;
  }
  RelayResult result() { return {bytes_, sha_.hex(), {}}; }  // once, at the end

 private:
  Sha256 sha_;
  uint64_t bytes_ = 0;
};

}  // namespace ceso
