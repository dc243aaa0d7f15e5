#include "base/url.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <new>

#include "base/util.hpp"

namespace ceso {

namespace {

// One CURLU handle, freed on every path out.
class CurlUrl {
 public:
  CurlUrl() : h_(curl_url()) {
    if (!h_) throw std::bad_alloc();
  }
  ~CurlUrl() { curl_url_cleanup(h_); }
  CurlUrl(const CurlUrl&) = delete;
  CurlUrl& operator=(const CurlUrl&) = delete;

  CURLUcode set(CURLUPart part, const std::string& value, unsigned flags) {
    return curl_url_set(h_, part, value.c_str(), flags);
  }
  // The part, or nullopt when the URL has none; `rc` gets any other error
  // (a %-escape that decodes to a control character, with CURLU_URLDECODE).
  std::optional<std::string> get(CURLUPart part, unsigned flags, CURLUcode* rc) {
    char* out = nullptr;
    *rc = curl_url_get(h_, part, &out, flags);
    if (*rc != CURLUE_OK) return std::nullopt;
    std::string s(out);
    curl_free(out);
    return s;
  }

 private:
  CURLU* h_;
};

bool is_absent(CURLUcode rc) {
  return rc == CURLUE_NO_USER || rc == CURLUE_NO_PASSWORD || rc == CURLUE_NO_HOST ||
         rc == CURLUE_NO_PORT || rc == CURLUE_NO_QUERY || rc == CURLUE_NO_FRAGMENT ||
         rc == CURLUE_NO_ZONEID;
}

bool valid_scheme(std::string_view s) {
  return !s.empty() && std::isalpha(static_cast<unsigned char>(s[0])) &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) {
           return std::isalnum(c) || c == '+' || c == '-' || c == '.';
         });
}

bool valid_hostname(std::string_view host) {
  return std::all_of(host.begin(), host.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '-' || c == '_';
  });
}

bool valid_ipv6(std::string_view host) {
  std::string addr(host.substr(0, host.find('%')));  // without a zone id
  unsigned char buf[16];
  return ::inet_pton(AF_INET6, addr.c_str(), buf) == 1;
}

// Every '%' starts a %XX escape (curl passes "%zz" through undecoded).
bool valid_escapes(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') continue;
    if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(s[i + 2])))
      return false;
    i += 2;
  }
  return true;
}

// "[fe80::1%25]" or "[fe80::1%]": curl drops the empty zone.
bool empty_zone(std::string_view bracketed) {
  std::string_view inside = bracketed.substr(0, bracketed.find(']'));
  size_t pct = inside.find('%');
  if (pct == std::string_view::npos) return false;
  std::string_view zone = inside.substr(pct + 1);
  return zone.empty() || zone == "25";
}

std::string scheme_list(const std::vector<std::string>& schemes) {
  std::string out;
  for (size_t i = 0; i < schemes.size(); ++i) {
    if (i > 0) out += i + 1 == schemes.size() ? " or " : ", ";
    out += schemes[i] + "://";
  }
  return out;
}

std::string curl_reason(CURLUcode rc, const std::string& scheme) {
  switch (rc) {
    case CURLUE_BAD_PORT_NUMBER:
      return "the port is not a number from 1 to 65535";
    case CURLUE_BAD_IPV6:
      return "not an IPv6 address in brackets ([ADDRESS] or [ADDRESS]:PORT)";
    case CURLUE_BAD_HOSTNAME:
      return "the host has characters other than letters, digits, '.', '-'";
    case CURLUE_NO_HOST:
      return "no host";
    case CURLUE_BAD_FILE_URL:
      return "a " + scheme + ":// URL names a local path: no host but localhost";
    default:
      return curl_url_strerror(rc);
  }
}

