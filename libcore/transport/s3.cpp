#include "transport/s3.hpp"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>

#include "base/cancel.hpp"
#include "base/codec.hpp"
#include "base/error.hpp"
#include "base/log.hpp"
#include "base/url.hpp"
#include "base/util.hpp"
#include "base/xml.hpp"
#include "transport/http.hpp"

namespace ceso {

namespace {

using Clock = std::chrono::steady_clock;
using Params = std::vector<std::pair<std::string, std::string>>;

constexpr uint64_t kMiB = 1u << 20;
constexpr uint64_t kMinPart = 5 * kMiB;      // S3: every part but the last
constexpr int kMaxParts = 10000;             // S3: parts per upload
constexpr uint64_t kReadChunk = 8 * kMiB;    // ranged GETs of a reader
constexpr uint64_t kMaxCopy = 5ull << 30;    // S3: CopyObject source size
constexpr size_t kMaxErrorBody = 64 * 1024;  // an error answer we keep
constexpr size_t kMaxListBody = 16 * kMiB;   // a listing page (1,000 keys)

[[noreturn]] void bad_url(const std::string& url, const std::string& why) {
  usage_error("backup target " + quote(redact_url(url)) + ": " + why);
}

bool loopback(const std::string& host) {
  return host == "127.0.0.1" || host == "::1" || host == "localhost";
}

std::string trim(std::string s) {
  size_t a = s.find_first_not_of(" \t\r");
  if (a == std::string::npos) return "";
  size_t b = s.find_last_not_of(" \t\r");
  return s.substr(a, b + 1 - a);
}

std::string md5_base64(const char* data, size_t size) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  if (EVP_Digest(data, size, md, &len, EVP_md5(), nullptr) != 1) fail("MD5 failed (libcrypto)");
  return base64_encode(std::string_view(reinterpret_cast<const char*>(md), len));
}

int env_int(const Environment& env, const char* name, int def, int min, int max) {
  auto v = env(name);
  if (!v || v->empty()) return def;
  char* end = nullptr;
  errno = 0;
  long n = std::strtol(v->c_str(), &end, 10);
  if (*end || errno || n < min || n > max)
    usage_error(std::string(name) + "=" + quote(*v) + ": expected a whole number from " +
                std::to_string(min) + " to " + std::to_string(max));
  return static_cast<int>(n);
}

// The profile of an AWS shared credentials file (INI: [name], key = value,
// '#' and ';' comments).
SigV4Credentials read_credentials_file(const std::string& path, const std::string& profile,
                                       bool* found) {
  SigV4Credentials c;
  *found = false;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return c;
  if (st.st_mode & 077)
    throw Error("S3 credentials file " + quote(path) +
                    " is readable by group or others; run: chmod 600 " + sh_single_quote(path),
                Exit::policy);
  std::ifstream in(path);
  std::string line, section;
  int n = 0;
  while (std::getline(in, line)) {
    if (++n > 100000) break;
    line = trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') {
      section = trim(line.substr(1, line.find(']') - 1));
      continue;
    }
    if (section != profile) continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = ascii_lower(trim(line.substr(0, eq)));
    std::string val = trim(line.substr(eq + 1));
    if (key == "aws_access_key_id") c.access_key = val;
    if (key == "aws_secret_access_key") c.secret_key = val;
    if (key == "aws_session_token") c.session_token = val;
  }
  *found = !c.access_key.empty() && !c.secret_key.empty();
  return c;
}

}  // namespace

S3Url parse_s3_url(const std::string& url) {
  static const UrlSyntax kSyntax{{"s3"}, "", false};
  std::string why;
  auto parts = parse_url_parts(url, kSyntax, &why);
  if (!parts) bad_url(url, why);
  if (parts->user || parts->password)
    bad_url(url,
            "credentials do not belong in the URL (use the environment or ~/.aws/credentials)");
  if (parts->port) bad_url(url, "a port (the endpoint is AWS_ENDPOINT_URL or backup.s3_endpoint)");
  const std::string& b = parts->host;
  bool ok = b.size() >= 3 && b.size() <= 63 &&
            std::isalnum(static_cast<unsigned char>(b.front())) &&
            std::isalnum(static_cast<unsigned char>(b.back()));
  for (char c : b)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-')) ok = false;
  // The parser lower-cases the host; a bucket name must be lower-case already.
  size_t at = url.find("://");
  std::string written = at == std::string::npos ? "" : url.substr(at + 3, b.size());
  if (written != b) ok = false;
  if (!ok || parts->ipv6)
    bad_url(url, "the bucket name must be 3-63 characters of a-z, 0-9, '.', '-'");
  std::string prefix = parts->decoded_path;
  if (has_dot_segment(prefix)) bad_url(url, "a '.' or '..' component in the prefix");
  while (!prefix.empty() && prefix.front() == '/') prefix.erase(0, 1);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  if (!prefix.empty()) {
    try {
      check_target_path(prefix, false);
    } catch (const Error& e) {
      bad_url(url, "the prefix is not a clean path (an empty component or a control character)");
    }
  }
  return {b, prefix};
}

