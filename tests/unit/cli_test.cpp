#include "ceso/cli.hpp"

#include <gtest/gtest.h>

#include "ceso/error.hpp"

namespace {

const ceso::ToolSpec kSpec{
    "ceso-test",
    "a tool for tests",
    "[OPTION]... [VM]...",
    {
        {"name", 0, "GLOB", "only VMs whose name matches"},
        {"tag", 't', "TAG", "only VMs with this tag", ceso::kRepeatable},
        {"power", 0, "STATE", "only VMs in this power state", 0, ceso::Complete::choices,
         "on off suspended"},
        {"force", 'f', "", "do it anyway"},
    },
    ceso::kConnection | ceso::kOutput | ceso::kDryRun,
    {},
};

ceso::Args parse(std::vector<const char*> argv) {
  return ceso::parse_args(kSpec, static_cast<int>(argv.size()), argv.data());
}

TEST(Cli, LongShortAndInlineValues) {
  auto a = parse({"--name", "web*", "-t", "web", "--tag=db", "-fn", "-oname,power", "vm1"});
  EXPECT_EQ(a.get("name"), "web*");
  EXPECT_EQ(a.all("tag"), (std::vector<std::string>{"web", "db"}));
  EXPECT_TRUE(a.has("force"));
  EXPECT_TRUE(a.has("dry-run"));
  EXPECT_EQ(a.get("output"), "name,power");
  EXPECT_EQ(a.operands, (std::vector<std::string>{"vm1"}));
}

TEST(Cli, DoubleDashEndsOptions) {
  auto a = parse({"--", "-weird name"});
  EXPECT_EQ(a.operands, (std::vector<std::string>{"-weird name"}));
}

TEST(Cli, UnknownOptionIsUsageError) {
  try {
    parse({"--nope"});
    FAIL() << "no error";
  } catch (const ceso::Error& e) {
    EXPECT_EQ(e.code(), ceso::Exit::usage);
    EXPECT_NE(std::string(e.what()).find("--nope"), std::string::npos);
  }
}

TEST(Cli, ChoicesAreValidated) {
  EXPECT_EQ(parse({"--power", "off"}).get("power"), "off");
  EXPECT_THROW(parse({"--power", "sideways"}), ceso::Error);
}

TEST(Cli, MissingValueNamesOption) {
  try {
    parse({"--name"});
    FAIL() << "no error";
  } catch (const ceso::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--name"), std::string::npos);
  }
}

TEST(Cli, FlagWithValueRejected) { EXPECT_THROW(parse({"--force=yes"}), ceso::Error); }

TEST(Cli, GetIntChecksRange) {
  auto a = parse({"--name", "12"});
  EXPECT_EQ(a.get_int("name", 0, 0, 100), 12);
  auto b = parse({"--name", "x"});
  EXPECT_THROW(b.get_int("name", 0, 0, 100), ceso::Error);
}

TEST(Cli, HelpListsEveryVisibleOption) {
  std::string help = ceso::help_text(kSpec);
  for (const auto& o : ceso::effective_options(kSpec)) {
    if (o.flags & ceso::kHidden) {
      EXPECT_EQ(help.find("--" + std::string(o.name)), std::string::npos);
    } else {
      EXPECT_NE(help.find("--" + std::string(o.name)), std::string::npos) << o.name;
    }
  }
}

TEST(Cli, VerbIsTakenFromFirstOperand) {
  ceso::ToolSpec spec = kSpec;
  spec.verbs = {{"create", "make one"}, {"ls", "list"}};
  const char* argv[] = {"ls", "vm1"};
  auto a = ceso::parse_args(spec, 2, argv);
  EXPECT_EQ(a.verb, "ls");
  EXPECT_EQ(a.operands, (std::vector<std::string>{"vm1"}));
}

}  // namespace
