#include "ceso/xml.hpp"

#include <gtest/gtest.h>

#include "ceso/error.hpp"

namespace {

TEST(Xml, EscapesEverythingSpecial) {
  EXPECT_EQ(ceso::xml::escape("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&apos;f");
  EXPECT_EQ(ceso::xml::escape("web 01 é"), "web 01 é");
  EXPECT_EQ(ceso::xml::escape("a\rb"), "a&#13;b");
}

TEST(Xml, RejectsControlCharacters) {
  try {
    ceso::xml::escape(std::string("a\x01", 2));
    FAIL();
  } catch (const ceso::Error& e) {
    EXPECT_EQ(e.code(), ceso::Exit::bad_input);
    EXPECT_NE(std::string(e.what()).find("0x01"), std::string::npos);
  }
}

TEST(Xml, EscapedTextRoundTripsThroughParser) {
  std::string hostile = "web \"01\" & <x> 'q' é ☃";
  auto doc = ceso::xml::parse("<a><name>" + ceso::xml::escape(hostile) + "</name></a>");
  EXPECT_EQ(doc.child_text("name"), hostile);
}

TEST(Xml, DropsPrefixesAndKeepsTypes) {
  auto doc = ceso::xml::parse(
      "<soapenv:Envelope xmlns:soapenv=\"s\" xmlns:xsi=\"i\"><soapenv:Body>"
      "<val xsi:type=\"xsd:string\">x</val><obj type=\"VirtualMachine\">vm-1</obj>"
      "</soapenv:Body></soapenv:Envelope>");
  EXPECT_EQ(doc.name, "Envelope");
  const auto* val = doc.find("Body/val");
  ASSERT_NE(val, nullptr);
  EXPECT_EQ(val->type(), "string");
  EXPECT_EQ(val->attr("type"), "");
  EXPECT_EQ(doc.find_text("Body/obj"), "vm-1");
  EXPECT_EQ(doc.find("Body/obj")->attr("type"), "VirtualMachine");
}

TEST(Xml, KeepsWhitespaceInLeavesOnly) {
  auto doc = ceso::xml::parse("<a>\n  <b>  </b>\n</a>");
  EXPECT_EQ(doc.text, "");
  EXPECT_EQ(doc.child_text("b"), "  ");
}

TEST(Xml, MalformedNamesLine) {
  try {
    ceso::xml::parse("<a>\n<b>\n</a>");
    FAIL();
  } catch (const ceso::Error& e) {
    EXPECT_NE(std::string(e.what()).find("line 3"), std::string::npos) << e.what();
  }
}

TEST(Xml, AllAndMissing) {
  auto doc = ceso::xml::parse("<a><x>1</x><y/><x>2</x></a>");
  ASSERT_EQ(doc.all("x").size(), 2u);
  EXPECT_EQ(doc.all("x")[1]->text, "2");
  EXPECT_EQ(doc.child("z"), nullptr);
  EXPECT_EQ(doc.find_text("y/z"), "");
}

}  // namespace
