#include "cli/options.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/error.hpp"
#include "base/numbers.hpp"

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

// A tool with per-verb tables: "backup" (the default) takes --level and the
// connection group, "prune" takes --keep and --dry-run, "restore" takes
// --as, -N/--name and its own --timeout; --target is shared by all.
ceso::ToolSpec verb_spec(std::string_view default_verb = "backup") {
  ceso::ToolSpec spec{
      "ceso-v", "verbs", "[VERB] [OPTION]...", {{"target", 0, "URL", "where"}}, ceso::kOutput};
  spec.verbs = {
      {"backup",
       "back up",
       {{"level", 0, "N", "level"}, {"timeout", 0, "S", "shutdown wait"}},
       ceso::kConnection,
       "[OPTION]... [VM]..."},
      {"prune", "prune", {{"keep", 0, "N", "keep"}}, ceso::kDryRun, "[OPTION]..."},
      {"restore",
       "restore",
       {{"as", 0, "NAME", "new name"},
        {"name", 'N', "NAME", "a name"},
        {"timeout", 0, "S", "power-on wait"}},
       ceso::kConnection | ceso::kDryRun,
       "[OPTION]... ID"},
  };
  spec.per_verb_options = true;
  spec.default_verb = default_verb;
  return spec;
}

ceso::Args parse_v(const ceso::ToolSpec& spec, std::vector<const char*> argv) {
  return ceso::parse_args(spec, static_cast<int>(argv.size()), argv.data());
}

std::string usage_message(const ceso::ToolSpec& spec, std::vector<const char*> argv) {
  try {
    parse_v(spec, argv);
  } catch (const ceso::Error& e) {
    EXPECT_EQ(e.code(), ceso::Exit::usage);
    return e.what();
  }
  ADD_FAILURE() << "no usage error";
  return {};
}

TEST(CliVerbs, EachVerbParsesItsOwnAndSharedOptions) {
  auto spec = verb_spec();
  auto a = parse_v(spec, {"prune", "--keep", "3", "--target", "file:///t", "-n", "--json"});
  EXPECT_EQ(a.verb, "prune");
  EXPECT_EQ(a.get("keep"), "3");
  EXPECT_TRUE(a.has("dry-run"));
  // Options before the verb count for the verb: `--as ls` is a value.
  auto r = parse_v(spec, {"--as", "prune", "restore", "ID"});
  EXPECT_EQ(r.verb, "restore");
  EXPECT_EQ(r.get("as"), "prune");
  EXPECT_EQ(r.operands, (std::vector<std::string>{"ID"}));
  auto s = parse_v(spec, {"-Nprune", "restore", "-N", "x", "ID"});
  EXPECT_EQ(s.verb, "restore");
  // No verb: the default verb's table, and args.verb stays empty.
  auto d = parse_v(spec, {"--level", "5", "vm1"});
  EXPECT_EQ(d.verb, "");
  EXPECT_EQ(d.get("level"), "5");
  EXPECT_EQ(d.operands, (std::vector<std::string>{"vm1"}));
}

TEST(CliVerbs, AnotherVerbsOptionIsAUsageErrorNamingOptionAndVerb) {
  auto spec = verb_spec();
  EXPECT_EQ(usage_message(spec, {"prune", "--as", "x"}),
            "option '--as' is not an option of 'ceso-v prune' (it is an option of: restore)");
  // Before the verb, inline value, bundled short, default verb.
  EXPECT_NE(usage_message(spec, {"--keep=3", "restore", "ID"})
                .find("'--keep' is not an option of 'ceso-v restore'"),
            std::string::npos);
  EXPECT_NE(
      usage_message(spec, {"prune", "-nN", "x"}).find("'-N' is not an option of 'ceso-v prune'"),
      std::string::npos);
  EXPECT_NE(usage_message(spec, {"--keep", "3", "vm1"}).find("not an option of 'ceso-v backup'"),
            std::string::npos);
  // A common group of one verb: --url is backup's and restore's, not prune's.
  EXPECT_EQ(
      usage_message(spec, {"prune", "--url", "https://192.0.2.1"}),
      "option '--url' is not an option of 'ceso-v prune' (it is an option of: backup, restore)");
  EXPECT_EQ(usage_message(spec, {"prune", "--dry-run", "--bogus"}),
            "unrecognized option '--bogus'");
}

TEST(CliVerbs, NoVerbWithoutDefaultParsesEveryVerbsOptions) {
  auto spec = verb_spec("");
  auto a = parse_v(spec, {"--keep", "3", "--as", "x"});
  EXPECT_EQ(a.verb, "");
  EXPECT_TRUE(a.has("keep"));
  EXPECT_TRUE(a.has("as"));
}

TEST(CliVerbs, HelpOfAVerbListsOnlyItsOptions) {
  auto spec = verb_spec();
  std::string prune = ceso::help_text(spec, "prune");
  EXPECT_NE(prune.find("Usage: ceso-v prune [OPTION]..."), std::string::npos);
  EXPECT_NE(prune.find("--keep N"), std::string::npos);
  EXPECT_NE(prune.find("--target"), std::string::npos);
  EXPECT_NE(prune.find("--dry-run"), std::string::npos);
  for (const char* other : {"--level", "--as", "--url", "--timeout", "Commands:"})
    EXPECT_EQ(prune.find(other), std::string::npos) << other;
  // Each verb's --timeout says its own meaning.
  EXPECT_NE(ceso::help_text(spec, "restore").find("power-on wait"), std::string::npos);
  EXPECT_EQ(ceso::help_text(spec, "restore").find("shutdown wait"), std::string::npos);
  // The overview: the verbs and the default verb's options only.
  std::string top = ceso::help_text(spec);
  EXPECT_NE(top.find("Commands:"), std::string::npos);
  EXPECT_NE(top.find("--level"), std::string::npos);
  EXPECT_EQ(top.find("--keep"), std::string::npos);
  EXPECT_EQ(top.find("--as"), std::string::npos);
}

TEST(CliVerbs, DumpCarriesEachVerbsTable) {
  auto j = nlohmann::json::parse(ceso::dump_options(verb_spec()));
  EXPECT_EQ(j["default_verb"], "backup");
  ASSERT_EQ(j["verbs"].size(), 3u);
  std::vector<std::string> prune;
  for (const auto& o : j["verbs"][1]["options"]) prune.push_back(o["name"]);
  // --promotion comes with --dry-run: every verb that changes things takes it.
  EXPECT_EQ(prune, (std::vector<std::string>{"keep", "target", "json", "output", "dry-run",
                                             "promotion", "quiet", "help", "version"}));
  EXPECT_EQ(j["verbs"][2]["usage"], "[OPTION]... ID");
}

TEST(CliVerbs, DisagreeingTablesAreRefused) {
  auto spec = verb_spec();
  spec.verbs[1].options.push_back({"as", 0, "", "a flag here, a value in restore"});
  EXPECT_THROW(ceso::all_options(spec), ceso::Error);
  auto spec2 = verb_spec();
  spec2.verbs[1].options.push_back({"keep-all", 'N', "", "-N is restore's --name"});
  EXPECT_THROW(parse_v(spec2, {"prune"}), ceso::Error);
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
