#include "transport/datastore.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include "base/cancel.hpp"
#include "base/error.hpp"
#include "base/log.hpp"
#include "transport/http.hpp"

namespace ceso {

DatastorePath parse_datastore_path(std::string_view text) {
  size_t close = text.find(']');
  if (text.empty() || text[0] != '[' || close == std::string_view::npos)
    bad_input("not a datastore path: " + quote(text));
  DatastorePath p{std::string(text.substr(1, close - 1)), std::string(text.substr(close + 1))};
  while (!p.path.empty() && p.path.front() == ' ') p.path.erase(0, 1);
  return p;
}

namespace {

using Clock = std::chrono::steady_clock;

// Below this rate for the idle timeout a transfer is given up (CURLOPT_LOW_SPEED_*):
// a host that trickles a few bytes a second would otherwise hold a backup
// forever. --limit-rate below twice this lowers it to half the limit.
constexpr long kMinTransferRate = 1024;

long min_rate(uint64_t limit_rate) {
  if (!limit_rate) return kMinTransferRate;
  return static_cast<long>(std::clamp<uint64_t>(limit_rate / 2, 1, kMinTransferRate));
}

std::string rate_text(long rate) {
  return rate == 1024 ? "1 KiB/s" : std::to_string(rate) + " bytes/s";
}

// "[datastore1] web01/web01-flat.vmdk" for a /folder URL, for messages; the
// URL itself if it is not one.
std::string describe(const std::string& url) {
  std::unique_ptr<CURLU, void (*)(CURLU*)> u(curl_url(), curl_url_cleanup);
  char* path = nullptr;
  char* query = nullptr;
  std::string out = url;
  if (u && curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) == CURLUE_OK &&
      curl_url_get(u.get(), CURLUPART_PATH, &path, CURLU_URLDECODE) == CURLUE_OK) {
    std::string p = path;
    std::string ds;
    if (curl_url_get(u.get(), CURLUPART_QUERY, &query, 0) == CURLUE_OK) {
      std::string q = std::string("&") + query;
      if (size_t at = q.find("&dsName="); at != std::string::npos) {
        std::string v = q.substr(at + 8, q.find('&', at + 8) - at - 8);
        int n = 0;
        char* d = curl_easy_unescape(nullptr, v.c_str(), static_cast<int>(v.size()), &n);
        if (d) ds.assign(d, static_cast<size_t>(n));
        curl_free(d);
      }
    }
    if (p.rfind("/folder/", 0) == 0) out = "[" + ds + "] " + p.substr(8);
  }
  curl_free(path);
  curl_free(query);
  return host_text(out);
}

// What the host sent with an error status: its first line, if any.
std::string status_message(long status, const std::string& body, const std::string& url) {
  std::string msg = "HTTP " + http_status_text(status) + " from host for " + describe(url);
  if (std::string line = first_line(body); !line.empty()) msg += ": " + line;
  return msg;
}

// A transfer that hit the low-speed limit: nothing at all, or a trickle.
std::string idle_message(const char* verb, Clock::time_point last_byte, int idle_s, long rate) {
  bool nothing = Clock::now() - last_byte >= std::chrono::seconds(idle_s);
  return std::string("host ") + verb + (nothing ? " nothing" : " less than " + rate_text(rate)) +
         " for " + std::to_string(idle_s) + " s (CESO_IDLE_TIMEOUT)";
}

}  // namespace

struct DatastoreFiles::Impl {
  CURL* curl = nullptr;
  Endpoint ep;
  std::string cookie;
  char errbuf[CURL_ERROR_SIZE] = {};
  // Per attempt:
  const std::function<void(const char*, size_t)>* sink = nullptr;
  uint64_t delivered = 0;  // bytes handed to the sink over all attempts
  uint64_t skip = 0;       // bytes of this response already delivered before
  long status = 0;
  bool status_error = false;
  std::string error_body;  // the start of an error page, for the message
  std::exception_ptr sink_error;
  Clock::time_point last_byte;  // for the idle message
  // download_range: bytes [offset, offset + length) only, as 206 answers.
  bool ranged = false;
  bool open_end = false;  // download_from: to the file's end, whatever its length
  uint64_t offset = 0, length = 0;

