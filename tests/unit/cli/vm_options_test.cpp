#include "cli/vm_options.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "base/error.hpp"

namespace {

constexpr ceso::VmShapeDefaults kMkvm{.copies_disks = true, .keeps_tags = false, .powers_on = true};
constexpr ceso::VmShapeDefaults kRestore{
    .copies_disks = false, .keeps_tags = true, .powers_on = false};

ceso::ToolSpec spec_of(ceso::VmShapeDefaults d) {
  return {"ceso-test", "a tool for tests", "[OPTION]...", ceso::vm_shape_options(d), 0, {}};
}

ceso::VmShape shape(ceso::VmShapeDefaults d, std::vector<const char*> argv) {
  auto spec = spec_of(d);
  auto args = ceso::parse_args(spec, static_cast<int>(argv.size()), argv.data());
  return ceso::vm_shape(args, d);
}

std::vector<std::string> names(const std::vector<ceso::Option>& rows) {
  std::vector<std::string> out;
  for (const auto& o : rows) out.emplace_back(o.name);
  return out;
}

const ceso::Option* row(const std::vector<ceso::Option>& rows, std::string_view name) {
  auto it = std::find_if(rows.begin(), rows.end(), [&](const auto& o) { return o.name == name; });
  return it == rows.end() ? nullptr : &*it;
}

ceso::Exit usage_code(ceso::VmShapeDefaults d, std::vector<const char*> argv) {
  try {
    shape(d, std::move(argv));
  } catch (const ceso::Error& e) {
    return e.code();
  }
  return ceso::Exit::ok;
}

TEST(VmOptions, RowsDifferOnlyWhereTheToolsDo) {
  EXPECT_EQ(names(ceso::vm_shape_options(kMkvm)),
            (std::vector<std::string>{"datastore", "thick", "cpus", "memory", "disk-grow",
                                      "network", "tag", "annotation", "no-power-on", "wait",
                                      "timeout", "keep-on-failure"}));
  EXPECT_EQ(
      names(ceso::vm_shape_options(kRestore)),
      (std::vector<std::string>{"datastore", "cpus", "memory", "disk-grow", "network", "tag",
                                "annotation", "power-on", "wait", "timeout", "keep-on-failure"}));
  // The same row is the same text in every variant, but for --tag's default.
  auto a = ceso::vm_shape_options(kMkvm);
  auto b = ceso::vm_shape_options(kRestore);
  for (const auto& o : b) {
    const ceso::Option* other = row(a, o.name);
    if (!other) continue;
    EXPECT_EQ(o.short_name, other->short_name) << o.name;
    EXPECT_EQ(o.arg, other->arg) << o.name;
    if (o.name != "tag") EXPECT_EQ(o.help, other->help) << o.name;
  }
  EXPECT_NE(row(a, "tag")->help, row(b, "tag")->help);
  EXPECT_NE(row(b, "tag")->help.find("source VM's tags"), std::string_view::npos);
}

TEST(VmOptions, DefaultsLeaveEverythingToTheSource) {
  auto s = shape(kMkvm, {});
  EXPECT_TRUE(s.power_on);
  EXPECT_FALSE(s.wait_ip);
  EXPECT_EQ(s.timeout, std::chrono::seconds(600));
  EXPECT_EQ(s.vm.datastore, "");
  EXPECT_FALSE(s.vm.thick);
  EXPECT_FALSE(s.vm.cpus);
  EXPECT_FALSE(s.vm.memory_mib);
  EXPECT_FALSE(s.vm.disk_grow);
  EXPECT_FALSE(s.vm.tags);
  EXPECT_FALSE(s.vm.annotation);
  EXPECT_FALSE(s.vm.keep_on_failure);
  EXPECT_FALSE(shape(kRestore, {}).power_on);  // restore: off unless --power-on
}

TEST(VmOptions, ValuesAreRead) {
  auto s = shape(kMkvm, {"--datastore",  "ds2",         "--thick",
                         "-c",           "4",           "-m",
                         "2G",           "--disk-grow", "+10",
                         "--network",    "VM Network",  "-t",
                         "web",          "--tag",       "db",
                         "--annotation", "a & b",       "--no-power-on",
                         "--timeout",    "30",          "--keep-on-failure"});
  EXPECT_EQ(s.vm.datastore, "ds2");
  EXPECT_TRUE(s.vm.thick);
  EXPECT_EQ(s.vm.cpus, 4);
  EXPECT_EQ(s.vm.memory_mib, 2048);
  ASSERT_TRUE(s.vm.disk_grow);
  EXPECT_EQ(s.vm.network, "VM Network");
  EXPECT_EQ(*s.vm.tags, (std::vector<std::string>{"web", "db"}));
  EXPECT_EQ(s.vm.annotation, "a & b");
  EXPECT_FALSE(s.power_on);
  EXPECT_EQ(s.timeout, std::chrono::seconds(30));
  EXPECT_TRUE(s.vm.keep_on_failure);
  auto r = shape(kRestore, {"--power-on", "-w", "ip"});
  EXPECT_TRUE(r.power_on);
  EXPECT_TRUE(r.wait_ip);
}

TEST(VmOptions, UsageErrorsNameTheOption) {
  EXPECT_EQ(usage_code(kMkvm, {"--no-power-on", "--wait", "ip"}), ceso::Exit::usage);
  EXPECT_EQ(usage_code(kRestore, {"--wait", "ip"}), ceso::Exit::usage);
  EXPECT_EQ(usage_code(kMkvm, {"--cpus", "0"}), ceso::Exit::usage);
  EXPECT_EQ(usage_code(kMkvm, {"--cpus", "769"}), ceso::Exit::usage);
  EXPECT_EQ(usage_code(kMkvm, {"--memory", "3"}), ceso::Exit::usage);
  EXPECT_EQ(usage_code(kMkvm, {"--timeout", "0"}), ceso::Exit::usage);
  EXPECT_EQ(usage_code(kMkvm, {"--wait", "mac"}), ceso::Exit::usage);
  // Rows a variant does not have are not options of it.
  EXPECT_EQ(usage_code(kRestore, {"--thick"}), ceso::Exit::usage);
  EXPECT_EQ(usage_code(kRestore, {"--no-power-on"}), ceso::Exit::usage);
  EXPECT_EQ(usage_code(kMkvm, {"--power-on"}), ceso::Exit::usage);
  try {
    shape(kRestore, {"--wait", "ip"});
  } catch (const ceso::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--power-on"), std::string::npos) << e.what();
  }
}

}  // namespace
