#include "transport/relay.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "base/digest.hpp"
#include "base/error.hpp"
#include "base/util.hpp"

namespace ceso {

BytePipe::BytePipe(size_t capacity) : buf_(std::max<size_t>(capacity, 1)) {}

// Both sides move data in batches of at least a quarter of the pipe (or what
// is left): waking the other thread for every few kilobytes a socket read
// returns costs more than the copy on a busy machine.
size_t BytePipe::batch() const { return std::max<size_t>(buf_.size() / 4, 1); }

void BytePipe::write(const char* data, size_t n) {
  std::unique_lock<std::mutex> lock(mutex_);
  while (n > 0) {
    room_.wait(lock, [&] { return error_ || closed_ || size_ < buf_.size(); });
    if (error_) std::rethrow_exception(error_);
    if (closed_) ceso::fail("the pipe was closed while data was still being written");
    size_t tail = (head_ + size_) % buf_.size();
    size_t k = std::min({buf_.size() - size_, buf_.size() - tail, n});
    std::memcpy(buf_.data() + tail, data, k);
    size_ += k;
    data += k;
    n -= k;
    if (size_ >= batch() || size_ >= wanted_) data_.notify_one();
  }
}

void BytePipe::close() {
  std::lock_guard<std::mutex> lock(mutex_);
  closed_ = true;
  data_.notify_all();
  room_.notify_all();
}

size_t BytePipe::read(char* out, size_t n) {
  std::unique_lock<std::mutex> lock(mutex_);
  wanted_ = std::min(n, batch());
  data_.wait(lock, [&] { return error_ || closed_ || size_ >= wanted_; });
  wanted_ = SIZE_MAX;
  if (error_) std::rethrow_exception(error_);
  size_t k = std::min(n, size_);
  size_t first = std::min(k, buf_.size() - head_);
  std::memcpy(out, buf_.data() + head_, first);
  std::memcpy(out + first, buf_.data(), k - first);
  head_ = (head_ + k) % buf_.size();
  size_ -= k;
  if (k) room_.notify_one();
  return k;
}

void BytePipe::fail(std::exception_ptr e) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!error_) error_ = std::move(e);
  data_.notify_all();
  room_.notify_all();
}

void BytePipe::set_length(uint64_t n) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!length_) length_ = n;
  data_.notify_all();
}

std::optional<uint64_t> BytePipe::wait_length() {
  std::unique_lock<std::mutex> lock(mutex_);
  // A full pipe without a length: the writer announced none and never will.
  data_.wait(lock,
             [&] { return error_ || closed_ || length_.has_value() || size_ == buf_.size(); });
  if (length_) return length_;
  if (error_) std::rethrow_exception(error_);
  return std::nullopt;
}

namespace {

RelayResult relay_once(DatastoreFiles& from, const std::string& from_url, const RelaySink& sink,
                       const RelayOptions& o) {
  BytePipe pipe(o.pipe_bytes);
  Sha256 sha;
  std::optional<SegmentHashes> segments;
  uint64_t got_bytes = 0;
  bool missing = false;
  std::exception_ptr get_error;
  std::thread getter([&] {
    try {
      DownloadOptions d = o.download;
      d.on_length = [&](uint64_t n) { pipe.set_length(n); };
      auto got = from.download(
          from_url, [&](const char* data, size_t n) { pipe.write(data, n); }, d);
      if (!got) {
        missing = true;
        fail("the source host says " + from_url + " does not exist");
      }
      got_bytes = *got;
      pipe.set_length(*got);  // an empty body announces nothing
      pipe.close();
    } catch (...) {
      get_error = std::current_exception();
      pipe.fail(get_error);
    }
  });
  std::exception_ptr put_error;
  uint64_t sent = 0;
  try {
    std::optional<uint64_t> length = pipe.wait_length();
    if (!length) fail("the source host sent no length for " + from_url);
    segments.emplace(verify_segment(*length));
    sink(*length, [&](char* buf, size_t n) {
      size_t k = pipe.read(buf, n);
      sha.update(buf, k);  // on this side: the GET's thread only receives
      segments->update(buf, k);
      sent += k;
      if (o.progress && k) o.progress(k);
      return k;
    });
  } catch (...) {
    put_error = std::current_exception();
    pipe.fail(put_error);
  }
  getter.join();
  // The GET's own error explains a PUT that failed because the pipe did.
  if (get_error) std::rethrow_exception(get_error);
  if (put_error) std::rethrow_exception(put_error);
  (void)missing;
  if (sent != got_bytes)
    fail("sent " + std::to_string(sent) + " bytes of " + std::to_string(got_bytes));
  return {got_bytes, sha.hex(), segments->finish()};
}

}  // namespace