S3Settings resolve_s3_settings(const S3Url& url, const Environment& env) {
  S3Settings s;
  S3Config cfg = config_backup_s3(env);
  auto first = [&](std::initializer_list<const char*> names) -> std::optional<std::string> {
    for (const char* n : names)
      if (auto v = env(n); v && !v->empty()) return v;
    return std::nullopt;
  };
  if (auto r = first({"AWS_REGION", "AWS_DEFAULT_REGION"}))
    s.region = *r;
  else if (cfg.region)
    s.region = *cfg.region;
  for (char c : s.region)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-')
      usage_error("S3 region " + quote(s.region) + ": expected letters, digits and '-'");
  std::optional<std::string> endpoint = first({"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"});
  if (!endpoint) endpoint = cfg.endpoint;
  if (endpoint) {
    static const UrlSyntax kSyntax{{"http", "https"}, "", false};
    std::string why;
    auto p = parse_url_parts(*endpoint, kSyntax, &why);
    if (!p) usage_error("S3 endpoint " + quote(redact_url(*endpoint)) + ": " + why);
    if (p->user || p->password || p->path != "/")
      usage_error("S3 endpoint " + quote(redact_url(*endpoint)) +
                  ": expected scheme://host[:port] without user or path");
    if (p->scheme == "http" && !loopback(p->host))
      throw Error("S3 endpoint " + quote(*endpoint) +
                      ": plain http to a host other than this machine is refused (use https)",
                  Exit::policy);
    s.endpoint = p->scheme + "://" + p->host_ref() + (p->port ? ":" + std::to_string(p->port) : "");
    s.path_style = true;
  } else {
    s.path_style = url.bucket.find('.') != std::string::npos;
    s.endpoint =
        "https://" + (s.path_style ? "" : url.bucket + ".") + "s3." + s.region + ".amazonaws.com";
  }
  if (auto ca = env("AWS_CA_BUNDLE"); ca && !ca->empty()) s.ca_file = *ca;
  auto id = env("AWS_ACCESS_KEY_ID");
  auto secret = env("AWS_SECRET_ACCESS_KEY");
  if (id && !id->empty() && secret && !secret->empty()) {
    s.creds = {*id, *secret, env("AWS_SESSION_TOKEN").value_or("")};
    s.creds_source = "the environment (AWS_ACCESS_KEY_ID)";
  } else {
    std::string profile = first({"AWS_PROFILE"}).value_or(cfg.profile.value_or("default"));
    std::string file;
    if (auto f = first({"AWS_SHARED_CREDENTIALS_FILE"}))
      file = expand_home(*f, env);
    else if (cfg.credentials_file)
      file = *cfg.credentials_file;
    else
      file = expand_home("~/.aws/credentials", env);
    bool found = false;
    s.creds = read_credentials_file(file, profile, &found);
    if (!found)
      throw Error(
          "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
          "aws_access_key_id and aws_secret_access_key in profile " +
              quote(profile) + " of " + quote(file),
          Exit::connection);
    s.creds_source = file + " [" + profile + "]";
  }
  s.retry_budget_s = env_int(env, "CESO_S3_RETRY_BUDGET", 900, 0, 86400);
  s.part_size = static_cast<uint64_t>(env_int(env, "CESO_S3_PART_MIB", 8, 5, 5120)) * kMiB;
  return s;
}

