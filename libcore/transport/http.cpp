#include "transport/http.hpp"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <chrono>
#include <cstdio>
#include <mutex>

#include "base/cancel.hpp"
#include "base/error.hpp"
#include "base/log.hpp"
#include "base/util.hpp"

namespace ceso {

namespace {

std::once_flag g_curl_init;

std::string hex_thumbprint(const unsigned char* md, unsigned len) {
  return hex_encode(md, len, /*upper=*/true, ':');
}

using Clock = std::chrono::steady_clock;

}  // namespace

namespace {

// Called by OpenSSL instead of its own chain verification: record the leaf's
// SHA-256 thumbprint (for messages and pinning), then either compare it with
// the pinned one or run the normal verification.
int verify_cert(X509_STORE_CTX* store, void* arg) {
  auto* self = static_cast<TlsPolicy*>(arg);
  X509* cert = X509_STORE_CTX_get0_cert(store);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  if (cert && X509_digest(cert, EVP_sha256(), md, &len) == 1)
    self->record_peer_thumbprint(hex_thumbprint(md, len));
  const TlsSettings& tls = self->settings();
  if (tls.insecure) return 1;
  if (self->pinned()) {
    if (!tls.thumbprint.empty() && self->peer_thumbprint() == tls.thumbprint) return 1;
    if (!tls.thumbprint_sha1.empty() && cert && X509_digest(cert, EVP_sha1(), md, &len) == 1 &&
        hex_thumbprint(md, len) == tls.thumbprint_sha1)
      return 1;
    X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
  }
  return X509_verify_cert(store);
}

CURLcode on_ssl_ctx(CURL*, void* ssl_ctx, void* arg) {
  auto* ctx = static_cast<SSL_CTX*>(ssl_ctx);
  auto* self = static_cast<TlsPolicy*>(arg);
  SSL_CTX_set_cert_verify_callback(ctx, verify_cert, self);
  // With a pinned thumbprint curl's own peer check is off, so ask OpenSSL to
  // fail the handshake itself when our callback says no.
  if (self->pinned()) SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  return CURLE_OK;
}

}  // namespace

std::string http_status_text(long status) {
  static const std::pair<long, const char*> kReasons[] = {{400, "Bad Request"},
                                                          {401, "Unauthorized"},
                                                          {403, "Forbidden"},
                                                          {404, "Not Found"},
                                                          {405, "Method Not Allowed"},
                                                          {408, "Request Timeout"},
                                                          {409, "Conflict"},
                                                          {411, "Length Required"},
                                                          {413, "Content Too Large"},
                                                          {416, "Range Not Satisfiable"},
                                                          {429, "Too Many Requests"},
                                                          {500, "Internal Server Error"},
                                                          {501, "Not Implemented"},
                                                          {502, "Bad Gateway"},
                                                          {503, "Service Unavailable"},
                                                          {504, "Gateway Timeout"},
                                                          {507, "Insufficient Storage"}};
  for (const auto& [code, reason] : kReasons)
    if (code == status) return std::to_string(status) + " " + reason;
  return std::to_string(status);
}

std::string first_line(std::string_view body) {
  std::string text;  // the body without tags, up to the first non-blank line
  bool in_tag = false;
  for (size_t i = 0; i < body.size() && i < 64 * 1024; ++i) {
    char c = body[i];
    if (c == '<') in_tag = true;
    if (!in_tag) {
      if ((c == '\n' || c == '\r') && text.find_first_not_of(" \t") != std::string::npos) break;
      if (c == '\n' || c == '\r')
        text.clear();
      else
        text += c;
    }
    if (c == '>') in_tag = false;
  }
  size_t a = text.find_first_not_of(" \t");
  if (a == std::string::npos) return "";
  size_t b = text.find_last_not_of(" \t");
  return host_text(std::string_view(text).substr(a, b + 1 - a));
}

void TlsPolicy::apply(void* handle) {
  CURL* c = static_cast<CURL*>(handle);
  curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
  curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, this);
  bool check_ca = !settings_.insecure && !pinned();
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, check_ca ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, check_ca ? 2L : 0L);
  if (!settings_.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, settings_.ca_file.c_str());
}

