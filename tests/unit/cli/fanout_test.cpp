// -H given several times, and -H all (cli/fanout): which hosts a fan-out
// covers, and what it refuses before any host is contacted.
#include "cli/fanout.hpp"

#include <gtest/gtest.h>

namespace {

using Names = std::vector<std::string>;

int config_reads = 0;
Names three() {
  ++config_reads;
  return {"a", "b", "c"};
}
Names none() { return {}; }

std::string refusal(const Names& given, Names (*config)() = three) {
  try {
    ceso::fan_out_names(given, config);
  } catch (const ceso::Error& e) {
    EXPECT_EQ(e.code(), ceso::Exit::usage) << e.what();
    return e.what();
  }
  return "";
}

TEST(FanOutNames, NoneOrOneNameIsTheSingleHostPath) {
  config_reads = 0;
  EXPECT_FALSE(ceso::fan_out_names({}, three).has_value());
  EXPECT_FALSE(ceso::fan_out_names({"b"}, three).has_value());
  EXPECT_EQ(config_reads, 0);  // the config file is not read for it
}

TEST(FanOutNames, SeveralNamesKeepTheirOrder) {
  EXPECT_EQ(*ceso::fan_out_names({"c", "a"}, three), (Names{"c", "a"}));
}

TEST(FanOutNames, AllIsEveryConfigHostInFileOrder) {
  EXPECT_EQ(*ceso::fan_out_names({"all"}, three), (Names{"a", "b", "c"}));
}

TEST(FanOutNames, Refusals) {
  EXPECT_NE(refusal({"a", "b", "a"}).find("-H 'a' is given twice"), std::string::npos);
  EXPECT_NE(refusal({"all", "a"}).find("give no other -H"), std::string::npos);
  EXPECT_NE(refusal({"all"}, none).find("names no hosts"), std::string::npos);
  EXPECT_NE(refusal({"a", ""}).find("empty host name"), std::string::npos);
  EXPECT_NE(refusal({""}).find("empty host name"), std::string::npos);
}

}  // namespace