namespace {

std::once_flag g_curl_init;

struct S3Reply {
  long status = 0;
  std::string body;
  std::string etag, content_range;
  std::optional<uint64_t> content_length;
};

struct S3Request {
  std::string method = "GET";
  std::string key;  // the object's full key; "" for the bucket
  Params query;
  Params headers;
  const char* body = nullptr;  // PUT/POST body (not owned), or nullptr
  size_t body_size = 0;
  size_t max_body = kMaxErrorBody;  // bytes of a 2xx answer kept
};

// One S3 endpoint and bucket: signing, sending, retrying.
class S3Client {
 public:
  S3Client(S3Url url, S3Settings s, std::string target_url)
      : url_(std::move(url)),
        s_(std::move(s)),
        target_url_(std::move(target_url)),
        tls_(TlsSettings{false, "", "", s_.ca_file}) {
    std::call_once(g_curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    curl_ = curl_easy_init();
    if (!curl_) throw Error("cannot initialise libcurl");
  }
  ~S3Client() { curl_easy_cleanup(curl_); }
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  const S3Url& url() const { return url_; }
  const S3Settings& settings() const { return s_; }

  // Sends `req`, retrying transient failures (connection errors, 5xx, 429,
  // RequestTimeout) with doubling pauses within the retry budget. Returns
  // any other answer; throws Error(connection) at once for a refused
  // signature, key, token or clock, and Error(failure) for a missing bucket.
  S3Reply call(const S3Request& req) {
    std::lock_guard<std::mutex> lock(mu_);
    auto start = Clock::now();
    auto budget = std::chrono::seconds(s_.retry_budget_s);
    double pause = 0.5;
    int attempts = 0;
    for (;;) {
      ++attempts;
      std::string transient;
      S3Reply r;
      auto left = budget - (Clock::now() - start);
      long timeout_ms = static_cast<long>(std::max<long long>(
          1000, std::chrono::duration_cast<std::chrono::milliseconds>(left).count()));
      bool too_large = false;
      CURLcode rc = send_once(req, r, timeout_ms, &too_large);
      if (too_large)
        throw LimitExceeded("S3 " + req.method + " " + what(req) +
                            ": the server's answer is larger than " +
                            size_text(std::max(req.max_body, kMaxErrorBody)));
      if (rc != CURLE_OK) {
        throw_if_interrupted();
        transient = host_text(errbuf_[0] ? errbuf_ : curl_easy_strerror(rc));
      } else if (r.status >= 500 || r.status == 429 ||
                 (r.status == 400 && error_code(r) == "RequestTimeout")) {
        transient = describe(r);
      } else {
        check_permanent(req, r);
        return r;
      }
      auto spent = Clock::now() - start;
      if (spent + std::chrono::duration<double>(pause) > budget)
        throw LimitExceeded("S3 " + req.method + " " + what(req) + " failed " +
                            std::to_string(attempts) + " time(s) within the retry budget of " +
                            std::to_string(s_.retry_budget_s) +
                            " s (CESO_S3_RETRY_BUDGET): " + transient);
      log_retry(req, transient, pause);
      auto until = Clock::now() + std::chrono::duration<double>(pause);
      while (Clock::now() < until) {
        throw_if_interrupted();
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      pause = std::min(pause * 2, 30.0);
    }
  }

  static std::string error_code(const S3Reply& r) {
    if (r.body.find("<Error") == std::string::npos) return "";
    try {
      auto doc = xml::parse(r.body);
      return doc.name == "Error" ? host_text(doc.child_text("Code")) : "";
    } catch (const std::exception&) {
      return "";
    }
  }

  // "HTTP 403 Forbidden: SignatureDoesNotMatch: The request signature …"
  static std::string describe(const S3Reply& r) {
    std::string msg = "HTTP " + http_status_text(r.status);
    try {
      auto doc = xml::parse(r.body);
      if (doc.name == "Error")
        msg +=
            ": " + host_text(doc.child_text("Code")) + ": " + host_text(doc.child_text("Message"));
    } catch (const std::exception&) {
    }
    return msg;
  }

  std::string what(const S3Request& req) const {
    return quote("s3://" + url_.bucket + "/" + req.key);
  }

 private:
  S3Url url_;
  S3Settings s_;
  std::string target_url_;
  TlsPolicy tls_;
  CURL* curl_ = nullptr;
  std::mutex mu_;
  char errbuf_[CURL_ERROR_SIZE] = {};

  struct Transfer {
    const S3Request* req;
    S3Reply* reply;
    size_t pos = 0;
    bool abort_on_interrupt = false;
    bool too_large = false;
  };

  static size_t on_read(char* buf, size_t size, size_t n, void* user) {
    auto* t = static_cast<Transfer*>(user);
    size_t left = t->req->body_size - t->pos;
    size_t take = std::min(left, size * n);
    if (take) std::memcpy(buf, t->req->body + t->pos, take);
    t->pos += take;
    return take;
  }
  static size_t on_write(char* data, size_t size, size_t n, void* user) {
    auto* t = static_cast<Transfer*>(user);
    size_t len = size * n;
    if (t->reply->status == 0) {
      // The status is known once the first body byte arrives.
    }
    size_t cap = t->req->max_body;
    if (t->reply->body.size() + len > std::max(cap, kMaxErrorBody)) {
      t->too_large = true;
      return 0;  // aborts the transfer
    }
    t->reply->body.append(data, len);
    return len;
  }
  static size_t on_header(char* data, size_t size, size_t n, void* user) {
    auto* t = static_cast<Transfer*>(user);
    std::string_view line(data, size * n);
    size_t colon = line.find(':');
    if (line.substr(0, 5) == "HTTP/") {
      // A new answer (after 100 Continue or a redirect): forget the last one.
      t->reply->etag.clear();
      t->reply->content_range.clear();
      t->reply->content_length.reset();
    }
    if (colon == std::string_view::npos) return size * n;
    std::string name = ascii_lower(line.substr(0, colon));
    std::string value = trim(std::string(line.substr(colon + 1)));
    while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
    if (name == "etag") t->reply->etag = value;
    if (name == "content-range") t->reply->content_range = value;
    if (name == "content-length") {
      char* end = nullptr;
      unsigned long long v = std::strtoull(value.c_str(), &end, 10);
      if (end && !*end && !value.empty()) t->reply->content_length = v;
    }
    return size * n;
  }
  static int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    auto* t = static_cast<Transfer*>(user);
    return t->abort_on_interrupt && interrupted() ? 1 : 0;
  }

  CURLcode send_once(const S3Request& req, S3Reply& reply, long timeout_ms, bool* too_large) {
    std::string path = "/";
    if (s_.path_style) path += url_.bucket + (req.key.empty() ? "" : "/");
    path += req.key;
    std::string payload_hash =
        sha256_hex(std::string_view(req.body ? req.body : "", req.body_size));
    std::string host = s_.endpoint.substr(s_.endpoint.find("://") + 3);
    std::string amz_date = sigv4_amz_date(static_cast<long long>(std::time(nullptr)));
    SigV4Request sreq{req.method, path, req.query, req.headers, payload_hash};
    sreq.headers.emplace_back("Host", host);
    sreq.headers.emplace_back("X-Amz-Date", amz_date);
    sreq.headers.emplace_back("X-Amz-Content-SHA256", payload_hash);
    if (req.body) sreq.headers.emplace_back("Content-MD5", md5_base64(req.body, req.body_size));
    if (!s_.creds.session_token.empty())
      sreq.headers.emplace_back("X-Amz-Security-Token", s_.creds.session_token);
    SigV4Signature sig = sigv4_sign(sreq, s_.creds, s_.region, "s3", amz_date);

    std::string full = s_.endpoint + sigv4_uri_encode(path, true);
    std::string q = sigv4_canonical_query(req.query);
    if (!q.empty()) full += "?" + q;

    CURL* c = curl_;
    curl_easy_reset(c);
    errbuf_[0] = '\0';
    curl_slist* hl = nullptr;
    for (const auto& [n, v] : sreq.headers) hl = curl_slist_append(hl, (n + ": " + v).c_str());
    hl = curl_slist_append(hl, ("Authorization: " + sig.authorization).c_str());
    hl = curl_slist_append(hl, "Expect:");
    hl = curl_slist_append(hl, "Content-Type:");
    Transfer t{&req, &reply, 0, calls_abort_on_interrupt(), false};
    curl_easy_setopt(c, CURLOPT_URL, full.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf_);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    tls_.apply(c);
    if (req.method == "HEAD") {
      curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (req.body || req.method == "PUT" || req.method == "POST") {
      curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
      curl_easy_setopt(c, CURLOPT_READDATA, &t);
      curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(req.body_size));
      if (req.method != "PUT") curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    } else if (req.method != "GET") {
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    }
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &reply.status);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
    curl_slist_free_all(hl);
    *too_large = t.too_large && reply.status < 300;
    if (t.too_large && reply.status >= 300)
      rc = CURLE_OK;  // a long error page: its start is enough
    return rc;
  }