struct Http::Impl {
  Impl(TlsSettings s, HttpLimits l)
      : tls_policy(std::move(s)), tls(tls_policy.settings()), limits(l) {}
  CURL* curl = nullptr;
  TlsPolicy tls_policy;
  const TlsSettings& tls;
  HttpLimits limits;
  std::string* cookie = nullptr;
  curl_slist* soap_headers = nullptr;
  bool abort_on_interrupt = false;
  char errbuf[CURL_ERROR_SIZE] = {};

  // Per request: answer bytes held (headers + collected body) against
  // limits.max_answer_bytes; the call's start and the time spent in the
  // caller's stream function, against limits.call_timeout_s.
  bool soap = false;
  uint64_t held = 0;
  bool too_large = false;
  Clock::time_point started;
  Clock::duration in_caller{};
  bool call_expired = false;

  void begin(bool is_soap) {
    soap = is_soap;
    held = 0;
    too_large = false;
    started = Clock::now();
    in_caller = {};
    call_expired = false;
  }

  // False (and too_large set) when `len` more bytes would break the cap.
  bool hold(size_t len) {
    if (!soap || !limits.max_answer_bytes) return true;
    held += len;
    if (held > limits.max_answer_bytes) too_large = true;
    return !too_large;
  }

  // SOAP calls run to the end even after SIGINT/SIGTERM (a request the host
  // received is carried out, and its result is needed to undo it); plain GETs
  // stop. A SOAP call that has taken longer than the call timeout stops.
  static int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    auto* self = static_cast<Impl*>(user);
    if (self->abort_on_interrupt && interrupted()) return 1;  // non-zero aborts
    if (self->soap && self->limits.call_timeout_s > 0 &&
        Clock::now() - self->started - self->in_caller >
            std::chrono::seconds(self->limits.call_timeout_s)) {
      self->call_expired = true;
      return 1;
    }
    return 0;
  }

  static size_t on_header(char* data, size_t size, size_t n, void* user) {
    auto* self = static_cast<Impl*>(user);
    if (!self->hold(size * n)) return 0;  // endless headers
    std::string_view line(data, size * n);
    constexpr std::string_view kSetCookie = "set-cookie:";
    if (line.size() > kSetCookie.size()) {
      std::string head = ascii_lower(line.substr(0, kSetCookie.size()));
      if (head == kSetCookie && self->cookie) {
        std::string_view v = line.substr(kSetCookie.size());
        while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
        size_t semi = v.find(';');
        std::string_view pair = v.substr(0, semi);
        while (!pair.empty() && (pair.back() == '\r' || pair.back() == '\n')) pair.remove_suffix(1);
        if (pair.substr(0, 20) == "vmware_soap_session=") *self->cookie = std::string(pair);
      }
    }
    return size * n;
  }
};

Http::Http(TlsSettings tls, HttpLimits limits)
    : impl_(std::make_unique<Impl>(std::move(tls), limits)) {
  std::call_once(g_curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  impl_->curl = curl_easy_init();
  if (!impl_->curl) throw Error("cannot initialise libcurl");
  impl_->cookie = &cookie_;
  CURL* c = impl_->curl;
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, impl_->errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
  // A host that stops answering: give up after the idle timeout without a
  // byte (curl: below 1 byte/s for that long; 0 turns the check off).
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(limits.idle_timeout_s));
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, Impl::on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, impl_.get());
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, Impl::on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, impl_.get());
  impl_->tls_policy.apply(c);
  impl_->soap_headers = curl_slist_append(nullptr, "Content-Type: text/xml; charset=utf-8");
  impl_->soap_headers = curl_slist_append(impl_->soap_headers, "Expect:");
}

Http::~Http() {
  curl_slist_free_all(impl_->soap_headers);
  curl_easy_cleanup(impl_->curl);
}

const std::string& Http::peer_thumbprint() const { return impl_->tls_policy.peer_thumbprint(); }

void Http::prepare(const std::string& url) {
  CURL* c = impl_->curl;
  impl_->errbuf[0] = '\0';
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_COOKIE, cookie_.empty() ? nullptr : cookie_.c_str());
}