  std::unique_ptr<TlsPolicy> tls;  // same policy object type as the SOAP connection
  const DownloadOptions* options = nullptr;
  bool cancelled() const { return interrupted() || (options->cancelled && options->cancelled()); }
  static int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return static_cast<Impl*>(user)->cancelled() ? 1 : 0;
  }

  // The status is known before the first body byte: an error page must never
  // reach the sink (it would be stored as disk data).
  static size_t on_data(char* data, size_t size, size_t n, void* user) {
    auto* self = static_cast<Impl*>(user);
    size_t len = size * n;
    self->last_byte = Clock::now();
    if (self->status == 0) {
      curl_easy_getinfo(self->curl, CURLINFO_RESPONSE_CODE, &self->status);
      bool ok = self->ranged ? self->status == 206
                             : self->status == 200 || (self->status == 206 && self->delivered > 0);
      if (!ok) {
        // Keep the start of the page for the message and stop: the status
        // is what matters, never curl's "failure writing output".
        self->status_error = true;
        self->error_body.assign(data, std::min<size_t>(len, 4096));
        if (self->ranged && self->status == 200)
          self->error_body = "the host ignored the Range header (a ranged read needs 206)";
        return 0;
      }
      // A server that ignores Range sends everything again from byte 0.
      self->skip = self->status == 200 ? self->delivered : 0;
      curl_off_t length = -1;
      if (self->status == 200 && self->delivered == 0 && self->options->on_length &&
          curl_easy_getinfo(self->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) == CURLE_OK &&
          length >= 0) {
        try {
          self->options->on_length(static_cast<uint64_t>(length));
        } catch (...) {
          self->sink_error = std::current_exception();
          return 0;
        }
      }
    }
    size_t drop = static_cast<size_t>(std::min<uint64_t>(self->skip, len));
    self->skip -= drop;
    if (self->ranged && !self->open_end && self->delivered + (len - drop) > self->length) {
      // More than the range asked for: never handed on as data.
      self->sink_error = std::make_exception_ptr(Error(
          "the host sent more than the " + std::to_string(self->length) + " bytes asked for"));
      return 0;
    }
    if (drop < len) {
      try {
        (*self->sink)(data + drop, len - drop);
      } catch (...) {
        self->sink_error = std::current_exception();
        return 0;
      }
      self->delivered += len - drop;
    }
    self->throttle(len);
    return len;
  }

  // --limit-rate: sleep while ahead of the allowed rate (libcurl 7.88's
  // CURLOPT_MAX_RECV_SPEED_LARGE does not hold back loopback transfers).
  std::chrono::steady_clock::time_point rate_start;
  uint64_t rate_bytes = 0;
  void throttle(size_t len) {
    if (!options->limit_rate) return;
    rate_bytes += len;
    auto due = rate_start + std::chrono::microseconds(rate_bytes * 1000000 / options->limit_rate);
    while (std::chrono::steady_clock::now() < due && !cancelled())
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
          due - std::chrono::steady_clock::now(), std::chrono::milliseconds(50)));
  }
};

DatastoreFiles::DatastoreFiles(const Endpoint& endpoint, std::string cookie)
    : impl_(std::make_unique<Impl>()) {
  impl_->ep = endpoint;
  impl_->cookie = std::move(cookie);
  impl_->curl = curl_easy_init();
  if (!impl_->curl) fail("cannot initialise libcurl");
  CURL* c = impl_->curl;
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, impl_->errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
  // No overall timeout (a disk takes as long as it takes), but the idle one.
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, kMinTransferRate);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(endpoint.idle_timeout_s));
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, Impl::on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, impl_.get());
  impl_->tls = std::make_unique<TlsPolicy>(TlsSettings{endpoint.insecure, endpoint.thumbprint,
                                                       endpoint.thumbprint_sha1, endpoint.ca_file});
  impl_->tls->apply(c);
  curl_easy_setopt(c, CURLOPT_COOKIE, impl_->cookie.c_str());
  curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L * 1024);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Impl::on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, impl_.get());
}

DatastoreFiles::~DatastoreFiles() { curl_easy_cleanup(impl_->curl); }

