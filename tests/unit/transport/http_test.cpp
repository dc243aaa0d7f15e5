// Host text made printable (error.hpp host_text), HTTP status texts and error
// page lines (http.hpp), and the limit settings (config.hpp).
#include "transport/http.hpp"

#include <gtest/gtest.h>

#include "base/error.hpp"

namespace {

bool has_control(const std::string& s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

TEST(HostText, PlainTextAndUtf8StayAsTheyAre) {
  EXPECT_EQ(ceso::host_text("File [ds] web 01/é ☃ 🙂.vmdk"),
            "File [ds] web 01/é ☃ 🙂.vmdk");
  EXPECT_EQ(ceso::host_text(""), "");
}

TEST(HostText, ControlsBecomeVisibleEscapes) {
  EXPECT_EQ(ceso::host_text("\x1b[2J\x1b[1;31mred\x07"), "\\x1b[2J\\x1b[1;31mred\\x07");
  EXPECT_EQ(ceso::host_text("a\nb\r\nc\td"), "a\\nb\\r\\nc\\td");
  EXPECT_EQ(ceso::host_text(std::string("nul\0x\x7f", 6)), "nul\\x00x\\x7f");
  // C1 controls: the 8-bit CSI and OSC.
  EXPECT_EQ(ceso::host_text("\xc2\x9b"
                            "2J\xc2\x9d"
                            "0;t"),
            "\\xc2\\x9b2J\\xc2\\x9d0;t");
  EXPECT_EQ(ceso::host_text("\xc2\xa0"), "\xc2\xa0");  // NBSP is text
}

TEST(HostText, BytesThatAreNotUtf8AreEscaped) {
  EXPECT_EQ(ceso::host_text("a\xff"
                            "b"),
            "a\\xffb");
  EXPECT_EQ(ceso::host_text("\xc0\xaf"), "\\xc0\\xaf");                    // overlong '/'
  EXPECT_EQ(ceso::host_text("\xed\xa0\x80"), "\\xed\\xa0\\x80");           // surrogate
  EXPECT_EQ(ceso::host_text("\xe2\x98"), "\\xe2\\x98");                    // cut sequence
  EXPECT_EQ(ceso::host_text("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");  // > U+10FFFF
}

TEST(HostText, LongTextIsShortenedToCharactersNotBytes) {
  std::string long_text(10 * 1024 * 1024, 'A');
  std::string out = ceso::host_text(long_text);
  EXPECT_EQ(out, std::string(300, 'A') + "…");
  EXPECT_EQ(ceso::host_text(std::string(300, 'A')), std::string(300, 'A'));  // no "…"
  std::string snowmen;
  for (int i = 0; i < 400; ++i) snowmen += "☃";
  out = ceso::host_text(snowmen, 10);
  EXPECT_EQ(out, std::string("☃☃☃☃☃☃☃☃☃☃") + "…");
  // Escapes count as one character each and are never cut in half.
  out = ceso::host_text(std::string(50, '\x1b'), 3);
  EXPECT_EQ(out, "\\x1b\\x1b\\x1b…");
}

TEST(HostText, QuoteUsesTheSameRules) {
  EXPECT_EQ(ceso::quote("web\x1b[2J\n01"), "'web\\x1b[2J\\n01'");
  EXPECT_EQ(ceso::quote(std::string(1000, 'x')), "'" + std::string(300, 'x') + "…'");
}

TEST(HttpStatus, StandardReasonPhrases) {
  EXPECT_EQ(ceso::http_status_text(503), "503 Service Unavailable");
  EXPECT_EQ(ceso::http_status_text(401), "401 Unauthorized");
  EXPECT_EQ(ceso::http_status_text(403), "403 Forbidden");
  EXPECT_EQ(ceso::http_status_text(404), "404 Not Found");
  EXPECT_EQ(ceso::http_status_text(500), "500 Internal Server Error");
  EXPECT_EQ(ceso::http_status_text(599), "599");
}

TEST(HttpBody, FirstLineOfAnErrorPage) {
  EXPECT_EQ(ceso::first_line("injected 503\n"), "injected 503");
  EXPECT_EQ(ceso::first_line("\n\n  busy, try later  \r\nsecond"), "busy, try later");
  EXPECT_EQ(ceso::first_line("<html><head><title>503 Service Unavailable</title></head>\n<body>x"),
            "503 Service Unavailable");
  EXPECT_EQ(ceso::first_line(""), "");
  EXPECT_EQ(ceso::first_line("\n \n"), "");
  std::string hostile = ceso::first_line("\x1b[2J\x1b]0;pwned\x07 busy\nrest");
  EXPECT_FALSE(has_control(hostile)) << hostile;
  EXPECT_EQ(hostile, "\\x1b[2J\\x1b]0;pwned\\x07 busy");
  EXPECT_EQ(ceso::first_line(std::string(10 * 1024 * 1024, 'B')), std::string(300, 'B') + "…");
}

TEST(Limits, SizeText) {
  EXPECT_EQ(ceso::size_text(64ull << 20), "64 MiB");
  EXPECT_EQ(ceso::size_text(1000), "1000 bytes");
}

}  // namespace
