#include "base/records.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>

#include "base/error.hpp"

namespace {

FILE* memfile(const std::string& text) {
  FILE* f = tmpfile();
  fputs(text.c_str(), f);
  rewind(f);
  return f;
}

TEST(Ndjson, ReadsRecordsAndSkipsBlankLines) {
  FILE* f = memfile(
      "{\"type\":\"vm\",\"name\":\"a\"}\n\n  \n{\"type\":\"vm\",\"name\":\"b\",\"x\":[1,2]}\n");
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

// The one record of `line`, read as a tool reads its stdin.
ceso::ordered_json read_one(const std::string& line) {
  FILE* f = memfile(line + "\n");
  ceso::NdjsonReader r(f, "<stdin>");
  std::optional<ceso::InputRecord> rec;
  try {
    rec = r.next();
  } catch (...) {
    fclose(f);
    throw;
  }
  fclose(f);
  if (!rec) throw std::runtime_error("no record in " + line);
  return rec->value;
}

TEST(Ndjson, KeepsKeyOrderAndUnknownFields) {
  auto v = read_one(R"({"type":"vm","zeta":1,"alpha":{"b":2,"a":1}})");
  EXPECT_EQ(v.dump(), R"({"type":"vm","zeta":1,"alpha":{"b":2,"a":1}})");
}

TEST(Ndjson, InvalidUtf8IsBadInput) {
  try {
    read_one("{\"name\":\"\xff\"}");
    FAIL() << "invalid UTF-8 read";
  } catch (const ceso::Error& e) {
    EXPECT_EQ(e.code(), ceso::Exit::bad_input);
    EXPECT_NE(std::string(e.what()).find("<stdin>:1"), std::string::npos) << e.what();
  }
}

// The error a next() throws; fails the test when it returns instead.
ceso::Error next_error(ceso::NdjsonReader& r) {
  try {
    r.next();
  } catch (const ceso::Error& e) {
    return e;
  }
  ADD_FAILURE() << "next() returned instead of throwing";
  return ceso::Error("none");
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(Ndjson, LineOverTheDefaultLimitIsBadInputAndTheNextRecordsAreRead) {
  std::string huge =
      "{\"type\":\"vm\",\"name\":\"" + std::string(ceso::kMaxRecordLine, 'x') + "\"}";
  FILE* f = memfile("{\"name\":\"a\"}\n" + huge + "\n{\"name\":\"b\"}\n");
  ceso::NdjsonReader r(f, "<stdin>");
  ASSERT_EQ(r.next()->value["name"], "a");
  ceso::Error e = next_error(r);
  EXPECT_EQ(e.code(), ceso::Exit::bad_input);
  EXPECT_TRUE(contains(e.what(), "<stdin>:2")) << e.what();
  EXPECT_TRUE(contains(e.what(), "line longer than 16777216 bytes")) << e.what();
  auto b = r.next();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->value["name"], "b");
  EXPECT_EQ(b->line, 3u);
  EXPECT_FALSE(r.next());
  fclose(f);
}

TEST(Ndjson, LimitIsInclusiveAndOverLongLinesAtTheEndAreReported) {
  // Exactly max_line bytes is taken; one more is not, also without a final newline.
  FILE* f = memfile("{\"n\":\"12\"}\n{\"n\":\"123\"}\n{\"n\":\"1234\"}");
  ceso::NdjsonReader r(f, "<stdin>", 10);  // the first line is 10 bytes
  EXPECT_EQ(r.next()->value["n"], "12");
  ceso::Error second = next_error(r);
  EXPECT_TRUE(contains(second.what(), "(at <stdin>:2): line longer than 10 bytes"))
      << second.what();
  ceso::Error last = next_error(r);
  EXPECT_TRUE(contains(last.what(), "<stdin>:3")) << last.what();
  EXPECT_FALSE(r.next());
  EXPECT_FALSE(r.failed());
  fclose(f);
}

TEST(Ndjson, LastLineWithoutNewlineAndCrLfAreRecords) {
  FILE* f = memfile("{\"name\":\"a\"}\r\n{\"name\":\"b\"}");
  ceso::NdjsonReader r(f, "<stdin>");
  EXPECT_EQ(r.next()->value["name"], "a");
  auto b = r.next();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->value["name"], "b");
  EXPECT_EQ(b->origin, "<stdin>:2");
  EXPECT_FALSE(r.next());
  fclose(f);
}

TEST(Ndjson, NulBytesAreNamedAndTheLineSkipped) {
  for (std::string bad : {std::string("{\"name\":\"a\0b\"}", 13), std::string("\0", 1),
                          std::string("{\"name\":\"a\"}\0", 14)}) {
    FILE* f = memfile("");
    fwrite(bad.data(), 1, bad.size(), f);
    fputs("\n{\"name\":\"ok\"}\n", f);
    rewind(f);
    ceso::NdjsonReader r(f, "<stdin>");
    ceso::Error e = next_error(r);
    EXPECT_EQ(e.code(), ceso::Exit::bad_input);
    EXPECT_TRUE(contains(e.what(), "<stdin>:1")) << e.what();
    EXPECT_TRUE(contains(e.what(), "NUL byte")) << e.what();
    EXPECT_EQ(r.next()->value["name"], "ok");
    fclose(f);
  }
}

TEST(Ndjson, InvalidUtf8LineIsNamedAndTheReaderGoesOn) {
  for (const char* bad : {"{\"name\":\"\xff\"}", "{\"name\":\"\xc3\"}", "{\"\xed\xa0\x80\":1}"}) {
    FILE* f = memfile(std::string(bad) + "\n{\"name\":\"ok\"}\n");
    ceso::NdjsonReader r(f, "<stdin>");
    ceso::Error e = next_error(r);
    EXPECT_EQ(e.code(), ceso::Exit::bad_input);
    EXPECT_TRUE(contains(e.what(), "<stdin>:1")) << e.what();
    EXPECT_TRUE(contains(e.what(), "UTF-8")) << e.what();
    EXPECT_EQ(r.next()->value["name"], "ok");
    fclose(f);
  }
}

// A read error is a failure of its own, never the end of input.
TEST(Ndjson, ReadErrorIsAFailureNotTheEnd) {
  // A directory opens but read(2) fails with EISDIR.
  auto dir = std::filesystem::temp_directory_path();
  FILE* d = fopen(dir.c_str(), "r");
  ASSERT_NE(d, nullptr);
  ceso::NdjsonReader r(d, "<stdin>");
  ceso::Error e = next_error(r);
  EXPECT_EQ(e.code(), ceso::Exit::failure);
  EXPECT_TRUE(contains(e.what(), "cannot read <stdin> at line 1")) << e.what();
  EXPECT_TRUE(contains(e.what(), "Is a directory")) << e.what();
  EXPECT_TRUE(r.failed());
  EXPECT_FALSE(r.next());  // at its end; callers stop
  fclose(d);
}

TEST(Ndjson, ReadErrorAfterRecordsNamesTheNextLine) {
  // A pipe whose read end is closed under the reader after the first record.
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const char text[] = "{\"name\":\"a\"}\n";
  ASSERT_EQ(write(fds[1], text, sizeof text - 1), static_cast<ssize_t>(sizeof text - 1));
  close(fds[1]);
  FILE* f = fdopen(fds[0], "r");
  ASSERT_NE(f, nullptr);
  ceso::NdjsonReader r(f, "<stdin>");
  EXPECT_EQ(r.next()->value["name"], "a");
  close(fds[0]);  // the descriptor goes away: the next read(2) fails with EBADF
  ceso::Error e = next_error(r);
  EXPECT_EQ(e.code(), ceso::Exit::failure);
  EXPECT_TRUE(contains(e.what(), "cannot read <stdin> at line 2")) << e.what();
  EXPECT_TRUE(contains(e.what(), "Bad file descriptor")) << e.what();
  fclose(f);
}

// A stream that hands out `text`, then fails every read with `err` (EIO from
// a failing disk or pipe, ENOMEM under memory pressure).
struct FailingStream {
  std::string text;
  int err;
  size_t pos = 0;
};

FILE* failing_stream(FailingStream& s) {
  cookie_io_functions_t io{};
  io.read = [](void* c, char* buf, size_t n) -> ssize_t {
    auto* s = static_cast<FailingStream*>(c);
    if (s->pos == s->text.size()) {
      errno = s->err;
      return -1;
    }
    size_t k = std::min(n, s->text.size() - s->pos);
    std::memcpy(buf, s->text.data() + s->pos, k);
    s->pos += k;
    return static_cast<ssize_t>(k);
  };
  return fopencookie(&s, "r", io);
}

TEST(Ndjson, EioAndEnomemFromTheStreamAreFailuresNamingTheLine) {
  for (int err : {EIO, ENOMEM}) {
    // The failure comes in the middle of line 3, after two good records.
    FailingStream s{"{\"name\":\"a\"}\n{\"name\":\"b\"}\n{\"name\":", err};
    FILE* f = failing_stream(s);
    ASSERT_NE(f, nullptr);
    ceso::NdjsonReader r(f, "<stdin>");
    EXPECT_EQ(r.next()->value["name"], "a");
    EXPECT_EQ(r.next()->value["name"], "b");
    ceso::Error e = next_error(r);
    EXPECT_EQ(e.code(), ceso::Exit::failure);
    EXPECT_TRUE(contains(e.what(), "cannot read <stdin> at line 3: " + std::string(strerror(err))))
        << e.what();
    EXPECT_TRUE(r.failed());
    EXPECT_FALSE(r.next());
    fclose(f);
  }
}

TEST(Records, RecordLineIsNlohmannsDumpByteForByte) {
  using ceso::ordered_json;
  ordered_json r = ordered_json::parse(R"({"type":"guestinfo","z":1,"a":[1,-2.5,true,false,null,
    "x",[],{}],"n":{"k":"v","":""},"big":18446744073709551615,"neg":-9223372036854775808,
    "f":1e300,"s":"quote\" back\\ tab\t nl\n cr\r ctl\u0001 del\u007f é 日本 😀 / <>&'"})");
  r["bad_utf8"] = std::string("a\xff\xfe b \xc3");
  r["long_b64"] = std::string(70000, 'A') + "+/=";
  r["nested"]["deeper"]["array"] = ordered_json::array({"H4sI", std::string("\x1f\x8b", 2)});
  std::string want = r.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  EXPECT_EQ(ceso::record_line(r), want);
  // Every single byte as a string, as a key and as a value.
  for (int b = 0; b < 256; ++b) {
    ordered_json one;
    one[std::string(1, char(b)) + "k"] = "v" + std::string(1, char(b));
    EXPECT_EQ(ceso::record_line(one),
              one.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n")
        << b;
  }
  EXPECT_EQ(ceso::record_line(ordered_json::object()), "{}\n");
}