  void check_permanent(const S3Request& req, const S3Reply& r) {
    if (r.status != 401 && r.status != 403 && r.status != 400 && r.status != 404) return;
    std::string code = error_code(r);
    const std::string where = "S3 endpoint " + s_.endpoint + " (bucket " + quote(url_.bucket) + ")";
    if (code == "NoSuchBucket" || (r.status == 404 && req.key.empty()))
      fail("bucket " + quote(url_.bucket) + " does not exist at " + s_.endpoint);
    if (code == "RequestTimeTooSkewed" || code == "RequestExpired")
      throw Error(where +
                      " refused the request: this machine's clock differs from the "
                      "server's by more than 15 minutes (" +
                      describe(r) + "); set the clock",
                  Exit::connection);
    if (r.status == 401 || r.status == 403 || code == "InvalidAccessKeyId" ||
        code == "SignatureDoesNotMatch" || code == "ExpiredToken" || code == "InvalidToken" ||
        code == "AuthorizationHeaderMalformed") {
      if (r.status == 403 && code == "AccessDenied")
        throw Error(where + " denied " + req.method + " " + what(req) + " to access key " +
                        s_.creds.access_key + " (" + describe(r) + ")",
                    Exit::connection);
      throw Error(where + " refused the credentials from " + s_.creds_source + " (access key " +
                      s_.creds.access_key + "): " + describe(r) +
                      (code == "SignatureDoesNotMatch" ? "; check the secret access key" : ""),
                  Exit::connection);
    }
  }

