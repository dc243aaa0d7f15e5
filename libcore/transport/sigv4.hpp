// AWS Signature Version 4 (the header form), for the s3:// backup target.
//
// Why ceso signs itself instead of using libcurl's CURLOPT_AWS_SIGV4: Debian
// 12's libcurl 7.88 signs the query as written (unsorted, and `?uploads`
// without the `=` the canonical form needs) and sends no
// x-amz-content-sha256 unless the caller does; see docs/backup.md "S3
// signing". This signer is a pure function of its inputs (the time is a
// parameter), tested against AWS's published test suite and botocore.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ceso {

struct SigV4Credentials {
  std::string access_key, secret_key, session_token;  // token: "" for none
};

struct SigV4Request {
  std::string method;  // "GET", "PUT", …
  std::string path;    // decoded, starting with '/': "/bucket/my key"
  // Decoded query parameters; a parameter without a value ("?uploads") has "".
  std::vector<std::pair<std::string, std::string>> query;
  // Every header to sign and send, "host" included, in any order and case.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload_sha256;  // lower-case hex of the body
};

struct SigV4Signature {
  std::string canonical_request, string_to_sign, signed_headers, signature, authorization;
};

// Signs `req` at `amz_date` ("20150830T123600Z", UTC; the caller sends the
// same value as X-Amz-Date). Headers are lower-cased, values trimmed with
// inner runs of spaces collapsed, sorted; repeated names are joined with ','.
SigV4Signature sigv4_sign(const SigV4Request& req, const SigV4Credentials& creds,
                          std::string_view region, std::string_view service,
                          std::string_view amz_date);

// SigV4's URI encoding: every byte except A-Z a-z 0-9 - . _ ~ as %XX
// (upper-case hex); '/' kept when keep_slash (paths), encoded otherwise.
std::string sigv4_uri_encode(std::string_view s, bool keep_slash);

// The canonical query string: encoded names and values, sorted, "k=v&…".
std::string sigv4_canonical_query(const std::vector<std::pair<std::string, std::string>>& query);

// "20150830T123600Z" for a time in seconds since the epoch (UTC).
std::string sigv4_amz_date(long long epoch_seconds);

}  // namespace ceso
