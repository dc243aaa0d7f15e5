#include "base/codec.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/error.hpp"

namespace {

TEST(Codec, Base64RoundTripAllLengths) {
  std::string data;
  for (int i = 0; i < 70; ++i) {
    EXPECT_EQ(ceso::base64_decode(ceso::base64_encode(data)), data) << i;
    data += static_cast<char>(i * 37);
  }
}

TEST(Codec, Base64KnownValues) {
  EXPECT_EQ(ceso::base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(ceso::base64_encode("fo"), "Zm8=");
  EXPECT_EQ(ceso::base64_decode("Zm8="), "fo");
  EXPECT_EQ(ceso::base64_decode("Zm9v\nYmFy\n"), "foobar");
}

TEST(Codec, Base64RejectsGarbage) {
  EXPECT_THROW(ceso::base64_decode("Zm9"), ceso::Error);
  EXPECT_THROW(ceso::base64_decode("Zm9*"), ceso::Error);
}

TEST(Codec, GzipRoundTripAndMagic) {
  std::string text(100000, 'x');
  std::string gz = ceso::gzip_compress(text);
  ASSERT_GE(gz.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(gz[1]), 0x8b);
  EXPECT_LT(gz.size(), 1000u);
  EXPECT_EQ(ceso::gzip_decompress(gz), text);
}

TEST(Codec, GzipReusedStreamsGiveTheSameBytesAtEverySize) {
  // One kept compressor per level: every size, on first use and on reuse
  // after other sizes, must round-trip and be reproducible.
  std::vector<std::string> texts;
  for (size_t n : {size_t{0}, size_t{1}, size_t{249}, size_t{250}, size_t{1000}, size_t{5000},
                   size_t{20000}, size_t{70000}, size_t{3u << 20}}) {
    std::string t;
    for (size_t i = 0; t.size() < n; ++i) t += std::to_string(i * 7919 % 10007) + " ";
    t.resize(n);
    texts.push_back(t);
  }
  std::vector<std::string> first;
  for (const auto& t : texts) first.push_back(ceso::gzip_compress(t));
  for (size_t i = texts.size(); i-- > 0;) {
    SCOPED_TRACE(texts[i].size());
    EXPECT_EQ(ceso::gzip_decompress(first[i]), texts[i]);
    EXPECT_EQ(ceso::gzip_compress(texts[i]), first[i]);
  }
}

TEST(Codec, GzipBothLevelsRoundTripReproduciblyAndBestIsNoLarger) {
  std::string text;
  for (int i = 0; text.size() < 50000; ++i)
    text +=
        "line " + std::to_string(i * 7919 % 10007) + ": runcmd echo vm" + std::to_string(i) + "\n";
  std::string fast = ceso::gzip_compress(text, ceso::GzipLevel::fast);
  std::string best = ceso::gzip_compress(text, ceso::GzipLevel::best);
  EXPECT_EQ(ceso::gzip_decompress(fast), text);
  EXPECT_EQ(ceso::gzip_decompress(best), text);
  EXPECT_EQ(ceso::gzip_compress(text, ceso::GzipLevel::fast), fast);
  EXPECT_EQ(ceso::gzip_compress(text), best);  // best is the default
  EXPECT_LE(best.size(), fast.size());
  EXPECT_LT(fast.size(), text.size() / 2);
  // Empty input is a valid gzip member too.
  EXPECT_EQ(ceso::gzip_decompress(ceso::gzip_compress("", ceso::GzipLevel::fast)), "");
}

TEST(Codec, GzipCorruptIsBadInput) {
  std::string gz = ceso::gzip_compress("hello world hello world");
  try {
    ceso::gzip_decompress(gz.substr(0, gz.size() / 2));
    FAIL();
  } catch (const ceso::Error& e) {
    EXPECT_EQ(e.code(), ceso::Exit::bad_input);
  }
}

TEST(Codec, GuestinfoEncodings) {
  std::string doc = "instance-id: i-1\nlocal-hostname: web01\n";
  EXPECT_EQ(ceso::decode_guestinfo_value(ceso::base64_encode(doc), "base64"), doc);
  EXPECT_EQ(ceso::decode_guestinfo_value(ceso::base64_encode(doc), "b64"), doc);
  std::string gzb64 = ceso::base64_encode(ceso::gzip_compress(doc));
  EXPECT_EQ(ceso::decode_guestinfo_value(gzb64, "gzip+base64"), doc);
  EXPECT_EQ(ceso::decode_guestinfo_value(gzb64, "gz+b64"), doc);
  // cloud-init treats unknown encodings as plain text; so do we.
  EXPECT_EQ(ceso::decode_guestinfo_value("plain", "rot13"), "plain");
}

}  // namespace