  void log_retry(const S3Request& req, const std::string& why, double pause) {
    std::ostringstream p;
    p << pause;
    note("S3 " + req.method + " " + what(req) + ": " + why + "; retrying in " + p.str() + " s");
  }
};

class S3Target;

// A file being uploaded: one PUT when it fits in a part, else a multipart
// upload whose parts go up on a second thread while the next one fills (two
// part buffers at most).
class S3Writer : public TargetWriter {
 public:
  S3Writer(S3Client& c, std::string key)
      : c_(c), key_(std::move(key)), part_(c.settings().part_size) {
    buf_.reserve(part_);
  }
  ~S3Writer() override {
    if (inflight_.valid()) {
      try {
        inflight_.get();
      } catch (...) {
      }
    }
    if (!upload_id_.empty()) abort_upload();
  }
  void write(const char* data, size_t size) override {
    while (size) {
      if (buf_.size() == part_) start_part();
      size_t take = std::min<size_t>(size, part_ - buf_.size());
      buf_.append(data, take);
      data += take;
      size -= take;
    }
  }
  void commit() override {
    wait_part();
    if (upload_id_.empty()) {
      S3Request r;
      r.method = "PUT";
      r.key = key_;
      r.body = buf_.data();
      r.body_size = buf_.size();
      expect_ok(c_.call(r), "PUT");
      release();
      return;
    }
    if (!buf_.empty() || etags_.empty()) {
      etags_.emplace_back();
      upload_part(etags_.size(), buf_);
    }
    std::string xml = "<CompleteMultipartUpload>";
    for (size_t i = 0; i < etags_.size(); ++i)
      xml += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" +
             xml_escape(etags_[i]) + "</ETag></Part>";
    xml += "</CompleteMultipartUpload>";
    S3Request r;
    r.method = "POST";
    r.key = key_;
    r.query = {{"uploadId", upload_id_}};
    r.body = xml.data();
    r.body_size = xml.size();
    S3Reply rep = c_.call(r);
    // S3 may answer 200 and put the error in the body.
    if (rep.status != 200 || !S3Client::error_code(rep).empty())
      fail("S3 CompleteMultipartUpload of " + c_.what(r) + " failed: " + S3Client::describe(rep));
    upload_id_.clear();
    release();
  }

 private:
  S3Client& c_;
  std::string key_;
  uint64_t part_;
  std::string buf_, sending_;  // the part filling, the part going up
  std::future<void> inflight_;
  std::string upload_id_;
  std::vector<std::string> etags_;  // by part number - 1; "" while in flight

  static std::string xml_escape(const std::string& s) {
    std::string out;
    for (char ch : s) {
      if (ch == '&')
        out += "&amp;";
      else if (ch == '<')
        out += "&lt;";
      else if (ch == '>')
        out += "&gt;";
      else if (ch == '"')
        out += "&quot;";
      else
        out += ch;
    }
    return out;
  }

  void release() {
    std::string().swap(buf_);
    std::string().swap(sending_);
  }

  void expect_ok(const S3Reply& rep, const char* op) {
    if (rep.status != 200)
      fail("S3 " + std::string(op) + " of " + quote(key_) + " failed: " + S3Client::describe(rep));
  }

  void wait_part() {
    if (inflight_.valid()) inflight_.get();  // rethrows the upload's error
  }