std::optional<uint64_t> DatastoreFiles::download_range(
    const std::string& url, uint64_t offset, uint64_t length,
    const std::function<void(const char*, size_t)>& sink, const DownloadOptions& options) {
  if (length == 0) return 0;
  struct Reset {
    Impl& im;
    ~Reset() { im.ranged = false; }
  } reset{*impl_};
  impl_->ranged = true;
  impl_->offset = offset;
  impl_->length = length;
  auto got = download(url, sink, options);
  if (got && *got != length)
    fail("datastore download of " + describe(url) + " ended after " + std::to_string(*got) +
         " of the " + std::to_string(length) + " bytes asked for at offset " +
         std::to_string(offset));
  return got;
}

std::optional<uint64_t> DatastoreFiles::download_from(
    const std::string& url, uint64_t offset, const std::function<void(const char*, size_t)>& sink,
    const DownloadOptions& options) {
  struct Reset {
    Impl& im;
    ~Reset() { im.ranged = im.open_end = false; }
  } reset{*impl_};
  impl_->ranged = impl_->open_end = true;
  impl_->offset = offset;
  impl_->length = 0;
  return download(url, sink, options);
}

std::optional<uint64_t> DatastoreFiles::download(
    const std::string& url, const std::function<void(const char*, size_t)>& sink,
    const DownloadOptions& options) {
  Impl& im = *impl_;
  CURL* c = im.curl;
  im.sink = &sink;
  im.options = &options;
  im.delivered = 0;
  im.rate_start = std::chrono::steady_clock::now();
  im.rate_bytes = 0;
  auto backoff = options.backoff;
  const long rate = min_rate(options.limit_rate);
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, rate);
  for (int attempt = 0;; ++attempt) {
    im.status = 0;
    im.status_error = false;
    im.error_body.clear();
    im.sink_error = nullptr;
    im.errbuf[0] = '\0';
    im.last_byte = Clock::now();
    std::string range = std::to_string(im.delivered) + "-";
    if (im.ranged)
      range = std::to_string(im.offset + im.delivered) + "-" +
              (im.open_end ? std::string() : std::to_string(im.offset + im.length - 1));
    curl_easy_setopt(c, CURLOPT_RANGE, im.delivered || im.ranged ? range.c_str() : nullptr);
    CURLcode rc = curl_easy_perform(c);
    if (im.sink_error) std::rethrow_exception(im.sink_error);
    if (im.cancelled()) throw Error("interrupted", Exit::interrupted);
    if (im.status == 0) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &im.status);
    if (rc == CURLE_OK && !im.status_error && (im.status == 200 || im.status == 206)) {
      if (im.ranged && !im.open_end && im.delivered < im.length && attempt < options.retries)
        continue;
      return im.delivered;
    }
    if (im.status == 404) return std::nullopt;
    const bool http_error = im.status_error || (rc == CURLE_OK && im.status >= 400);
    if (http_error) {
      std::string msg = status_message(im.status, im.error_body, url);
      if (im.status == 401 || im.status == 403)
        throw Error("datastore download refused: " + msg + " (the session is not authorized)",
                    Exit::connection);
      if (im.status < 500 || attempt >= options.retries) fail("datastore download failed: " + msg);
    }
    curl_off_t pretransfer = 0;
    curl_easy_getinfo(c, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
    std::string why = host_text(im.errbuf[0] ? im.errbuf : curl_easy_strerror(rc));
    if (rc == CURLE_OPERATION_TIMEDOUT && pretransfer > 0)
      why = idle_message("sent", im.last_byte, im.ep.idle_timeout_s, rate);
    if (http_error) {
      why = "HTTP " + http_status_text(im.status);
      if (std::string line = first_line(im.error_body); !line.empty()) why += ": " + line;
    }
    if (attempt >= options.retries)
      throw Error("datastore download of " + describe(url) + " failed after " +
                      std::to_string(options.retries) + " retries at byte " +
                      std::to_string(im.delivered) + ": " + why,
                  Exit::connection);
    if (options.on_retry)
      options.on_retry(why + "; resuming at byte " + std::to_string(im.delivered));
    for (auto left = backoff; left.count() > 0; left -= std::chrono::milliseconds(100)) {
      if (im.cancelled()) throw Error("interrupted", Exit::interrupted);
      std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(100)));
    }
    backoff = std::min(backoff * 2, std::chrono::milliseconds(30000));
  }
}

