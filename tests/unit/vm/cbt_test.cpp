// Changed Block Tracking: change ids and the checks of each DiskChangeInfo
// a host sends (hostile input).
#include "vm/cbt.hpp"

#include <gtest/gtest.h>

#include "base/error.hpp"
#include "base/xml.hpp"

namespace ceso {
namespace {

TEST(CbtTest, ChangeIds) {
  std::string uuid;
  uint64_t seq = 0;
  EXPECT_TRUE(parse_change_id("52 4f 1a 2b 3c 4d 5e 6f-70 81 92 a3 b4 c5 d6 e7/42", uuid, seq));
  EXPECT_EQ(uuid, "52 4f 1a 2b 3c 4d 5e 6f-70 81 92 a3 b4 c5 d6 e7");
  EXPECT_EQ(seq, 42u);
  for (const char* bad : {"", "*", "/4", "52 4f/", "52 4f/x", "52 4f/-1", "52 4f/4 ", "zz/4",
                          "52 4f/4/5", "52\n4f/4"})
    EXPECT_FALSE(parse_change_id(bad, uuid, seq)) << bad;
  EXPECT_FALSE(parse_change_id(std::string(300, 'a') + "/1", uuid, seq));
}

std::vector<DiskArea> take(const std::string& body, uint64_t offset, uint64_t capacity,
                           uint64_t* next = nullptr) {
  std::vector<DiskArea> out;
  uint64_t n =
      take_change_info(xml::parse("<returnval>" + body + "</returnval>"), offset, capacity, out);
  if (next) *next = n;
  return out;
}

std::string area(int64_t s, int64_t l) {
  return "<changedArea><start>" + std::to_string(s) + "</start><length>" + std::to_string(l) +
         "</length></changedArea>";
}

TEST(CbtTest, GoodAnswersArePagedAndKept) {
  uint64_t next = 0;
  auto a =
      take("<startOffset>0</startOffset><length>8192</length>" + area(0, 512) + area(4096, 4096), 0,
           1 << 20, &next);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[1].start, 4096u);
  EXPECT_EQ(a[1].length, 4096u);
  EXPECT_EQ(next, 8192u);  // the caller asks again from here
  a = take("<startOffset>8192</startOffset><length>1040384</length>", 8192, 1 << 20, &next);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(next, 1u << 20);
}

TEST(CbtTest, HostileAnswersAreRefusedNamingWhy) {
  const uint64_t cap = 1 << 20;
  auto refused = [&](const std::string& body, uint64_t offset, const std::string& why) {
    try {
      take(body, offset, cap);
      ADD_FAILURE() << "accepted: " << body;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  };
  const std::string whole = "<startOffset>0</startOffset><length>1048576</length>";
  refused(whole + area(1048000, 4096), 0, "beyond");                 // past the disk's end
  refused(whole + area(0, 4096) + area(2048, 4096), 0, "overlaps");  // overlapping
  refused(whole + area(8192, 512) + area(0, 512), 0, "precedes");    // out of order
  refused(whole + area(-4096, 8192), 0, "negative");                 // negative
  refused(whole + area(4096, 0), 0, "empty");                        // empty
  refused(whole + "<changedArea><start>x</start><length>1</length></changedArea>", 0, "number");
  refused("<startOffset>4096</startOffset><length>4096</length>", 0, "not where it was asked");
  refused("<startOffset>0</startOffset><length>0</length>", 0, "no progress");
  refused("<startOffset>0</startOffset><length>-5</length>", 0, "no progress");
  refused("<startOffset>0</startOffset><length>2097152</length>", 0, "beyond the disk's end");
  refused("<startOffset>0</startOffset><length>4096</length>" + area(0, 8192), 0, "span");
  refused("<startOffset>0</startOffset><length>99999999999999999999999</length>", 0, "number");
  refused("<length>4096</length>", 0, "number");
}

}  // namespace
}  // namespace ceso
