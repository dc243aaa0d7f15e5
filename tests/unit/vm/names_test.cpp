#include "vm/names.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using ceso::check_vm_name;
using ceso::Exit;

// The error check_vm_name throws for `name`, or "" when it accepts it.
std::string refusal(std::string_view name, Exit code = Exit::usage) {
  try {
    check_vm_name(name, "--as", code);
  } catch (const ceso::Error& e) {
    EXPECT_EQ(e.code(), code) << name;
    return e.what();
  }
  return "";
}

TEST(VmName, AcceptsOrdinaryAndHostileButHarmlessNames) {
  for (const char* ok : {"web01", "web 01 & <x> \"q\" é", "a", "日本語のVM", "it's", "x%2fy",
                         "100%25", "a%5Cb", "emoji 🚀"})
    EXPECT_EQ(refusal(ok), "") << ok;
  EXPECT_EQ(refusal(std::string(80, 'x')), "");
  // 80 characters, more bytes: the limit counts characters.
  std::string wide;
  for (int i = 0; i < 80; ++i) wide += "é";
  EXPECT_EQ(refusal(wide), "");
}

TEST(VmName, RefusesEmptyAndOverLong) {
  EXPECT_EQ(refusal(""), "--as: VM name is empty");
  std::string e = refusal(std::string(81, 'x'));
  EXPECT_NE(e.find("81 characters"), std::string::npos) << e;
  EXPECT_NE(e.find("at most 80"), std::string::npos) << e;
  std::string wide;
  for (int i = 0; i < 81; ++i) wide += "é";
  EXPECT_NE(refusal(wide).find("81 characters"), std::string::npos);
}

TEST(VmName, RefusesControlCharactersNamingPositionAndCode) {
  struct Case {
    std::string name, code, at;
  };
  for (const auto& c : std::initializer_list<Case>{
           {"a\nb", "U+000A", "at character 2"},
           {"\tx", "U+0009", "at character 1"},
           {"web\x7f", "U+007F", "at character 4"},
           {std::string("x\0y", 3), "U+0000", "at character 2"},
           {"é\r", "U+000D", "at character 2"},  // characters, not bytes
           {"ab\xc2\x9b"
            "31m",
            "U+009B", "at character 3"},               // C1 CSI
           {"a\xc2\x85", "U+0085", "at character 2"},  // C1 NEL
           {"a\xe2\x80\xa8z", "U+2028", "at character 2"},
           {"a\xe2\x80\xae"
            "evil",
            "U+202E", "at character 2"},  // right-to-left override
           {"\xe2\x81\xa6x", "U+2066", "at character 1"},
       }) {
    std::string e = refusal(c.name);
    EXPECT_NE(e.find(c.code), std::string::npos) << e;
    EXPECT_NE(e.find(c.at), std::string::npos) << e;
    EXPECT_EQ(e.rfind("--as: VM name ", 0), 0u) << e;
    // The message never carries the raw character.
    for (char ch : e) EXPECT_FALSE(static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) << e;
    EXPECT_EQ(e.find("\xc2\x9b"), std::string::npos) << e;
    EXPECT_EQ(e.find("\xe2\x80\xae"), std::string::npos) << e;
  }
}

TEST(VmName, RefusesInvalidUtf8NamingTheByte) {
  struct Case {
    std::string name, what;
  };
  for (const auto& c : std::initializer_list<Case>{
           {"ab\xff", "byte 0xFF at byte 3"},
           {"\xc3", "byte 0xC3 at byte 1"},              // truncated sequence
           {"x\xc0\xaf", "byte 0xC0 at byte 2"},         // overlong '/'
           {"\xed\xa0\x80", "byte 0xED at byte 1"},      // surrogate
           {"\xf4\x90\x80\x80", "byte 0xF4 at byte 1"},  // above U+10FFFF
           {"a\x80", "byte 0x80 at byte 2"},             // stray continuation
       }) {
    std::string e = refusal(c.name, Exit::bad_input);
    EXPECT_NE(e.find("not valid UTF-8"), std::string::npos) << e;
    EXPECT_NE(e.find(c.what), std::string::npos) << e;
  }
}

TEST(VmName, RefusesWhatVsphereWouldStoreEscaped) {
  std::string e = refusal("a/b");
  EXPECT_NE(e.find("U+002F at character 2"), std::string::npos) << e;
  EXPECT_NE(e.find("%2f"), std::string::npos) << e;
  EXPECT_NE(refusal("a\\b").find("U+005C at character 2"), std::string::npos);
  e = refusal("50%");
  EXPECT_NE(e.find("'%' at character 3"), std::string::npos) << e;
  EXPECT_NE(refusal("%zz").find("'%' at character 1"), std::string::npos);
  EXPECT_NE(refusal("%2").find("'%' at character 1"), std::string::npos);
  EXPECT_NE(refusal("a%2fb%").find("'%' at character 6"), std::string::npos);
}

TEST(VmName, ComparesInDecodedForm) {
  EXPECT_EQ(ceso::decoded_vm_name("a%2fb%5Cc%25d%2Fe"), "a/b\\c%d/e");
  EXPECT_EQ(ceso::decoded_vm_name("%252f"), "%2f");  // one level only
  EXPECT_EQ(ceso::decoded_vm_name("50%"), "50%");
  EXPECT_TRUE(ceso::same_vm_name("a/b", "a%2fb"));
  EXPECT_TRUE(ceso::same_vm_name("a%2Fb", "a%2fb"));
  EXPECT_TRUE(ceso::same_vm_name("100%", "100%25"));
  EXPECT_FALSE(ceso::same_vm_name("a/b", "a%252fb"));
  EXPECT_FALSE(ceso::same_vm_name("web01", "web1"));
  EXPECT_FALSE(ceso::same_vm_name("Web01", "web01"));
}

}  // namespace
