// The s3://bucket/prefix backup target (docs/backup.md "S3").
//
// Objects stand for files; a "directory" is a key prefix ending in '/'.
// Requests are signed with our SigV4 signer (transport/sigv4.hpp) and carry
// a plain hex x-amz-content-sha256 and a Content-MD5 (never aws-chunked).
// A file is one PUT up to the part size, a multipart upload beyond it
// (parts of 8 MiB, doubled every 1,000 parts so that 10,000 parts reach
// S3's 5 TiB limit; an upload that does not complete is aborted). Failed
// requests are retried with doubling pauses within a time budget (15
// minutes, CESO_S3_RETRY_BUDGET); a permanent error (a refused signature
// or key, a skewed clock, a missing bucket) stops at once.
#pragma once

#include <memory>
#include <string>

#include "config/config.hpp"
#include "transport/sigv4.hpp"
#include "transport/target.hpp"

namespace ceso {

// s3://bucket[/prefix]: bucket 3–63 characters of a-z 0-9 . -, starting and
// ending with a letter or digit; the prefix %-decoded, without leading or
// trailing '/', no '.' or '..' component. No user, password, port, query.
// Throws Error(usage) "backup target 'URL': why".
struct S3Url {
  std::string bucket, prefix;
};
S3Url parse_s3_url(const std::string& url);

// Where and as whom an s3:// target is reached, from the environment, then
// the config file, then the shared credentials file (see resolve_s3_settings).
struct S3Settings {
  std::string endpoint;  // "https://s3.eu-west-1.amazonaws.com" or a custom one, no path
  bool path_style = true;
  std::string region = "us-east-1";
  SigV4Credentials creds;
  std::string creds_source;  // "environment", "/root/.aws/credentials [default]"
  std::string ca_file;       // AWS_CA_BUNDLE
  int retry_budget_s = 900;
  uint64_t part_size = 8u << 20;
};

// Region: AWS_REGION, AWS_DEFAULT_REGION, backup.s3_region, "us-east-1".
// Endpoint: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, backup.s3_endpoint
// (path-style), else AWS's regional endpoint (virtual-hosted style unless the
// bucket name has a '.'). Credentials: AWS_ACCESS_KEY_ID +
// AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN), else the profile (AWS_PROFILE,
// backup.s3_profile, "default") of the shared credentials file
// (AWS_SHARED_CREDENTIALS_FILE, backup.s3_credentials_file,
// ~/.aws/credentials). Throws Error(connection) when there are none,
// Error(policy) for a credentials file readable by group or others,
// Error(usage) for a malformed endpoint or CESO_S3_* value.
S3Settings resolve_s3_settings(const S3Url& url, const Environment& env = process_environment());

// Opens an s3:// target: checks allow_hosts and that the bucket answers
// (Error(failure) for a missing bucket, Error(connection) for refused
// credentials).
std::unique_ptr<BackupTarget> open_s3_target(const std::string& url);

}  // namespace ceso
