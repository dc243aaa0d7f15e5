#include "ceso/records.hpp"

#include <gtest/gtest.h>

#include <cstdio>

#include "ceso/error.hpp"

namespace {

FILE* memfile(const std::string& text) {
  FILE* f = tmpfile();
  fputs(text.c_str(), f);
  rewind(f);
  return f;
}

TEST(Ndjson, ReadsRecordsAndSkipsBlankLines) {
  FILE* f = memfile("{\"type\":\"vm\",\"name\":\"a\"}\n\n  \n{\"type\":\"vm\",\"name\":\"b\",\"x\":[1,2]}\n");
  ceso::NdjsonReader r(f, "<stdin>");
  auto a = r.next();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->value["name"], "a");
  EXPECT_EQ(a->line, 1u);
  auto b = r.next();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->origin, "<stdin>:4");
  EXPECT_EQ(b->value["x"][1], 2);
  EXPECT_FALSE(r.next());
  fclose(f);
}

TEST(Ndjson, BadLineNamesTheLineAndReaderGoesOn) {
  FILE* f = memfile("{\"type\":\"vm\"}\n{not json\n[1]\n{\"type\":\"vm\",\"name\":\"ok\"}\n");
  ceso::NdjsonReader r(f, "<stdin>");
  ASSERT_TRUE(r.next());
  try {
    r.next();
    FAIL();
  } catch (const ceso::Error& e) {
    EXPECT_EQ(e.code(), ceso::Exit::bad_input);
    EXPECT_NE(std::string(e.what()).find("<stdin>:2"), std::string::npos) << e.what();
  }
  try {
    r.next();
    FAIL();
  } catch (const ceso::Error& e) {
    EXPECT_NE(std::string(e.what()).find("<stdin>:3"), std::string::npos) << e.what();
  }
  auto ok = r.next();
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->value["name"], "ok");
  fclose(f);
}

TEST(Ndjson, KeepsKeyOrderAndUnknownFields) {
  auto v = ceso::parse_json_text(R"({"type":"vm","zeta":1,"alpha":{"b":2,"a":1}})");
  EXPECT_EQ(v.dump(), R"({"type":"vm","zeta":1,"alpha":{"b":2,"a":1}})");
}

TEST(Ndjson, InvalidUtf8IsBadInput) {
  EXPECT_THROW(ceso::parse_json_text("{\"name\":\"\xff\"}"), ceso::Error);
}

TEST(Records, FieldAtFollowsDottedPaths) {
  auto v = ceso::parse_json_text(R"({"snapshot":{"name":"pre"},"tags":["a","b"],"n":null})");
  EXPECT_EQ(ceso::cell_text(ceso::field_at(v, "snapshot.name")), "pre");
  EXPECT_EQ(ceso::cell_text(ceso::field_at(v, "tags")), "a,b");
  EXPECT_EQ(ceso::cell_text(ceso::field_at(v, "n")), "-");
  EXPECT_EQ(ceso::field_at(v, "snapshot.none"), nullptr);
}

}  // namespace
