// The one URL parser (libcurl's curl_url behind parse_url_parts): what it
// gives the callers, independent of endpoint or target defaults.
#include "base/url.hpp"

#include <gtest/gtest.h>

namespace {

const ceso::UrlSyntax kTargets{{"file", "sftp"}, "", false};
const ceso::UrlSyntax kWeb{{"https", "http"}, "https", true};

TEST(Url, PartsAreSplitAndDecoded) {
  std::string why;
  auto p =
      ceso::parse_url_parts("SFTP://b%40c:p%3Aw@[2001:DB8::5%25Eth0]:2222/a%20b/", kTargets, &why);
  ASSERT_TRUE(p) << why;
  EXPECT_EQ(p->scheme, "sftp");
  EXPECT_EQ(p->user, "b@c");
  EXPECT_EQ(p->password, "p:w");
  EXPECT_EQ(p->host, "2001:db8::5%Eth0");
  EXPECT_TRUE(p->ipv6);
  EXPECT_EQ(p->host_ref(), "[2001:db8::5%25Eth0]");
  EXPECT_EQ(p->port, 2222);
  EXPECT_EQ(p->path, "/a%20b/");
  EXPECT_EQ(p->decoded_path, "/a b/");
}

TEST(Url, AbsentPartsStayAbsent) {
  std::string why;
  auto p = ceso::parse_url_parts("esxi1.lab", kWeb, &why);
  ASSERT_TRUE(p) << why;
  EXPECT_EQ(p->scheme, "https");  // the caller's default
  EXPECT_FALSE(p->user);
  EXPECT_FALSE(p->password);
  EXPECT_EQ(p->port, 0);
  EXPECT_EQ(p->path, "/");
  p = ceso::parse_url_parts("https://@esxi1.lab", kWeb, &why);
  ASSERT_TRUE(p) << why;
  EXPECT_EQ(p->user, "");  // present but empty
  EXPECT_FALSE(p->password);
}

TEST(Url, ReasonsNeverQuoteTheText) {
  const std::string pw = "Pw9sEcReT";
  for (const std::string& bad :
       {"https://u:" + pw + "@h:0", "https://u:" + pw + "%zz@h", "ftp://u:" + pw + "@h",
        "https://u:" + pw + "@", "https://u:" + pw + "@h/?", "u:" + pw,
        "https://u:" + pw + "@b!h"}) {
    std::string why;
    EXPECT_FALSE(ceso::parse_url_parts(bad, kWeb, &why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
    EXPECT_EQ(why.find(pw), std::string::npos) << bad << " -> " << why;
  }
}

TEST(Url, SchemeIsRequiredWithoutADefault) {
  std::string why;
  EXPECT_FALSE(ceso::parse_url_parts("nas/srv", kTargets, &why));
  EXPECT_EQ(why, "no scheme (use file:// or sftp://)");
  EXPECT_FALSE(ceso::parse_url_parts("https://nas/srv", kTargets, &why));
  EXPECT_EQ(why, "unsupported scheme (use file:// or sftp://)");
}

TEST(Url, FileUrlRoundTrips) {
  for (const std::string path : {"/srv/b", "/srv/my backups", "/x/100%41", "/a#b?c", "/é/ü"}) {
    std::string url = ceso::file_url(path), why;
    EXPECT_EQ(url.rfind("file:///", 0), 0u) << url;
    auto p = ceso::parse_url_parts(url, kTargets, &why);
    ASSERT_TRUE(p) << path << " -> " << url << ": " << why;
    EXPECT_EQ(p->decoded_path, path) << url;
  }
  EXPECT_EQ(ceso::file_url("/srv/backups"), "file:///srv/backups");
}

TEST(Url, DotSegments) {
  for (const char* p : {"/a/../b", "/..", "/.", "/a/.", "..", "/a/./b", "./a"})
    EXPECT_TRUE(ceso::has_dot_segment(p)) << p;
  for (const char* p : {"/a/..b", "/a/b..", "/.hidden", "/a/...", "/", "", "/a//b"})
    EXPECT_FALSE(ceso::has_dot_segment(p)) << p;
}

}  // namespace