  // buf_ is full and more data follows: hand it to the upload thread.
  void start_part() {
    wait_part();
    if (upload_id_.empty()) {
      S3Request r;
      r.method = "POST";
      r.key = key_;
      r.query = {{"uploads", ""}};
      S3Reply rep = c_.call(r);
      expect_ok(rep, "CreateMultipartUpload");
      std::string id;
      try {
        id = xml::parse(rep.body).child_text("UploadId");
      } catch (const std::exception&) {
      }
      if (id.empty())
        fail("S3 CreateMultipartUpload of " + quote(key_) + ": no UploadId in the answer");
      upload_id_ = id;
    }
    if (etags_.size() + 1 >= static_cast<size_t>(kMaxParts))
      fail("S3 upload of " + quote(key_) + ": more than 10,000 parts");
    etags_.emplace_back();
    size_t n = etags_.size();
    std::swap(buf_, sending_);
    buf_.clear();
    // Parts double every 1,000 so that 10,000 of them reach 5 TiB.
    if (n % 1000 == 0) part_ = std::min<uint64_t>(part_ * 2, 5ull << 30);
    buf_.reserve(part_);
    inflight_ = std::async(std::launch::async, [this, n] { upload_part(n, sending_); });
  }

  void upload_part(size_t n, const std::string& data) {
    S3Request r;
    r.method = "PUT";
    r.key = key_;
    r.query = {{"partNumber", std::to_string(n)}, {"uploadId", upload_id_}};
    r.body = data.data();
    r.body_size = data.size();
    S3Reply rep = c_.call(r);
    expect_ok(rep, "UploadPart");
    if (rep.etag.empty()) fail("S3 UploadPart of " + quote(key_) + ": no ETag in the answer");
    etags_[n - 1] = rep.etag;  // opaque: handed back as it came
  }

  void abort_upload() {
    try {
      S3Request r;
      r.method = "DELETE";
      r.key = key_;
      r.query = {{"uploadId", upload_id_}};
      c_.call(r);
    } catch (...) {
      // Best effort: remove_tree aborts uploads left under a directory.
    }
    upload_id_.clear();
  }
};

class S3Reader : public TargetReader {
 public:
  S3Reader(S3Client& c, std::string key, uint64_t size, std::string etag)
      : c_(c), key_(std::move(key)), size_(size), etag_(std::move(etag)) {}
  size_t read(char* data, size_t size) override {
    if (pos_ == buf_.size()) {
      if (off_ >= size_) return 0;
      fetch();
    }
    size_t take = std::min(size, buf_.size() - pos_);
    std::memcpy(data, buf_.data() + pos_, take);
    pos_ += take;
    return take;
  }

 private:
  S3Client& c_;
  std::string key_;
  uint64_t size_, off_ = 0;
  std::string etag_;
  std::string buf_;
  size_t pos_ = 0;

  void fetch() {
    uint64_t len = std::min<uint64_t>(kReadChunk, size_ - off_);
    S3Request r;
    r.key = key_;
    r.headers = {{"Range", "bytes=" + std::to_string(off_) + "-" + std::to_string(off_ + len - 1)}};
    if (!etag_.empty()) r.headers.emplace_back("If-Match", etag_);
    r.max_body = len;
    buf_.clear();
    S3Reply rep = c_.call(r);
    if (rep.status == 412) fail("S3 object " + c_.what(r) + " changed while it was read");
    bool whole = rep.status == 200 && off_ == 0 && len == size_;
    if (rep.status != 206 && !whole)
      fail("S3 GET of " + c_.what(r) + " failed: " + S3Client::describe(rep));
    if (rep.body.size() != len)
      fail("S3 GET of " + c_.what(r) + ": " + std::to_string(rep.body.size()) +
           " bytes instead of " + std::to_string(len));
    buf_ = std::move(rep.body);
    pos_ = 0;
    off_ += len;
  }
};

class S3Target : public BackupTarget {
 public:
  S3Target(std::unique_ptr<S3Client> c, std::string url) : c_(std::move(c)), url_(std::move(url)) {}
  const std::string& url() const override { return url_; }

  void make_dir(const std::string& dir) override { check_target_path(dir, true); }

  void make_dir_exclusive(const std::string& dir) override {
    check_target_path(dir, false);
    if (head(key(dir)) || any_under(key(dir) + "/"))
      fail(quote(url_ + "/" + dir) + " exists already");
    S3Request r;
    r.method = "PUT";
    r.key = key(dir) + "/";
    r.headers = {{"If-None-Match", "*"}};
    r.body = "";
    r.body_size = 0;
    S3Reply rep = c_->call(r);
    if (rep.status == 412) fail(quote(url_ + "/" + dir) + " exists already");
    if (rep.status != 200) fail("S3 PUT of " + c_->what(r) + " failed: " + S3Client::describe(rep));
  }

