// HTTP(S) to one host with libcurl: SOAP posts and datastore file transfers.
//
// One Http object keeps one curl handle, so consecutive calls reuse the TLS
// connection (a round trip, not a handshake, per SOAP call). TLS is verified
// against the system CAs by default; a pinned SHA-256 thumbprint replaces CA
// verification for self-signed hosts; insecure skips checks.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace ceso {

struct TlsSettings {
  bool insecure = false;
  std::string thumbprint;       // SHA-256 "AB:CD:…" (normalized) or empty
  std::string thumbprint_sha1;  // SHA-1 pin (govc's known_hosts) or empty
  std::string ca_file;          // extra CA bundle or empty
};

// The TLS policy on a curl handle (CURL*): CA check, pinned thumbprint or
// insecure. Used by every connection to a host (SOAP and datastore files) so
// the policy lives in one place. Records the peer certificate's SHA-256
// thumbprint for messages. Must outlive the handle's transfers.
class TlsPolicy {
 public:
  explicit TlsPolicy(TlsSettings settings) : settings_(std::move(settings)) {}
  void apply(void* curl);
  bool pinned() const {
    return !settings_.thumbprint.empty() || !settings_.thumbprint_sha1.empty();
  }
  const TlsSettings& settings() const { return settings_; }
  const std::string& peer_thumbprint() const { return peer_thumbprint_; }

  // Called from the OpenSSL verify callback during the handshake.
  void record_peer_thumbprint(std::string t) { peer_thumbprint_ = std::move(t); }

 private:
  TlsSettings settings_;
  std::string peer_thumbprint_;
};

// What a host may do before a call is given up (ceso(7) LIMITS), each a
// LimitExceeded (exit 6). 0 turns a timeout off.
struct HttpLimits {
  int idle_timeout_s = 60;   // nothing received (or sent) for this long: every request
  int call_timeout_s = 300;  // post_soap only: the whole call, not counting the time
                             // the caller's `stream` function takes
  uint64_t max_answer_bytes = 64ull << 20;  // post_soap: headers + a collected body
};

struct HttpResponse {
  long status = 0;
  std::string body;
  uint64_t bytes_received = 0;  // the answer's body as received (streamed or collected)
};

// "503 Service Unavailable": the status with its standard reason phrase
// (ours, not the host's), or just the number for an unusual status.
std::string http_status_text(long status);

// The first non-blank line of an HTTP body (an error page), HTML tags
// dropped, made printable with host_text(); "" if there is none.
std::string first_line(std::string_view body);

class Http {
 public:
  explicit Http(TlsSettings tls, HttpLimits limits = {});
  ~Http();
  Http(const Http&) = delete;
  Http& operator=(const Http&) = delete;

  // POST a SOAP envelope. Throws Error(Exit::connection) for transport/TLS
  // failures, LimitExceeded for a broken limit; HTTP errors (500 with a SOAP
  // fault) are returned.
  // With `stream`, the body of a 200 answer goes to it chunk by chunk as it
  // arrives instead of into HttpResponse::body (other answers, faults, are
  // still collected); an exception thrown by `stream` aborts the transfer
  // and is rethrown.
  HttpResponse post_soap(const std::string& url, const std::string& body,
                         const std::string& soap_action,
                         const std::function<void(std::string_view)>* stream = nullptr);

  // The session cookie ("vmware_soap_session=\"…\""), set by the server on
  // Login or restored from the session cache.
  const std::string& cookie() const { return cookie_; }
  void set_cookie(std::string cookie) { cookie_ = std::move(cookie); }

  // SHA-256 thumbprint of the server certificate seen on the last TLS
  // handshake ("AB:CD:…"), empty for plain HTTP.
  const std::string& peer_thumbprint() const;

 private:
  struct Impl;
  struct StreamTarget;
  std::unique_ptr<Impl> impl_;
  std::string cookie_;
  void prepare(const std::string& url);
  void perform(const std::string& url);
};

}  // namespace ceso
