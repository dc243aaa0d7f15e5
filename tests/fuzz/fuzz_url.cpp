// URLs: the vSphere endpoint (config.hpp parse_endpoint_url: --url, CESO_URL,
// GOVC_URL, config entries, records' endpoint fields), certificate
// thumbprints, and backup target URLs (target.hpp: file://, sftp://; all
// through base/url.hpp's parse_url_parts). sftp URLs are only parsed
// (parse_target_url, parse_sftp_url): opening one would connect.
#include "config/config.hpp"
#include "fuzz.hpp"
#include "transport/target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ceso;
  std::string text(ceso_fuzz::as_text(data, size));
  ceso_fuzz::expect_ok_or_error([&] {
    Endpoint ep = parse_endpoint_url(text);
    CESO_FUZZ_CHECK(ep.port > 0 && ep.port < 65536, "endpoint port in range");
    CESO_FUZZ_CHECK(!ep.host.empty() && !ep.id.empty(), "endpoint has a host and an id");
    CESO_FUZZ_CHECK(ep.scheme == "https" || ep.scheme == "http", "endpoint scheme");
    // The normalized URL (what is stored and sent) parses to the same endpoint.
    Endpoint again;
    try {
      again = parse_endpoint_url(ep.url);
    } catch (const Error& e) {
      std::fprintf(stderr, "normalized URL %s is refused: %s\n", ep.url.c_str(), e.what());
      CESO_FUZZ_CHECK(false, "normalized endpoint URL parses");
    }
    CESO_FUZZ_CHECK(again.id == ep.id && again.url == ep.url, "endpoint URL round trip");
    // No credentials in the normalized URL: no userinfo in its authority.
    size_t auth = ep.url.find("://") + 3;
    CESO_FUZZ_CHECK(
        ep.url.find('@') == std::string::npos || ep.url.find('@') > ep.url.find('/', auth),
        "no user or password in the normalized URL");
  });
  ceso_fuzz::expect_ok_or_error([&] {
    std::string t = normalize_thumbprint(text);
    CESO_FUZZ_CHECK(t.size() == 95, "a SHA-256 thumbprint is 32 hex pairs with colons");
    CESO_FUZZ_CHECK(normalize_thumbprint(t) == t, "thumbprint normalization is idempotent");
  });
  // Target URLs. sftp ones (the scheme in any case) are only parsed:
  // opening one would connect. file:// URLs and plain paths are opened (that
  // only looks at the directory).
  bool sftp = false;
  try {
    sftp = parse_target_url(text).scheme == "sftp";
  } catch (const Error&) {
  }
  if (sftp) {
    ceso_fuzz::expect_ok_or_error([&] {
      SftpUrl u = parse_sftp_url(text);
      CESO_FUZZ_CHECK(!u.host.empty() && !u.user.empty(), "sftp URL has a host and a user");
      CESO_FUZZ_CHECK(u.port > 0 && u.port < 65536, "sftp port in range");
      CESO_FUZZ_CHECK(u.path.size() > 1 && u.path[0] == '/', "sftp path is absolute, not /");
      CESO_FUZZ_CHECK(!has_dot_segment(u.path), "no . or .. in the sftp path");
      for (unsigned char c : u.user + u.host + u.path)
        CESO_FUZZ_CHECK(c >= 0x20 && c != 0x7f, "no control character in an sftp URL's parts");
    });
  } else {
    ceso_fuzz::expect_ok_or_error([&] {
      auto t = open_backup_target(text);
      // What the catalog records opens the same way again.
      (void)open_backup_target(t->url());
    });
  }
  ceso_fuzz::expect_ok_or_error([&] { (void)parse_sftp_url(text); });
  return 0;
}