  std::vector<TargetEntry> list(const std::string& dir) override {
    check_target_path(dir, true);
    std::string pfx =
        dir.empty() ? (c_->url().prefix.empty() ? "" : c_->url().prefix + "/") : key(dir) + "/";
    std::vector<TargetEntry> out;
    bool any = false;
    std::string token;
    do {
      Params q = {{"list-type", "2"}, {"delimiter", "/"}, {"prefix", pfx}};
      if (!token.empty()) q.emplace_back("continuation-token", token);
      auto doc = list_page(q);
      for (const auto* p : doc.all("CommonPrefixes")) {
        std::string name = p->child_text("Prefix");
        any = true;
        if (name.size() <= pfx.size() + 1 || name.compare(0, pfx.size(), pfx) != 0) continue;
        name = name.substr(pfx.size(), name.size() - pfx.size() - 1);
        if (name.empty() || name == "." || name == "..") continue;
        out.push_back({name, true});
      }
      for (const auto* c : doc.all("Contents")) {
        std::string name = c->child_text("Key");
        any = true;
        if (name.size() <= pfx.size() || name.compare(0, pfx.size(), pfx) != 0) continue;
        name = name.substr(pfx.size());  // "" is the directory's own marker
        if (name == "." || name == "..") continue;
        out.push_back({name, false});
      }
      token =
          doc.child_text("IsTruncated") == "true" ? doc.child_text("NextContinuationToken") : "";
    } while (!token.empty());
    if (!any && !dir.empty() && head(key(dir)))
      fail("cannot list " + quote(url_ + "/" + dir) + ": not a directory");
    return out;
  }

  std::optional<uint64_t> file_size(const std::string& path) override {
    check_target_path(path, true);
    if (path.empty()) return 0;
    if (auto h = head(key(path))) return h->content_length.value_or(0);
    if (any_under(key(path) + "/")) return 0;  // a directory
    return std::nullopt;
  }

  std::unique_ptr<TargetWriter> create(const std::string& path) override {
    check_target_path(path, false);
    return std::make_unique<S3Writer>(*c_, key(path));
  }

  std::unique_ptr<TargetReader> open(const std::string& path) override {
    check_target_path(path, false);
    auto h = head(key(path));
    if (!h) fail("cannot open " + quote(url_ + "/" + path) + ": no such object");
    if (!h->content_length) fail("S3 HEAD of " + quote(url_ + "/" + path) + ": no Content-Length");
    return std::make_unique<S3Reader>(*c_, key(path), *h->content_length, h->etag);
  }

  // S3 has no rename: a server-side copy, then the source's removal. The
  // copy appears whole or not at all, so `to` is never seen half-written.
  void rename(const std::string& from, const std::string& to) override {
    check_target_path(from, false);
    check_target_path(to, false);
    auto h = head(key(from));
    if (!h) fail("cannot rename " + quote(url_ + "/" + from) + ": no such object");
    if (h->content_length.value_or(0) > kMaxCopy)
      fail("cannot rename " + quote(url_ + "/" + from) + ": S3 copies objects up to 5 GiB");
    S3Request r;
    r.method = "PUT";
    r.key = key(to);
    r.headers = {
        {"x-amz-copy-source", sigv4_uri_encode("/" + c_->url().bucket + "/" + key(from), true)}};
    if (!h->etag.empty()) r.headers.emplace_back("x-amz-copy-source-if-match", h->etag);
    r.body = "";
    r.body_size = 0;
    S3Reply rep = c_->call(r);
    // A copy may fail after its 200 status: the error is in the body.
    if (rep.status != 200 || !S3Client::error_code(rep).empty())
      fail("cannot rename " + quote(url_ + "/" + from) +
           ": S3 CopyObject failed: " + S3Client::describe(rep));
    remove_key(key(from));
  }

  void sync_dir(const std::string& dir) override { check_target_path(dir, true); }

  // One ListObjectsV2 without a delimiter: 1,000 keys a request, however
  // they are spread over "directories".
  bool list_flat(const std::string& dir,
                 const std::function<void(const std::string&)>& each) override {
    check_target_path(dir, false);
    const std::string pfx = key(dir) + "/";
    std::string token;
    do {
      Params q = {{"list-type", "2"}, {"prefix", pfx}};
      if (!token.empty()) q.emplace_back("continuation-token", token);
      auto doc = list_page(q);
      for (const auto* c : doc.all("Contents")) {
        std::string name = c->child_text("Key");
        if (name.size() <= pfx.size() || name.compare(0, pfx.size(), pfx) != 0) continue;
        name = name.substr(pfx.size());
        if (name.back() == '/') continue;  // a directory marker
        each(name);
      }
      std::string prev = std::move(token);
      token =
          doc.child_text("IsTruncated") == "true" ? doc.child_text("NextContinuationToken") : "";
      if (!token.empty() && token == prev)
        fail("S3 listing of " + quote(url_ + "/" + dir) +
             ": the server repeats its continuation token");
    } while (!token.empty());
    return true;
  }
  size_t listing_page() const override { return 1000; }
  // A PUT (one part: up to the part size) is whole or absent; a multipart
  // upload appears only at CompleteMultipartUpload.
  bool atomic_create() const override { return true; }