// The text curl_url is given: the scheme spelled out (the caller's default
// when there is none), '@' inside the user information escaped so that the
// last '@' ends it (curl would end it at the first), and an unbracketed
// IPv6 literal bracketed. Returns "" and sets `why` when it is malformed.
std::string prepare(std::string_view text, const UrlSyntax& syntax, std::string* scheme,
                    std::string* why) {
  std::string_view rest = text;
  size_t sep = text.find("://");
  if (sep != std::string_view::npos && valid_scheme(text.substr(0, sep))) {
    *scheme = ascii_lower(text.substr(0, sep));
    rest = text.substr(sep + 3);
  } else if (!syntax.default_scheme.empty()) {
    *scheme = syntax.default_scheme;
  } else {
    *why = "no scheme (use " + scheme_list(syntax.schemes) + ")";
    return {};
  }
  if (std::find(syntax.schemes.begin(), syntax.schemes.end(), *scheme) == syntax.schemes.end()) {
    *why = "unsupported scheme (use " + scheme_list(syntax.schemes) + ")";
    return {};
  }
  // Checked on the text: curl drops an empty fragment ("…/sdk#") silently.
  if (rest.find_first_of("?#") != std::string_view::npos) {
    *why = "a query or fragment (?, #) is not supported";
    return {};
  }
  size_t authority_end = std::min(rest.find_first_of("/"), rest.size());
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view after = rest.substr(authority_end);
  std::string userinfo;
  std::string_view hostport = authority;
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    if (*scheme == "file") {
      *why = "no user information in a file:// URL";
      return {};
    }
    for (char c : authority.substr(0, at))
      userinfo += c == '@' ? std::string("%40") : std::string(1, c);
    userinfo += '@';
    hostport = authority.substr(at + 1);
  }
  if (hostport.empty() && *scheme != "file") {
    *why = "no host";
    return {};
  }
  std::string host(hostport);
  if (!host.empty() && host.front() != '[' && std::count(host.begin(), host.end(), ':') >= 2) {
    if (!syntax.bare_ipv6 || !valid_ipv6(host)) {
      *why = "an IPv6 address needs brackets: [ADDRESS] or [ADDRESS]:PORT";
      return {};
    }
    if (size_t zone = host.find('%'); zone != std::string::npos) host.replace(zone, 1, "%25");
    host = "[" + host + "]";
  } else if (!host.empty() && host.back() == ':') {
    // curl takes "host:" as "host" with no port; ceso never did.
    *why = curl_reason(CURLUE_BAD_PORT_NUMBER, *scheme);
    return {};
  } else if (!host.empty() && host.front() == '[' && empty_zone(host)) {
    *why = "an empty IPv6 zone id";
    return {};
  } else if (!host.empty() && host.front() != '[' && host.find('%') != std::string::npos) {
    // curl decodes %-escapes in a host name ("es%78i1" is esxi1): a name
    // that needs them is none.
    *why = curl_reason(CURLUE_BAD_HOSTNAME, *scheme);
    return {};
  }
  return *scheme + "://" + userinfo + host + std::string(after);
}

// The user or password, %-decoded; false (with `why`) for a malformed
// escape or one that decodes to a control character.
bool get_secret(CurlUrl& u, CURLUPart part, const char* what, std::optional<std::string>* out,
                std::string* why) {
  CURLUcode rc;
  auto raw = u.get(part, 0, &rc);
  if (!raw) {
    if (is_absent(rc)) return true;
    *why = std::string("cannot read the ") + what;
    return false;
  }
  *out = u.get(part, CURLU_URLDECODE, &rc);
  if (!valid_escapes(*raw) || !*out) {
    *why = std::string("bad %-escape in the ") + what;
    return false;
  }
  return true;
}

bool get_host(CurlUrl& u, UrlParts* p, std::string* why) {
  CURLUcode rc;
  auto host = u.get(CURLUPART_HOST, 0, &rc);
  if (!host || host->empty()) {
    if (p->scheme == "file") return true;  // file:///path, file://localhost/path
    *why = "no host";
    return false;
  }
  if (host->front() == '[') {
    p->ipv6 = true;
    p->host = ascii_lower(host->substr(1, host->size() - 2));
    // Interface names are case-sensitive: the zone keeps its case.
    if (auto zone = u.get(CURLUPART_ZONEID, 0, &rc)) {
      if (zone->empty() || !valid_hostname(*zone)) {
        *why = "the IPv6 zone id has characters other than letters, digits, '.', '-', '_'";
        return false;
      }
      p->host += "%" + *zone;
    }
    return true;
  }
  p->host = ascii_lower(*host);
  if (!valid_hostname(p->host)) {
    *why = curl_reason(CURLUE_BAD_HOSTNAME, p->scheme);
    return false;
  }
  return true;
}

