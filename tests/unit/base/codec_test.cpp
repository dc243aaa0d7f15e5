#include "base/codec.hpp"

#include <gtest/gtest.h>

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