TEST(Records, FieldAtFollowsDottedPaths) {
  auto v = read_one(R"({"snapshot":{"name":"pre"},"tags":["a","b"],"n":null})");
  EXPECT_EQ(ceso::cell_text(ceso::field_at(v, "snapshot.name")), "pre");
  EXPECT_EQ(ceso::cell_text(ceso::field_at(v, "tags")), "a,b");
  EXPECT_EQ(ceso::cell_text(ceso::field_at(v, "n")), "-");
  EXPECT_EQ(ceso::field_at(v, "snapshot.none"), nullptr);
}

// ---- pass_through: unknown upstream fields kept, our fields fresh ----

ceso::ordered_json j(std::string_view text) { return read_one(std::string(text)); }

const std::vector<std::string> kOwned = {"type",   "endpoint", "id",      "name",
                                         "uuid",   "power",    "ip",      "template",
                                         "forced", "changed",  "hardware"};

TEST(PassThrough, UnknownUpstreamFieldsAreKeptInTheirOrderAfterOurs) {
  auto up = j(R"({"zeta":1,"type":"vm","note":"keep me","name":"web01","alpha":[1,2]})");
  auto ours = j(R"({"type":"vm","name":"web01","power":"on","changed":true})");
  EXPECT_EQ(ceso::pass_through(up, ours, kOwned).dump(),
            R"({"type":"vm","name":"web01","power":"on","changed":true,)"
            R"("zeta":1,"note":"keep me","alpha":[1,2]})");
}