void Http::perform(const std::string& url) {
  CURLcode rc = curl_easy_perform(impl_->curl);
  if (rc == CURLE_OK) return;
  throw_if_interrupted();
  const HttpLimits& lim = impl_->limits;
  if (impl_->too_large)
    throw LimitExceeded("host answer larger than " + size_text(lim.max_answer_bytes) +
                        " (CESO_MAX_ANSWER_MIB)");
  if (impl_->call_expired)
    throw LimitExceeded("host call took more than " + std::to_string(lim.call_timeout_s) +
                        " s (CESO_CALL_TIMEOUT)");
  curl_off_t pretransfer = 0;  // 0: the request was never sent (connect, TLS)
  curl_easy_getinfo(impl_->curl, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
  if (rc == CURLE_OPERATION_TIMEDOUT && pretransfer > 0)
    throw LimitExceeded("host sent nothing for " + std::to_string(lim.idle_timeout_s) +
                        " s (CESO_IDLE_TIMEOUT)");
  // curl's message may quote what the host sent (a status line, a header).
  std::string detail = host_text(impl_->errbuf[0] ? impl_->errbuf : curl_easy_strerror(rc));
  if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CONNECT_ERROR ||
      rc == CURLE_SSL_CACERT_BADFILE) {
    std::string msg = "TLS: cannot verify the certificate of " + url + ": " + detail;
    const std::string& seen = impl_->tls_policy.peer_thumbprint();
    if (!seen.empty() && seen != impl_->tls.thumbprint) {
      msg += "\nThe host's certificate has SHA-256 thumbprint " + seen + ".";
      if (!impl_->tls.thumbprint.empty())
        msg += "\nIt does not match the pinned thumbprint " + impl_->tls.thumbprint +
               ": if the host's certificate was replaced on purpose, pin the new one.";
      msg += "\nIf that is your host's certificate, pin it:  export CESO_THUMBPRINT=" + seen +
             "\n(or set CESO_INSECURE=1 to skip certificate checks).";
    }
    throw Error(msg, Exit::connection);
  }
  throw Error("cannot reach " + url + ": " + detail, Exit::connection);
}

namespace {}  // namespace

// The body of a SOAP answer: collected (within the size cap), or, for a 200
// answer with a `stream`, handed to it (which keeps its own cap: the parser's).
struct Http::StreamTarget {
  Impl* impl;
  HttpResponse* resp;
  const std::function<void(std::string_view)>* stream;
  std::exception_ptr error;

  static size_t on_body(char* data, size_t size, size_t n, void* user) {
    auto* t = static_cast<StreamTarget*>(user);
    if (t->resp->status == 0)
      curl_easy_getinfo(t->impl->curl, CURLINFO_RESPONSE_CODE, &t->resp->status);
    if (!t->stream || t->resp->status != 200) {
      if (!t->impl->hold(size * n)) return 0;  // aborts the transfer
      t->resp->body.append(data, size * n);
      return size * n;
    }
    auto start = Clock::now();
    try {
      (*t->stream)(std::string_view(data, size * n));
    } catch (...) {
      t->error = std::current_exception();
      return 0;  // aborts the transfer
    }
    // The caller's time (parsing, handing records on to a slow pipe) is not
    // the host's.
    t->impl->in_caller += Clock::now() - start;
    return size * n;
  }
};

HttpResponse Http::post_soap(const std::string& url, const std::string& body,
                             const std::string& soap_action,
                             const std::function<void(std::string_view)>* stream) {
  CURL* c = impl_->curl;
  prepare(url);
  curl_slist* headers = curl_slist_append(nullptr, ("SOAPAction: " + soap_action).c_str());
  for (curl_slist* h = impl_->soap_headers; h; h = h->next)
    headers = curl_slist_append(headers, h->data);
  HttpResponse resp;
  impl_->abort_on_interrupt = calls_abort_on_interrupt();
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  StreamTarget target{impl_.get(), &resp, stream, nullptr};
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, StreamTarget::on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &target);
  impl_->begin(true);
  try {
    perform(url);
  } catch (...) {
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
    curl_slist_free_all(headers);
    if (target.error) std::rethrow_exception(target.error);
    throw;
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
  curl_slist_free_all(headers);
  if (target.error) std::rethrow_exception(target.error);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
  curl_off_t received = 0;
  curl_easy_getinfo(c, CURLINFO_SIZE_DOWNLOAD_T, &received);
  resp.bytes_received = static_cast<uint64_t>(received);
  return resp;
}

}  // namespace ceso
