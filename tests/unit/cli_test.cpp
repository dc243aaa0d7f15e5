#include "ceso/cli.hpp"

#include <gtest/gtest.h>

#include "ceso/error.hpp"
#include "ceso/numbers.hpp"

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

// ----------------------------------------------------------------- numbers

namespace numbers {

// The usage error a parse throws, or "" when it returned.
template <typename F>
std::string refusal(F&& parse) {
  try {
    parse();
  } catch (const ceso::Error& e) {
    EXPECT_EQ(e.code(), ceso::Exit::usage) << e.what();
    return e.what();
  }
  return "";
}

// Text no number parser takes, whatever the option.
const char* const kNotNumbers[] = {"",     " 1",       "1 ",    "\t2",   "+1", "+0",  "-0",  "0x10",
                                   "0X1F", "1e3",      "1E3",   "1.5",   ".5", "nan", "NaN", "inf",
                                   "-inf", "Infinity", "1_000", "1,000", "½",  "١",   "1\n", "--1"};

TEST(Numbers, CountTakesPlainDigitsOnly) {
  EXPECT_EQ(ceso::parse_count("jobs", "8", 1, 64), 8);
  EXPECT_EQ(ceso::parse_count("jobs", "064", 1, 64), 64);
  EXPECT_EQ(ceso::parse_count("keep-last", "-1", -1, 100), -1);
  for (const char* bad : kNotNumbers) {
    std::string e = refusal([&] { ceso::parse_count("cpus", bad, 1, 768); });
    EXPECT_NE(e.find("--cpus: "), std::string::npos) << "accepted " << ceso::quote(bad);
    EXPECT_NE(e.find("1 to 768"), std::string::npos) << e;
  }
}

TEST(Numbers, CountRangeAndOverflow) {
  for (const char* bad : {"0", "769", "99999999999999999999999", "18446744073709551617",
                          "9223372036854775808", "-1", "-5"}) {
    std::string e = refusal([&] { ceso::parse_count("cpus", bad, 1, 768); });
    EXPECT_NE(e.find(ceso::quote(bad)), std::string::npos) << "accepted " << bad << ": " << e;
  }
  // '-' only where the minimum is negative, and never "-0" or "-2" below it.
  EXPECT_NE(refusal([] { ceso::parse_count("keep-last", "-0", -1, 100); }), "");
  EXPECT_NE(refusal([] { ceso::parse_count("keep-last", "-2", -1, 100); }), "");
}

TEST(Numbers, GetIntUsesTheStrictGrammar) {
  for (const char* bad : {" 12", "+12", "12 ", "0x0c", "-0", "1e1"}) {
    auto a = parse({"--name", bad});
    EXPECT_THROW(a.get_int("name", 0, 0, 100), ceso::Error) << bad;
  }
}

TEST(Numbers, SizesWithUnits) {
  using ceso::kGiB;
  using ceso::kMiB;
  EXPECT_EQ(ceso::parse_size("memory", "2048", kMiB, 4 * kMiB, ceso::kMaxVmMemoryBytes), 2 * kGiB);
  EXPECT_EQ(ceso::parse_size("memory", "2G", kMiB, 4 * kMiB, ceso::kMaxVmMemoryBytes), 2 * kGiB);
  EXPECT_EQ(ceso::parse_size("memory", "2gib", kMiB, 4 * kMiB, ceso::kMaxVmMemoryBytes), 2 * kGiB);
  EXPECT_EQ(ceso::parse_size("memory", "24T", kMiB, 4 * kMiB, ceso::kMaxVmMemoryBytes),
            ceso::kMaxVmMemoryBytes);
  EXPECT_EQ(ceso::parse_size("disk-grow", "62TB", kGiB, kMiB, ceso::kMaxDiskBytes),
            ceso::kMaxDiskBytes);
  EXPECT_EQ(ceso::parse_size("disk-grow", "1024K", kGiB, kMiB, ceso::kMaxDiskBytes), kMiB);
}

TEST(Numbers, SizesRefused) {
  auto memory = [](const char* text) {
    return refusal([&] {
      ceso::parse_size("memory", text, ceso::kMiB, 4 * ceso::kMiB, ceso::kMaxVmMemoryBytes);
    });
  };
  for (const char* bad : kNotNumbers) {
    std::string e = memory(bad);
    EXPECT_NE(e.find("--memory: "), std::string::npos) << "accepted " << ceso::quote(bad);
  }
  for (const char* bad : {"G", "2X", "2GG", "2 G", "2Gi", "2Bytes", "2g/s", "-4G"})
    EXPECT_NE(memory(bad), "") << "accepted " << bad;
  // Past the host's maximum, including values whose product wraps around.
  for (const char* bad : {"25T", "24577G", "99999999999999G", "16777216T", "18014398509481984K",
                          "99999999999999999999999999", "25165825M"}) {
    std::string e = memory(bad);
    EXPECT_NE(e.find("maximum of 24 TiB"), std::string::npos) << bad << ": " << e;
  }
  EXPECT_NE(memory("0").find("is zero"), std::string::npos);
  EXPECT_NE(memory("0G").find("is zero"), std::string::npos);
  EXPECT_NE(memory("3").find("multiple of 4 MiB"), std::string::npos);
  EXPECT_NE(memory("1K").find("multiple of 4 MiB"), std::string::npos);
}

TEST(Numbers, RatesRefuseNanInfFractionsAndOverflow) {
  EXPECT_EQ(ceso::parse_rate("limit-rate", "500K"), 500 * 1024);
  EXPECT_EQ(ceso::parse_rate("limit-rate", "20m"), 20 * ceso::kMiB);
  EXPECT_EQ(ceso::parse_rate("limit-rate", "1000"), 1000);
  for (const char* bad : kNotNumbers) {
    std::string e = refusal([&] { ceso::parse_rate("limit-rate", bad); });
    EXPECT_NE(e.find("--limit-rate: "), std::string::npos) << "accepted " << ceso::quote(bad);
  }
  for (const char* bad : {"0", "0K", "1T", "1KiB", "2X", "1025G", "99999999999999999999G", "1.5M"})
    EXPECT_NE(refusal([&] { ceso::parse_rate("limit-rate", bad); }), "") << "accepted " << bad;
}

}  // namespace numbers
