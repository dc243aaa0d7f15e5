#include "transport/relay.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>

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

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1)
      fail("cannot initialise SHA-256");
  }
  void add(const char* data, size_t n) { EVP_DigestUpdate(ctx_.get(), data, n); }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx_.get(), md, &len);
    return hex_encode(md, len, /*upper=*/false);
  }

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

RelayResult relay_once(DatastoreFiles& from, const std::string& from_url, const RelaySink& sink,
                       const RelayOptions& o) {
  BytePipe pipe(o.pipe_bytes);
  Sha256 sha;
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
    sink(*length, [&](char* buf, size_t n) {
      size_t k = pipe.read(buf, n);
      sha.add(buf, k);  // on this side: the GET's thread only receives
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
  return {got_bytes, sha.hex()};
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

RelayResult relay_to(DatastoreFiles& from, const std::string& from_url, const RelaySink& sink,
                     const RelayOptions& options) {
  return relay_once(from, from_url, sink, options);
}

std::optional<RelayResult> hash_remote_file(DatastoreFiles& files, const std::string& url,
                                            const DownloadOptions& options) {
  Sha256 sha;
  auto got = files.download(
      url, [&](const char* data, size_t n) { sha.add(data, n); }, options);
  if (!got) return std::nullopt;
  return RelayResult{*got, sha.hex()};
}

RelayResult hash_bytes(std::string_view data) {
  Sha256 sha;
  sha.add(data.data(), data.size());
  return {data.size(), sha.hex()};
}

struct StreamHash::Impl {
  Sha256 sha;
};
StreamHash::StreamHash() : impl_(std::make_unique<Impl>()) {}
StreamHash::~StreamHash() = default;
void StreamHash::add(const char* data, size_t n) {
  impl_->sha.add(data, n);
  bytes_ += n;
}
RelayResult StreamHash::result() { return {bytes_, impl_->sha.hex()}; }

}  // namespace ceso
