// The shared base helpers: hex encoding and SHA-256 to hex.
#include "base/util.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace {

using ceso::hex_encode;
using ceso::sha256_hex;

TEST(HexEncode, LowerCaseByDefault) {
  const unsigned char b[] = {0x00, 0x0f, 0xa5, 0xff};
  EXPECT_EQ(hex_encode(b, sizeof b), "000fa5ff");
}

TEST(HexEncode, UpperCaseWithSeparatorLikeAThumbprint) {
  const unsigned char b[] = {0x00, 0x0f, 0xa5, 0xff};
  EXPECT_EQ(hex_encode(b, sizeof b, true, ':'), "00:0F:A5:FF");
}

TEST(HexEncode, SeparatorOnlyBetweenBytes) {
  const unsigned char one[] = {0xab};
  EXPECT_EQ(hex_encode(one, 1, false, ':'), "ab");
  EXPECT_EQ(hex_encode(one, 0, true, ':'), "");
  EXPECT_EQ(hex_encode(nullptr, 0), "");
}

TEST(HexEncode, EveryByteValueIsTwoDigits) {
  for (unsigned v = 0; v < 256; ++v) {
    unsigned char b = static_cast<unsigned char>(v);
    char want[3];
    std::snprintf(want, sizeof want, "%02x", v);
    EXPECT_EQ(hex_encode(&b, 1), want) << v;
    std::snprintf(want, sizeof want, "%02X", v);
    EXPECT_EQ(hex_encode(&b, 1, true), want) << v;
  }
}

TEST(Sha256Hex, KnownVectors) {  // FIPS 180-2 examples
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(std::string("a\0b", 3)).size(), 64u);
  EXPECT_NE(sha256_hex(std::string("a\0b", 3)), sha256_hex("a"));
}

TEST(AsciiLower, LettersOnly) {
  EXPECT_EQ(ceso::ascii_lower("HTTPS://ESXi-01.Example"), "https://esxi-01.example");
  EXPECT_EQ(ceso::ascii_lower("Set-Cookie:"), "set-cookie:");
  EXPECT_EQ(ceso::ascii_lower(""), "");
  EXPECT_EQ(ceso::ascii_lower("az09_@[`{"), "az09_@[`{");  // neighbours of A-Z stay
}

TEST(AsciiLower, NonAsciiBytesUnchanged) {
  EXPECT_EQ(ceso::ascii_lower("\xC3\x84"
                              "B"),
            "\xC3\x84"
            "b");  // UTF-8 "Ä" then B
  EXPECT_EQ(ceso::ascii_lower(std::string("A\0B", 3)), std::string("a\0b", 3));
}

}  // namespace

namespace {

TEST(HexValue, DigitsOfBothCasesAndNothingElse) {
  EXPECT_EQ(ceso::hex_value('0'), 0);
  EXPECT_EQ(ceso::hex_value('9'), 9);
  EXPECT_EQ(ceso::hex_value('a'), 10);
  EXPECT_EQ(ceso::hex_value('F'), 15);
  for (char c : {'g', 'G', '/', ':', '@', '`', ' ', '\0', '\xff'})
    EXPECT_EQ(ceso::hex_value(c), -1);
}

}  // namespace

TEST(ShSingleQuote, QuotesEverythingAndEscapesOnlyTheQuote) {
  EXPECT_EQ(ceso::sh_single_quote(""), "''");
  EXPECT_EQ(ceso::sh_single_quote("a b"), "'a b'");
  EXPECT_EQ(ceso::sh_single_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(ceso::sh_single_quote("''"), "''\\'''\\'''");
  EXPECT_EQ(ceso::sh_single_quote("$HOME `x` \\ \" *"), "'$HOME `x` \\ \" *'");
}
