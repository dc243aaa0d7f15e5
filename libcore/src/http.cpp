#include "ceso/http.hpp"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdio>
#include <mutex>

#include "ceso/error.hpp"
#include "ceso/tool.hpp"

namespace ceso {

namespace {

std::once_flag g_curl_init;

std::string hex_thumbprint(const unsigned char* md, unsigned len) {
  std::string out;
  char buf[4];
  for (unsigned i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof buf, i ? ":%02X" : "%02X", md[i]);
    out += buf;
  }
  return out;
}

size_t append_body(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

// SOAP calls run to the end even after SIGINT/SIGTERM (a request the host
// received is carried out, and its result is needed to undo it), except in
// a read-only tool (ReadOnlyRun, tool.hpp); plain GETs stop.
int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return *static_cast<bool*>(user) && interrupted() ? 1 : 0;  // non-zero aborts
}

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
  explicit Impl(TlsSettings s) : tls_policy(std::move(s)), tls(tls_policy.settings()) {}
  CURL* curl = nullptr;
  TlsPolicy tls_policy;
  const TlsSettings& tls;
  std::string* cookie = nullptr;
  curl_slist* soap_headers = nullptr;
  const std::function<bool(const char*, size_t)>* sink = nullptr;
  bool sink_aborted = false;
  bool abort_on_interrupt = false;  // true for get(), false for SOAP posts
  char errbuf[CURL_ERROR_SIZE] = {};

  static size_t on_header(char* data, size_t size, size_t n, void* user) {
    auto* self = static_cast<Impl*>(user);
    std::string_view line(data, size * n);
    constexpr std::string_view kSetCookie = "set-cookie:";
    if (line.size() > kSetCookie.size()) {
      std::string head(line.substr(0, kSetCookie.size()));
      for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
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

  static size_t on_data(char* data, size_t size, size_t n, void* user) {
    auto* self = static_cast<Impl*>(user);
    if (!(*self->sink)(data, size * n)) {
      self->sink_aborted = true;
      return 0;
    }
    return size * n;
  }
};

Http::Http(TlsSettings tls) : impl_(std::make_unique<Impl>(std::move(tls))) {
  std::call_once(g_curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  impl_->curl = curl_easy_init();
  if (!impl_->curl) throw Error("cannot initialise libcurl");
  impl_->cookie = &cookie_;
  CURL* c = impl_->curl;
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, impl_->errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
  // A host that stops answering: give up after 5 minutes without a byte.
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 300L);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &impl_->abort_on_interrupt);
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
  if (rc == CURLE_WRITE_ERROR && impl_->sink_aborted) return;
  std::string detail = impl_->errbuf[0] ? impl_->errbuf : curl_easy_strerror(rc);
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

namespace {

struct StreamTarget {
  CURL* curl;
  HttpResponse* resp;
  const std::function<void(std::string_view)>* stream;
  std::exception_ptr error;
};

size_t stream_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<StreamTarget*>(user);
  if (t->resp->status == 0) curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &t->resp->status);
  if (t->resp->status != 200) {
    t->resp->body.append(data, size * n);
    return size * n;
  }
  try {
    (*t->stream)(std::string_view(data, size * n));
  } catch (...) {
    t->error = std::current_exception();
    return 0;  // aborts the transfer
  }
  return size * n;
}

}  // namespace

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
  curl_easy_setopt(c, CURLOPT_HTTPGET, 0L);
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_RANGE, nullptr);
  StreamTarget target{c, &resp, stream, nullptr};
  if (stream) {
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, stream_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &target);
  } else {
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, append_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp.body);
  }
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
  return resp;
}

long Http::get(const std::string& url, uint64_t offset,
               const std::function<bool(const char*, size_t)>& sink) {
  CURL* c = impl_->curl;
  prepare(url);
  curl_easy_setopt(c, CURLOPT_POST, 0L);
  curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
  std::string range = offset ? std::to_string(offset) + "-" : std::string();
  curl_easy_setopt(c, CURLOPT_RANGE, offset ? range.c_str() : nullptr);
  impl_->sink = &sink;
  impl_->sink_aborted = false;
  impl_->abort_on_interrupt = true;
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Impl::on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, impl_.get());
  perform(url);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  return status;
}

}  // namespace ceso