bool get_port(CurlUrl& u, UrlParts* p, std::string* why) {
  CURLUcode rc;
  auto port = u.get(CURLUPART_PORT, 0, &rc);
  if (!port) return true;
  // curl checks digits and <= 65535; 0 is no port to connect to.
  p->port = std::atoi(port->c_str());
  if (p->port < 1 || p->port > 65535) {
    *why = curl_reason(CURLUE_BAD_PORT_NUMBER, p->scheme);
    return false;
  }
  return true;
}

bool get_path(CurlUrl& u, UrlParts* p, std::string* why) {
  CURLUcode rc;
  auto raw = u.get(CURLUPART_PATH, 0, &rc);
  auto decoded = u.get(CURLUPART_PATH, CURLU_URLDECODE, &rc);
  if (!raw || !decoded || !valid_escapes(*raw)) {
    *why = "bad %-escape in the path";
    return false;
  }
  p->path = raw->empty() ? "/" : *raw;
  p->decoded_path = decoded->empty() ? "/" : *decoded;
  return true;
}

}  // namespace

std::string UrlParts::host_ref() const {
  if (!ipv6) return host;
  std::string h = host;
  if (size_t zone = h.find('%'); zone != std::string::npos) h.replace(zone, 1, "%25");
  return "[" + h + "]";
}

std::optional<UrlParts> parse_url_parts(std::string_view text, const UrlSyntax& syntax,
                                        std::string* why) {
  if (text.empty()) {
    *why = "empty";
    return std::nullopt;
  }
  for (unsigned char c : text)
    if (c <= 0x20 || c == 0x7f) {
      *why = "contains a space or control character";
      return std::nullopt;
    }
  UrlParts p;
  std::string prepared = prepare(text, syntax, &p.scheme, why);
  if (prepared.empty()) return std::nullopt;

  CurlUrl u;
  // Every scheme is one of the caller's (checked above), whether or not this
  // libcurl was built with it; paths are kept as written (no "../"
  // resolving: a target refuses such a path rather than guess).
  CURLUcode rc = u.set(CURLUPART_URL, prepared, CURLU_NON_SUPPORT_SCHEME | CURLU_PATH_AS_IS);
  if (rc != CURLUE_OK) {
    *why = curl_reason(rc, p.scheme);
    return std::nullopt;
  }
  if (u.get(CURLUPART_QUERY, 0, &rc) || !is_absent(rc) || u.get(CURLUPART_FRAGMENT, 0, &rc) ||
      !is_absent(rc)) {
    *why = "a query or fragment (?, #) is not supported";
    return std::nullopt;
  }
  if (!get_secret(u, CURLUPART_USER, "user name", &p.user, why) ||
      !get_secret(u, CURLUPART_PASSWORD, "password", &p.password, why) || !get_host(u, &p, why) ||
      !get_port(u, &p, why) || !get_path(u, &p, why))
    return std::nullopt;
  return p;
}

std::string file_url(const std::string& path) {
  CurlUrl u;
  CURLUcode rc;
  if (u.set(CURLUPART_SCHEME, "file", 0) != CURLUE_OK ||
      u.set(CURLUPART_PATH, path, CURLU_URLENCODE) != CURLUE_OK)
    throw std::bad_alloc();
  auto url = u.get(CURLUPART_URL, 0, &rc);
  if (!url) throw std::bad_alloc();
  return *url;
}

bool has_dot_segment(std::string_view path) {
  size_t start = 0;
  for (;;) {
    size_t slash = path.find('/', start);
    std::string_view part =
        path.substr(start, slash == std::string_view::npos ? slash : slash - start);
    if (part == "." || part == "..") return true;
    if (slash == std::string_view::npos) return false;
    start = slash + 1;
  }
}

}  // namespace ceso