  void remove_tree(const std::string& dir) override {
    check_target_path(dir, false);
    std::string pfx = key(dir) + "/";
    // Uploads a killed run left behind first, so nothing of it stays billed.
    for (;;) {
      auto doc = list_page({{"uploads", ""}, {"prefix", pfx}});
      auto uploads = doc.all("Upload");
      for (const auto* u : uploads) {
        std::string k = u->child_text("Key");
        if (k.compare(0, pfx.size(), pfx) != 0) continue;
        S3Request r;
        r.method = "DELETE";
        r.key = k;
        r.query = {{"uploadId", u->child_text("UploadId")}};
        S3Reply rep = c_->call(r);
        if (rep.status != 204 && rep.status != 200 && rep.status != 404)
          fail("S3 AbortMultipartUpload of " + c_->what(r) + " failed: " + S3Client::describe(rep));
      }
      if (doc.child_text("IsTruncated") != "true" || uploads.empty()) break;
    }
    for (;;) {
      auto doc = list_page({{"list-type", "2"}, {"prefix", pfx}});
      auto contents = doc.all("Contents");
      for (const auto* c : contents) {
        std::string k = c->child_text("Key");
        if (k.compare(0, pfx.size(), pfx) == 0) remove_key(k);
      }
      if (contents.empty()) break;
    }
    remove_key(key(dir));
  }

 private:
  std::unique_ptr<S3Client> c_;
  std::string url_;

  std::string key(const std::string& rel) const {
    const std::string& p = c_->url().prefix;
    if (rel.empty()) return p;
    return p.empty() ? rel : p + "/" + rel;
  }

  std::optional<S3Reply> head(const std::string& k) {
    S3Request r;
    r.method = "HEAD";
    r.key = k;
    S3Reply rep = c_->call(r);
    if (rep.status == 404) return std::nullopt;
    if (rep.status != 200)
      fail("S3 HEAD of " + c_->what(r) + " failed: " + S3Client::describe(rep));
    return rep;
  }

  bool any_under(const std::string& pfx) {
    auto doc = list_page({{"list-type", "2"}, {"prefix", pfx}, {"max-keys", "1"}});
    return !doc.all("Contents").empty();
  }

  xml::Node list_page(const Params& q) {
    S3Request r;
    r.query = q;
    r.max_body = kMaxListBody;
    S3Reply rep = c_->call(r);
    if (rep.status != 200)
      fail("S3 listing of " + quote(url_) + " failed: " + S3Client::describe(rep));
    try {
      return xml::parse(rep.body);
    } catch (const Error& e) {
      fail("S3 listing of " + quote(url_) + ": malformed answer: " + e.what());
    }
  }

  void remove_key(const std::string& k) {
    S3Request r;
    r.method = "DELETE";
    r.key = k;
    S3Reply rep = c_->call(r);
    if (rep.status != 204 && rep.status != 200 && rep.status != 404)
      fail("S3 DELETE of " + c_->what(r) + " failed: " + S3Client::describe(rep));
  }
};

}  // namespace

std::unique_ptr<BackupTarget> open_s3_target(const std::string& url) {
  S3Url u = parse_s3_url(url);
  S3Settings s = resolve_s3_settings(u);
  std::string host = s.endpoint.substr(s.endpoint.find("://") + 3);
  if (!host.empty() && host[0] == '[')
    host = host.substr(1, host.find(']') - 1);
  else
    host = host.substr(0, host.rfind(':') == std::string::npos ? host.size() : host.rfind(':'));
  check_host_allowed(host, "backup target");  // allow_hosts: before DNS and TCP
  auto client = std::make_unique<S3Client>(u, s, url);
  // The bucket must answer: a missing one or refused credentials fail here,
  // before any backup starts.
  S3Request r;
  r.query = {
      {"list-type", "2"}, {"max-keys", "1"}, {"prefix", u.prefix.empty() ? "" : u.prefix + "/"}};
  S3Reply rep = client->call(r);
  if (rep.status != 200) fail("backup target " + quote(url) + ": " + S3Client::describe(rep));
  return std::make_unique<S3Target>(std::move(client), url);
}

}  // namespace ceso