TEST(PassThrough, KeyOrderIsOursWhateverTheUpstreamOrder) {
  auto ours = j(R"({"type":"vm","id":"vm-1","name":"a","power":"off"})");
  auto a = ceso::pass_through(j(R"({"power":"on","x":1,"name":"a","type":"vm"})"), ours, kOwned);
  auto b = ceso::pass_through(j(R"({"type":"vm","name":"a","x":1,"power":"on"})"), ours, kOwned);
  EXPECT_EQ(a.dump(), R"({"type":"vm","id":"vm-1","name":"a","power":"off","x":1})");
  EXPECT_EQ(a.dump(), b.dump());
}

TEST(PassThrough, StaleOwnedFieldsAreOverwrittenOrDropped) {
  // Upstream says on with an address and a forced power-off of an earlier
  // stage, and that the VM is a template: none of it is true now.
  auto up = j(R"({"type":"vm","name":"db","power":"poweredOn","ip":"192.0.2.7",)"
              R"("template":true,"forced":"PowerOffVM_Task","hardware":{"cpus":8}})");
  auto ours = j(R"({"type":"vm","name":"db","power":"off","ip":null,"changed":true})");
  auto r = ceso::pass_through(up, ours, kOwned);
  EXPECT_EQ(r.dump(), R"({"type":"vm","name":"db","power":"off","ip":null,"changed":true})");
  EXPECT_TRUE(r.contains("ip"));  // null, not absent: known to have no address now
  EXPECT_FALSE(r.contains("template"));
  EXPECT_FALSE(r.contains("forced"));
  EXPECT_FALSE(r.contains("hardware"));
}

