// URL parsing over libcurl's URL API (curl_url): the one parser behind the
// vSphere endpoint URL (config/config.cpp) and the backup target URLs
// (transport/target.cpp: file://, transport/sftp.cpp: sftp://).
//
// It lives in base/ because both config/ and transport/ use it and it knows
// nothing of either: it splits and checks, the callers give the parts their
// meaning (default ports, "/sdk", $USER, which parts a scheme may have).
// libcurl is linked into libcore as a whole, so base/ adds no dependency.
//
// What curl_url accepts and ceso refuses here, for every URL: control
// characters and spaces, an empty host ("https:///sdk", which curl reads as
// the host "sdk"), port 0, a query or fragment (none of ceso's URLs has one),
// a malformed %-escape or an escaped control character in the user, password
// or path, a host with characters other than letters, digits, '.', '-', '_',
// user information or another host than localhost in a file:// URL. What
// curl_url does not accept and ceso does, as govc does: "user@domain@host"
// (the last '@' ends the user information) and, when the caller allows it,
// an unbracketed IPv6 literal without a port ("fe80::1").
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ceso {

struct UrlSyntax {
  std::vector<std::string> schemes;  // accepted schemes, lower case ("https", "file")
  std::string default_scheme;        // for text without "scheme://"; empty: one is required
  bool bare_ipv6 = false;            // an unbracketed IPv6 literal as the whole host
};

struct UrlParts {
  std::string scheme;                         // lower case
  std::optional<std::string> user, password;  // %-decoded; nullopt when absent
  std::string host;                           // lower case; IPv6 without brackets, zone
                                              // id as "%zone"; "" for file://
  bool ipv6 = false;
  int port = 0;              // 1..65535 as given; 0 when the URL has none
  std::string path;          // as written (%-escapes kept), at least "/"
  std::string decoded_path;  // %-decoded (never holds a control character)

  // The host as it is written in a URL: "[fe80::1%25eth0]" for IPv6.
  std::string host_ref() const;
};

// Splits and checks `text`. On a malformed URL: nullopt, and `why` says what
// is wrong in a few words that never quote the text (it may hold a
// password): the caller names the URL, through redact_url().
std::optional<UrlParts> parse_url_parts(std::string_view text, const UrlSyntax& syntax,
                                        std::string* why);

// A local absolute path as a file:// URL, %-escaped by libcurl so that
// parse_url_parts() gives the same path back ("/srv/my backups" →
// "file:///srv/my%20backups").
std::string file_url(const std::string& path);

// True when a '/'-separated path has a "." or ".." component.
bool has_dot_segment(std::string_view path);

}  // namespace ceso
