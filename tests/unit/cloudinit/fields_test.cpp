// The one cloud-init field table and everything derived from it: the option
// rows of ceso-cloudinit and of the copy tools' flag group, the spec record
// fields SpecReader accepts, the NIC lists and the re-IP classification.
#include "cloudinit/fields.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "base/error.hpp"
#include "cli/cloudinit_options.hpp"
#include "cloudinit/cloudinit.hpp"

namespace {

using ceso::CloudInitField;
using ceso::FieldKind;
using ceso::NicScope;

std::map<std::string, const ceso::Option*> by_name(const std::vector<ceso::Option>& options) {
  std::map<std::string, const ceso::Option*> out;
  for (const auto& o : options) {
    EXPECT_TRUE(out.emplace(std::string(o.name), &o).second) << "two rows for --" << o.name;
  }
  return out;
}

// A value of the field's shape (not necessarily valid).
ceso::ordered_json sample(const CloudInitField& f) {
  if (f.record_only) return ceso::ordered_json::array({ceso::ordered_json::object()});
  if (f.arg.empty()) return true;
  if (f.repeatable) return ceso::ordered_json::array({"x"});
  return "x";
}

TEST(CloudInitFields, EveryFieldHasOneOptionRowAndOneKind) {
  std::set<std::string_view> seen;
  auto tool = by_name(ceso::cloudinit_tool_options());
  for (const auto& f : ceso::cloudinit_fields()) {
    EXPECT_TRUE(seen.insert(f.field).second) << "field listed twice: " << f.field;
    EXPECT_EQ(f.field.find('-'), std::string_view::npos) << f.field;
    std::string option = ceso::field_option_name(f.field);
    if (f.record_only) {
      EXPECT_EQ(tool.count(option), 0u) << f.field;
      EXPECT_FALSE(f.copy_tools) << f.field;
      continue;
    }
    ASSERT_EQ(tool.count(option), 1u) << "no option row for " << f.field;
    const ceso::Option& o = *tool[option];
    EXPECT_EQ(o.arg, f.arg);
    EXPECT_EQ(o.help, f.help);
    EXPECT_FALSE(o.help.empty()) << f.field;
    EXPECT_EQ(o.flags, f.repeatable ? ceso::kRepeatable : 0u);
    EXPECT_TRUE(f.kind == FieldKind::identity || f.kind == FieldKind::network ||
                f.kind == FieldKind::user_data || f.kind == FieldKind::metadata);
    // A NIC field is a network field.
    if (f.nic != NicScope::none) EXPECT_EQ(f.kind, FieldKind::network) << f.field;
    EXPECT_EQ(ceso::find_cloudinit_field(f.field), &f);
  }
  // The tool's options are the fields' rows plus --encoding, nothing else.
  size_t rows = 0;
  for (const auto& f : ceso::cloudinit_fields()) rows += f.record_only ? 0 : 1;
  EXPECT_EQ(tool.size(), rows + 1);
  EXPECT_EQ(tool.count("encoding"), 1u);
  EXPECT_EQ(ceso::find_cloudinit_field("encoding"), nullptr);
  EXPECT_EQ(ceso::find_cloudinit_field("ssh-key"), nullptr);  // record names use '_'
}

TEST(CloudInitFields, CopyToolsFlagGroupIsDerivedFromTheSameRows) {
  auto tool = by_name(ceso::cloudinit_tool_options());
  const auto& group = ceso::cloudinit_flag_options();
  by_name(group);  // no name twice
  size_t copy_fields = 0;
  for (const auto& f : ceso::cloudinit_fields()) copy_fields += f.copy_tools ? 1 : 0;
  ASSERT_EQ(group.size(), copy_fields + 1);
  EXPECT_EQ(group.back().name, "encoding");
  size_t i = 0;
  for (const auto& f : ceso::cloudinit_fields()) {
    if (!f.copy_tools) continue;
    const ceso::Option& o = group[i++];
    const ceso::Option& t = *tool[ceso::field_option_name(f.field)];
    // Same option as ceso-cloudinit's, in the same order; only the help may differ.
    EXPECT_EQ(o.name, t.name);
    EXPECT_EQ(o.arg, t.arg) << o.name;
    EXPECT_EQ(o.flags, t.flags) << o.name;
    EXPECT_EQ(o.complete, t.complete) << o.name;
    EXPECT_EQ(o.choices, t.choices) << o.name;
    EXPECT_EQ(o.help, f.copy_help.empty() ? f.help : f.copy_help) << o.name;
  }
  // The identity the copy tools set themselves is not a flag of theirs.
  for (const char* f : {"instance_id", "name", "nics"})
    EXPECT_FALSE(ceso::find_cloudinit_field(f)->copy_tools) << f;
}

TEST(CloudInitFields, SpecReaderAcceptsExactlyTheTableFields) {
  std::vector<std::string_view> table;
  for (const auto& f : ceso::cloudinit_fields()) table.push_back(f.field);
  EXPECT_EQ(ceso::spec_field_names(), table);
  ceso::SpecReader reader;
  for (const auto& f : ceso::cloudinit_fields()) {
    ceso::ordered_json rec = {{std::string(f.field), sample(f)}};
    try {
      reader.check(rec, ceso::FieldStyle::record);
    } catch (const ceso::Error& e) {  // a bad sample value is fine, an unknown field is not
      EXPECT_EQ(std::string(e.what()).find("unknown field"), std::string::npos) << e.what();
    }
  }
  try {
    reader.check({{"ssh_keys", {"x"}}}, ceso::FieldStyle::record);
    ADD_FAILURE() << "an unknown field was accepted";
  } catch (const ceso::Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown field"), std::string::npos) << e.what();
  }
}

TEST(CloudInitFields, NicFieldListsFollowTheNicScope) {
  std::vector<std::string_view> nic;
  for (const auto& f : ceso::cloudinit_fields())
    if (f.nic != NicScope::none) nic.push_back(f.field);
  EXPECT_EQ(ceso::nic_field_names(), nic);
  EXPECT_EQ(ceso::find_cloudinit_field("dns")->nic, NicScope::shared);
  EXPECT_EQ(ceso::find_cloudinit_field("mac")->nic, NicScope::own);
  EXPECT_EQ(ceso::find_cloudinit_field("network_config")->nic, NicScope::none);
}

TEST(CloudInitFields, ReIpClassificationFollowsTheKind) {
  for (const auto& f : ceso::cloudinit_fields()) {
    ceso::ordered_json one = {{std::string(f.field), sample(f)}};
    EXPECT_EQ(ceso::touches_network(one), f.kind == FieldKind::network) << f.field;
    EXPECT_EQ(ceso::touches_user_data(one),
              f.kind == FieldKind::user_data || f.kind == FieldKind::metadata)
        << f.field;
  }
  // Spot checks of the classification clone and restore rely on.
  EXPECT_EQ(ceso::find_cloudinit_field("hostname")->kind, FieldKind::identity);
  EXPECT_EQ(ceso::find_cloudinit_field("network_config")->kind, FieldKind::network);
  EXPECT_EQ(ceso::find_cloudinit_field("ssh_key")->kind, FieldKind::user_data);
  EXPECT_TRUE(ceso::touches_user_data({{"cleanup", true}}));
  EXPECT_TRUE(ceso::touches_user_data({{"not_a_field", 1}}));
  EXPECT_FALSE(ceso::touches_network({{"not_a_field", 1}}));
  EXPECT_FALSE(ceso::touches_user_data({{"hostname", "a"}, {"fqdn", "a.example"}}));
}

TEST(CloudInitFields, EveryFlagBecomesItsRecordField) {
  ceso::ToolSpec spec{"t", "", "", ceso::cloudinit_tool_options(), 0, {}};
  std::vector<std::string> argv;
  for (const auto& f : ceso::cloudinit_fields()) {
    if (f.record_only) continue;
    argv.push_back("--" + ceso::field_option_name(f.field));
    if (!f.arg.empty()) argv.push_back(f.choices.empty() ? "v1" : "v4");
    if (f.repeatable) {
      argv.push_back("--" + ceso::field_option_name(f.field));
      argv.push_back("v2");
    }
  }
  argv.push_back("--encoding");
  argv.push_back("base64");
  std::vector<const char*> cargv;
  for (const auto& a : argv) cargv.push_back(a.c_str());
  ceso::Args args = ceso::parse_args(spec, static_cast<int>(cargv.size()), cargv.data());
  ceso::ordered_json fields = ceso::cloudinit_flag_fields(args);
  EXPECT_FALSE(fields.contains("encoding"));
  for (const auto& f : ceso::cloudinit_fields()) {
    std::string key(f.field);
    if (f.record_only) {
      EXPECT_FALSE(fields.contains(key));
    } else if (f.arg.empty()) {
      EXPECT_EQ(fields[key], true) << key;
    } else if (f.repeatable) {
      EXPECT_EQ(fields[key], ceso::ordered_json::array({"v1", "v2"})) << key;
    } else {
      EXPECT_EQ(fields[key], f.choices.empty() ? "v1" : "v4") << key;
    }
  }
  // Exactly the fields with an option, in table order.
  size_t rows = 0;
  for (const auto& f : ceso::cloudinit_fields()) rows += f.record_only ? 0 : 1;
  EXPECT_EQ(fields.size(), rows);
}

TEST(CloudInitFields, CloudConfigFieldsCannotGoWithPassedThroughUserData) {
  char path[] = "/tmp/ceso-fields-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const char script[] = "#!/bin/sh\necho hi\n";
  ASSERT_EQ(write(fd, script, sizeof script - 1), static_cast<ssize_t>(sizeof script - 1));
  close(fd);
  size_t checked = 0;
  for (const auto& f : ceso::cloudinit_fields()) {
    ceso::ordered_json rec = {
        {"hostname", "a"}, {"user_data", path}, {std::string(f.field), sample(f)}};
    std::string msg;
    try {
      ceso::SpecReader().check(rec, ceso::FieldStyle::record);
    } catch (const ceso::Error& e) {
      msg = e.what();
    }
    bool refused = msg.find("cannot be combined with field \"" + std::string(f.field) + "\"") !=
                   std::string::npos;
    // Only the cloud-config fields are refused for that reason (a bad sample
    // value may fail earlier, which the first branch tolerates).
    if (f.cloud_config && msg.find("user_data") != std::string::npos) {
      EXPECT_TRUE(refused) << f.field << ": " << msg;
      ++checked;
    }
    if (!f.cloud_config) EXPECT_FALSE(refused) << f.field << ": " << msg;
  }
  unlink(path);
  EXPECT_GE(checked, 5u);  // several fields did reach the user-data check
}

}  // namespace