TEST(PassThrough, WithoutAnOwnedListOnlyOurKeysAreReplaced) {
  auto up = j(R"({"type":"vm","power":"on","template":true,"note":1})");
  auto r = ceso::pass_through(up, j(R"({"type":"vm","power":"off"})"));
  EXPECT_EQ(r.dump(), R"({"type":"vm","power":"off","template":true,"note":1})");
}

TEST(PassThrough, CollisionsOfAnotherJsonTypeTakeOurValue) {
  auto up = j(R"({"power":5,"ip":["192.0.2.1"],"tags":"web","name":{"x":1},"changed":"yes",)"
              R"("uuid":null})");
  auto ours = j(R"({"type":"vm","name":"n","uuid":"42","power":"on","ip":null,"tags":[],)"
                R"("changed":false})");
  EXPECT_EQ(ceso::pass_through(up, ours, kOwned).dump(), ours.dump());
}

TEST(PassThrough, IdentityIsNeverTakenFromUpstream) {
  auto up = j(R"({"type":"vm","endpoint":"esxi9.example:443","id":"vm-9","name":"old",)"
              R"("uuid":"aaaa","k":"v"})");
  auto ours = j(R"({"type":"vm","endpoint":"127.0.0.1:8989","id":"vm-42","name":"new",)"
                R"("uuid":"bbbb"})");
  auto r = ceso::pass_through(up, ours, kOwned);
  EXPECT_EQ(r["endpoint"], "127.0.0.1:8989");
  EXPECT_EQ(r["id"], "vm-42");
  EXPECT_EQ(r["name"], "new");
  EXPECT_EQ(r["uuid"], "bbbb");
  EXPECT_EQ(r["k"], "v");
}