namespace {

struct UploadState {
  const std::function<size_t(char*, size_t)>* source = nullptr;
  uint64_t size = 0, sent = 0;
  std::exception_ptr error;
  std::string problem;
  std::string answer;           // the start of the host's answer, for messages
  Clock::time_point last_byte;  // last time the host took data
};

size_t upload_read(char* buf, size_t size, size_t n, void* user) {
  auto* st = static_cast<UploadState*>(user);
  size_t want = static_cast<size_t>(std::min<uint64_t>(size * n, st->size - st->sent));
  if (want == 0) {
    // Declared size reached: the source must be at its end too.
    char probe = 0;
    try {
      if ((*st->source)(&probe, 1) != 0) {
        st->problem = "the data is longer than the " + std::to_string(st->size) + " bytes declared";
        return CURL_READFUNC_ABORT;
      }
    } catch (...) {
      st->error = std::current_exception();
      return CURL_READFUNC_ABORT;
    }
    return 0;
  }
  size_t got = 0;
  st->last_byte = Clock::now();
  try {
    got = (*st->source)(buf, want);
  } catch (...) {
    st->error = std::current_exception();
    return CURL_READFUNC_ABORT;
  }
  if (got == 0) {
    // A short source would leave the host waiting for the rest.
    st->problem =
        "the data ends at byte " + std::to_string(st->sent) + " of " + std::to_string(st->size);
    return CURL_READFUNC_ABORT;
  }
  st->sent += got;
  return got;
}

size_t keep_answer(char* data, size_t size, size_t n, void* user) {
  auto* st = static_cast<UploadState*>(user);
  if (st->answer.size() < 4096)
    st->answer.append(data, std::min<size_t>(size * n, 4096 - st->answer.size()));
  return size * n;
}

}  // namespace

void DatastoreFiles::upload(const std::string& url, uint64_t size,
                            const std::function<size_t(char*, size_t)>& source,
                            const std::function<bool()>& cancelled) {
  Impl& im = *impl_;
  DownloadOptions opts;
  opts.cancelled = cancelled;
  im.options = &opts;
  CURL* c = curl_easy_duphandle(im.curl);  // same TLS, cookie and timeouts; own callbacks
  if (!c) fail("cannot initialise libcurl");
  std::unique_ptr<CURL, void (*)(CURL*)> guard(c, curl_easy_cleanup);
  UploadState st;
  st.source = &source;
  st.size = size;
  char errbuf[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT,
                   kMinTransferRate);  // not a download's --limit-rate floor
  curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(size));
  curl_easy_setopt(c, CURLOPT_READFUNCTION, upload_read);
  curl_easy_setopt(c, CURLOPT_READDATA, &st);
  curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_answer);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &st);
  st.last_byte = Clock::now();
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, impl_.get());
  // Large uploads to a slow datastore: no Expect: 100-continue round trip.
  curl_slist* headers = curl_slist_append(nullptr, "Expect:");
  headers = curl_slist_append(headers, "Content-Type: application/octet-stream");
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> hguard(headers, curl_slist_free_all);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  CURLcode rc = curl_easy_perform(c);
  im.options = nullptr;
  if (st.error) std::rethrow_exception(st.error);
  if (interrupted() || (cancelled && cancelled())) throw Error("interrupted", Exit::interrupted);
  if (!st.problem.empty()) fail("datastore upload of " + describe(url) + " stopped: " + st.problem);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (rc != CURLE_OK) {
    curl_off_t pretransfer = 0;
    curl_easy_getinfo(c, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
    std::string why = host_text(errbuf[0] ? errbuf : curl_easy_strerror(rc));
    if (rc == CURLE_OPERATION_TIMEDOUT && pretransfer > 0)
      why = idle_message("took", st.last_byte, im.ep.idle_timeout_s, kMinTransferRate);
    throw Error("datastore upload of " + describe(url) + " failed at byte " +
                    std::to_string(st.sent) + ": " + why,
                Exit::connection);
  }
  if (status == 401 || status == 403)
    throw Error("datastore upload refused: " + status_message(status, st.answer, url) +
                    " (the session is not authorized)",
                Exit::connection);
  if (status >= 500)  // busy or failing host: worth starting the file again
    throw Error("datastore upload failed: " + status_message(status, st.answer, url),
                Exit::connection);
  if (status != 200 && status != 201 && status != 204)
    fail("datastore upload failed: " + status_message(status, st.answer, url));
}

}  // namespace ceso