RelayResult relay_file(DatastoreFiles& from, const std::string& from_url, DatastoreFiles& to,
                       const std::string& to_url, const RelayOptions& options) {
  for (int attempt = 0;; ++attempt) {
    try {
      return relay_once(
          from, from_url,
          [&](uint64_t length, const std::function<size_t(char*, size_t)>& source) {
            to.upload(to_url, length, source, options.download.cancelled);
          },
          options);
    } catch (const Error& e) {
      // Only the PUT's connection failures start the file again (a GET
      // resumes by itself and has used up its retries when it throws).
      bool retry = e.code() == Exit::connection && attempt < options.put_retries &&
                   std::string(e.what()).find("datastore upload") != std::string::npos &&
                   !(options.download.cancelled && options.download.cancelled());
      if (!retry) throw;
      if (options.on_retry) options.on_retry(std::string(e.what()) + "; copying the file again");
    }
  }
}

uint64_t verify_segment(uint64_t file_bytes) {
  constexpr uint64_t MiB = uint64_t{1} << 20;
  // ⌈size / 8⌉ rounded up to whole MiB = ⌈size / 8 MiB⌉ MiB (no overflow: 64-bit sizes)
  uint64_t mib = file_bytes / (8 * MiB) + (file_bytes % (8 * MiB) != 0);
  return std::clamp(mib, uint64_t{1}, uint64_t{64}) * MiB;
}

std::optional<std::string> verify_remote_file(const Endpoint& endpoint, const std::string& cookie,
                                              const std::string& url, const RelayResult& sent,
                                              const DownloadOptions& options, int streams) {
  const uint64_t segment = verify_segment(sent.bytes);
  const size_t n = sent.segments.size();
  if (n == 0 || n == 1) {  // nothing to share out: one plain GET
    DatastoreFiles files(endpoint, cookie);
    SegmentHashes back(segment);
    auto got = files.download(
        url, [&](const char* d, size_t k) { back.update(d, k); }, options);
    if (!got) return std::nullopt;
    if (*got != sent.bytes)
      return "holds " + std::to_string(*got) + " bytes; " + std::to_string(sent.bytes) +
             " were sent";
    auto hashes = back.finish();
    if (hashes != sent.segments)
      return "differs from what was sent (XXH3-128 " + (hashes.empty() ? "-" : hashes[0]) +
             " read back, " + (n ? sent.segments[0] : "-") + " sent)";
    return "";
  }
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false}, missing{false};
  std::mutex mutex;
  size_t first_bad = n;  // the lowest segment that differs, and why
  std::string why;
  std::exception_ptr error;
  DownloadOptions o = options;
  o.cancelled = [&] { return stop.load() || (options.cancelled && options.cancelled()); };
  auto work = [&] {
    try {
      DatastoreFiles files(endpoint, cookie);
      for (size_t i; !stop && (i = next++) < n;) {
        Xxh128 h;
        uint64_t offset = i * segment;
        auto sink = [&](const char* d, size_t k) { h.update(d, k); };
        std::optional<uint64_t> got;
        std::string problem;
        if (i + 1 < n) {
          got = files.download_range(url, offset, segment, sink, o);
        } else {
          got = files.download_from(url, offset, sink, o);
          if (got && offset + *got != sent.bytes)
            problem = "holds " + std::to_string(offset + *got) + " bytes; " +
                      std::to_string(sent.bytes) + " were sent";
        }
        if (!got) {
          missing = stop = true;
          return;
        }
        if (problem.empty() && h.hex() != sent.segments[i])
          problem = "bytes " + std::to_string(offset) + "-" + std::to_string(offset + *got - 1) +
                    " differ from what was sent (XXH3-128 " + h.hex() + " read back, " +
                    sent.segments[i] + " sent)";
        if (!problem.empty()) {
          std::lock_guard<std::mutex> lock(mutex);
          if (i < first_bad) first_bad = i, why = problem;
          stop = true;
        }
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex);
      if (!error && !stop) error = std::current_exception();
      stop = true;
    }
  };
  std::vector<std::thread> workers;
  const size_t count = std::min<size_t>(static_cast<size_t>(std::max(streams, 1)), n);
  for (size_t w = 1; w < count; ++w) workers.emplace_back(work);
  work();
  for (auto& t : workers) t.join();
  if (options.cancelled && options.cancelled()) throw Error("interrupted", Exit::interrupted);
  if (missing) return std::nullopt;
  if (first_bad < n) return why;
  if (error) std::rethrow_exception(error);
  return "";
}

RelayResult relay_to(DatastoreFiles& from, const std::string& from_url, const RelaySink& sink,
                     const RelayOptions& options) {
  return relay_once(from, from_url, sink, options);
}

RelayResult hash_bytes(std::string_view data) {
  Sha256 sha;
  sha.update(data.data(), data.size());
  SegmentHashes segments(verify_segment(data.size()));
  segments.update(data.data(), data.size());
  return {data.size(), sha.hex(), segments.finish()};
}

}  // namespace ceso
