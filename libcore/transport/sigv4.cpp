#include "transport/sigv4.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <ctime>

#include "base/error.hpp"
#include "base/util.hpp"

namespace ceso {

namespace {

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len))
    fail("HMAC-SHA256 failed (libcrypto)");
  return std::string(reinterpret_cast<const char*>(md), len);
}

// A header value as SigV4 wants it: no leading or trailing blanks, inner
// runs of blanks as one space.
std::string trim_value(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

}  // namespace

std::string sigv4_uri_encode(std::string_view s, bool keep_slash) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/');
    if (plain) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string sigv4_canonical_query(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> enc;
  enc.reserve(query.size());
  for (const auto& [k, v] : query)
    enc.emplace_back(sigv4_uri_encode(k, false), sigv4_uri_encode(v, false));
  std::sort(enc.begin(), enc.end());
  std::string out;
  for (const auto& [k, v] : enc) {
    if (!out.empty()) out += '&';
    out += k + "=" + v;
  }
  return out;
}

std::string sigv4_amz_date(long long epoch_seconds) {
  std::time_t t = static_cast<std::time_t>(epoch_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

SigV4Signature sigv4_sign(const SigV4Request& req, const SigV4Credentials& creds,
                          std::string_view region, std::string_view service,
                          std::string_view amz_date) {
  if (amz_date.size() != 16) fail("SigV4: malformed date " + quote(std::string(amz_date)));
  std::vector<std::pair<std::string, std::string>> headers;
  for (const auto& [name, value] : req.headers) {
    std::string n = ascii_lower(name);
    std::string v = trim_value(value);
    auto it = std::find_if(headers.begin(), headers.end(), [&](auto& h) { return h.first == n; });
    if (it != headers.end())
      it->second += "," + v;
    else
      headers.emplace_back(n, v);
  }
  std::sort(headers.begin(), headers.end());
  SigV4Signature s;
  std::string canonical_headers;
  for (const auto& [n, v] : headers) {
    canonical_headers += n + ":" + v + "\n";
    if (!s.signed_headers.empty()) s.signed_headers += ';';
    s.signed_headers += n;
  }
  s.canonical_request = req.method + "\n" + sigv4_uri_encode(req.path, true) + "\n" +
                        sigv4_canonical_query(req.query) + "\n" + canonical_headers + "\n" +
                        s.signed_headers + "\n" + req.payload_sha256;
  std::string day(amz_date.substr(0, 8));
  std::string scope =
      day + "/" + std::string(region) + "/" + std::string(service) + "/aws4_request";
  s.string_to_sign = "AWS4-HMAC-SHA256\n" + std::string(amz_date) + "\n" + scope + "\n" +
                     sha256_hex(s.canonical_request);
  std::string key = hmac_sha256("AWS4" + creds.secret_key, day);
  key = hmac_sha256(key, region);
  key = hmac_sha256(key, service);
  key = hmac_sha256(key, "aws4_request");
  std::string sig = hmac_sha256(key, s.string_to_sign);
  s.signature = hex_encode(reinterpret_cast<const unsigned char*>(sig.data()), sig.size());
  s.authorization = "AWS4-HMAC-SHA256 Credential=" + creds.access_key + "/" + scope +
                    ", SignedHeaders=" + s.signed_headers + ", Signature=" + s.signature;
  return s;
}

}  // namespace ceso