TEST(PassThrough, NestedValuesAreMergedShallow) {
  // Our `snapshot` replaces upstream's whole; an upstream object we do not
  // produce passes with everything inside it.
  auto up = j(R"({"snapshot":{"name":"old","note":"x"},"meta":{"a":{"b":[1,{"c":null}]}}})");
  auto ours = j(R"({"type":"vm","snapshot":{"name":"new"}})");
  EXPECT_EQ(ceso::pass_through(up, ours, {"snapshot"}).dump(),
            R"({"type":"vm","snapshot":{"name":"new"},"meta":{"a":{"b":[1,{"c":null}]}}})");
}

TEST(PassThrough, UpstreamOfAnotherTypeGivesItsFieldsButNotItsTypeOrConsumedOnes) {
  // ceso-mkvm given a guestinfo record: the guestinfo and documents it
  // consumed are dropped, the rest travels on, the type is ours.
  auto up = j(R"({"type":"guestinfo","name":"web01","instance_id":"i-1",)"
              R"("guestinfo":{"guestinfo.metadata":"x"},"documents":{},"role":"web"})");
  auto ours = j(R"({"type":"vm","name":"web01","changed":true})");
  auto r = ceso::pass_through(up, ours, {"type", "name", "changed", "guestinfo", "documents"});
  EXPECT_EQ(r.dump(), R"({"type":"vm","name":"web01","changed":true,"instance_id":"i-1",)"
                      R"("role":"web"})");
}

TEST(PassThrough, NonObjectOrEmptyUpstreamAddsNothing) {
  auto ours = j(R"({"type":"vm","name":"a","ip":null})");
  for (const auto& up :
       {ceso::ordered_json(), ceso::ordered_json::object(), ceso::ordered_json::array({1, 2}),
        ceso::ordered_json("vm"), ceso::ordered_json(42)})
    EXPECT_EQ(ceso::pass_through(up, ours, kOwned).dump(), ours.dump()) << up.dump();
}

TEST(PassThrough, OursMustBeAnObject) {
  EXPECT_THROW(ceso::pass_through(j(R"({"a":1})"), ceso::ordered_json::array()), ceso::Error);
  EXPECT_THROW(ceso::pass_through(j(R"({"a":1})"), ceso::ordered_json()), ceso::Error);
}

}  // namespace

// wait_ready (the batching of cli/tool for_each_vm): ready when a record has
// arrived, whether still in the pipe or already in stdio's buffer, or at the
// end; not ready while the writer is quiet.
TEST(Ndjson, WaitReadySeesThePipeAndStdioBuffer) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  FILE* in = fdopen(fds[0], "r");
  ASSERT_NE(in, nullptr);
  ceso::NdjsonReader reader(in, "<pipe>");
  EXPECT_FALSE(reader.wait_ready(0));  // nothing written yet
  const char two[] = "{\"type\":\"vm\",\"name\":\"a\"}\n{\"type\":\"vm\",\"name\":\"b\"}\n";
  ASSERT_EQ(write(fds[1], two, sizeof two - 1), static_cast<ssize_t>(sizeof two - 1));
  EXPECT_TRUE(reader.wait_ready(0));
  ASSERT_TRUE(reader.next());
  // The second record was read into stdio's buffer with the first: poll(2)
  // alone would call the pipe empty.
  EXPECT_TRUE(reader.wait_ready(0));
  ASSERT_TRUE(reader.next());
  EXPECT_FALSE(reader.wait_ready(10));
  close(fds[1]);
  EXPECT_TRUE(reader.wait_ready(0));  // the end: next() says so
  EXPECT_FALSE(reader.next());
  std::fclose(in);
}
