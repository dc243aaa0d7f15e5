// Resource pools (ceso-host pool): pools from PropertyCollector objects, the
// record, paths and names from the user, option values, and the spec sent.
#include "vm/pool.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/error.hpp"
#include "base/xml.hpp"

namespace {

using ceso::vim::ObjectContent;

ObjectContent obj(const std::string& type, const std::string& id, const std::string& props) {
  auto o = ceso::vim::object_from_xml(ceso::xml::parse("<objects><obj type=\"" + type + "\">" + id +
                                                       "</obj>" + props + "</objects>"));
  EXPECT_TRUE(o.has_value());
  return *o;
}
std::string prop(const std::string& name, const std::string& val) {
  return "<propSet><name>" + name + "</name><val>" + val + "</val></propSet>";
}
std::string ref(const std::string& name, const std::string& type, const std::string& id) {
  return "<propSet><name>" + name + "</name><val type=\"" + type + "\">" + id + "</val></propSet>";
}
std::string alloc(const std::string& res, const std::string& limit, const std::string& level,
                  const std::string& shares) {
  return "<reservation>" + res +
         "</reservation><expandableReservation>true</expandableReservation>"
         "<limit>" +
         limit + "</limit><shares><shares>" + shares + "</shares><level>" + level +
         "</level></shares>";
}
ObjectContent pool(const std::string& id, const std::string& name, const std::string& parent_type,
                   const std::string& parent, const std::string& owner_type,
                   const std::string& owner, const std::string& extra = "") {
  return obj("ResourcePool", id,
             prop("name", name) + ref("parent", parent_type, parent) +
                 ref("owner", owner_type, owner) +
                 prop("config", "<cpuAllocation>" + alloc("100", "-1", "normal", "4000") +
                                    "</cpuAllocation><memoryAllocation>" +
                                    alloc("512", "2048", "custom", "77") + "</memoryAllocation>") +
                 prop("runtime",
                      "<memory><reservationUsed>0</reservationUsed><unreservedForPool>2048"
                      "</unreservedForPool><overallUsage>10</overallUsage><maxUsage>2048"
                      "</maxUsage></memory><cpu><reservationUsed>5</reservationUsed></cpu>") +
                 extra);
}

std::vector<ObjectContent> inventory() {
  return {
      obj("ComputeResource", "ha-compute-res",
          prop("name", "esx1") + prop("host",
                                      "<ManagedObjectReference type=\"HostSystem\">ha-host"
                                      "</ManagedObjectReference>")),
      obj("HostSystem", "ha-host", prop("name", "esx1.lab")),
      obj("ClusterComputeResource", "domain-c1", prop("name", "C1")),
      pool("ha-root-pool", "Resources", "ComputeResource", "ha-compute-res", "ComputeResource",
           "ha-compute-res",
           prop("resourcePool",
                "<ManagedObjectReference type=\"ResourcePool\">pool-1"
                "</ManagedObjectReference>")),
      pool("pool-1", "prod", "ResourcePool", "ha-root-pool", "ComputeResource", "ha-compute-res",
           prop("vm",
                "<ManagedObjectReference type=\"VirtualMachine\">vm-1</ManagedObjectReference>"
                "<ManagedObjectReference type=\"VirtualMachine\">vm-2</ManagedObjectReference>")),
      pool("pool-2", "web%2fapi", "ResourcePool", "pool-1", "ComputeResource", "ha-compute-res"),
      pool("resgroup-1", "Resources", "ClusterComputeResource", "domain-c1",
           "ClusterComputeResource", "domain-c1"),
      pool("resgroup-2", "prod", "ResourcePool", "resgroup-1", "ClusterComputeResource",
           "domain-c1"),
      // A loop and an orphan are left out.
      pool("pool-x", "x", "ResourcePool", "pool-y", "ComputeResource", "ha-compute-res"),
      pool("pool-y", "y", "ResourcePool", "pool-x", "ComputeResource", "ha-compute-res"),
      pool("pool-z", "z", "ResourcePool", "pool-gone", "ComputeResource", "ha-compute-res"),
  };
}

TEST(Pools, PathsOwnersAndSorting) {
  auto objs = inventory();
  auto pools = ceso::pools_from(objs);
  ASSERT_EQ(pools.size(), 5u);
  EXPECT_EQ(pools[0].owner_name, "C1");
  EXPECT_EQ(pools[0].path, "Resources");
  EXPECT_TRUE(pools[0].root);
  EXPECT_TRUE(pools[0].cluster);
  EXPECT_EQ(pools[1].path, "Resources/prod");
  EXPECT_EQ(pools[2].path, "Resources");
  EXPECT_EQ(pools[2].host, "esx1.lab");
  EXPECT_EQ(pools[2].children, std::vector<std::string>{"prod"});
  EXPECT_EQ(pools[3].path, "Resources/prod");
  EXPECT_EQ(pools[3].vms.size(), 2u);
  EXPECT_EQ(pools[4].path, "Resources/prod/web%2fapi");  // escaped "/" keeps the path whole
}

TEST(Pools, Record) {
  auto objs = inventory();
  auto pools = ceso::pools_from(objs);
  auto r = ceso::pool_record(pools[3], "esx1:443");
  EXPECT_EQ(r["type"], "pool");
  EXPECT_EQ(r["path"], "Resources/prod");
  EXPECT_EQ(r["parent"], "Resources");
  EXPECT_EQ(r["cluster"], nullptr);
  EXPECT_EQ(r["host"], "esx1.lab");
  EXPECT_EQ(r["vms"], 2);
  EXPECT_EQ(r["cpu_mhz"]["reservation"], 100);
  EXPECT_EQ(r["cpu_mhz"]["limit"], nullptr);  // -1: unlimited
  EXPECT_EQ(r["cpu_mhz"]["shares_level"], "normal");
  EXPECT_EQ(r["cpu_mhz"]["shares"], 4000);
  EXPECT_EQ(r["cpu_mhz"]["reservation_used"], 5);
  EXPECT_EQ(r["cpu_mhz"]["usage"], nullptr);  // not in the answer
  EXPECT_EQ(r["memory_mib"]["limit"], 2048);
  EXPECT_EQ(r["memory_mib"]["shares_level"], "custom");
  EXPECT_EQ(r["memory_mib"]["usage"], 10);
  auto root = ceso::pool_record(pools[2], "esx1:443");
  EXPECT_EQ(root["parent"], nullptr);
  EXPECT_EQ(root["root"], true);
}

TEST(Pools, MalformedAllocationIsEmpty) {
  std::vector<ObjectContent> objs = {
      obj("ComputeResource", "cr", prop("name", "h")),
      obj("ResourcePool", "p",
          prop("name", "Resources") + ref("parent", "ComputeResource", "cr") +
              ref("owner", "ComputeResource", "cr") +
              prop("config",
                   "<cpuAllocation><reservation>x</reservation>"
                   "</cpuAllocation>"))};
  auto pools = ceso::pools_from(objs);
  ASSERT_EQ(pools.size(), 1u);
  EXPECT_FALSE(pools[0].cpu.has_value());
  auto r = ceso::pool_record(pools[0], "e");
  EXPECT_FALSE(r["cpu_mhz"].contains("reservation"));
  EXPECT_EQ(r["cpu_mhz"]["usage"], nullptr);
}

TEST(Pools, FindByPath) {
  auto objs = inventory();
  auto pools = ceso::pools_from(objs);
  EXPECT_EQ(ceso::find_pool(pools, {"Resources", "prod"}, "esx1")->ref.value, "pool-1");
  EXPECT_EQ(ceso::find_pool(pools, {"prod"}, "C1")->ref.value, "resgroup-2");
  EXPECT_EQ(ceso::find_pool(pools, {"Resources"}, "esx1")->ref.value, "ha-root-pool");
  EXPECT_EQ(ceso::find_pool(pools, {"nope"}, "esx1"), nullptr);
  EXPECT_EQ(ceso::find_pool(pools, {"prod"}, "other"), nullptr);
  // In two compute resources: ambiguous without an owner.
  EXPECT_THROW(ceso::find_pool(pools, {"prod"}, ""), ceso::Error);
}

void expect_refused(std::string_view path, const std::string& words) {
  try {
    ceso::split_pool_path(path, "argument 1", ceso::Exit::usage);
    ADD_FAILURE() << "accepted " << path;
  } catch (const ceso::Error& e) {
    EXPECT_EQ(e.code(), ceso::Exit::usage);
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("argument 1"), std::string::npos) << e.what();
  }
}

TEST(Pools, HostilePaths) {
  EXPECT_EQ(ceso::split_pool_path("Resources/a b/c", "x", ceso::Exit::usage),
            (std::vector<std::string>{"Resources", "a b", "c"}));
  expect_refused("", "empty pool path");
  expect_refused("Resources//a", "empty part");
  expect_refused("/a", "empty part");
  expect_refused("a/", "empty part");
  expect_refused("Resources/../x", "contains '..'");
  expect_refused("./x", "contains '.'");
  expect_refused("a\nb", "pool name");
  expect_refused("a%2fb", "contains");
  expect_refused("a\\b", "contains");
  expect_refused(std::string(81, 'a'), "longer than 80");
  expect_refused(std::string(20000, 'a'), "too long");
  std::string deep;
  for (int i = 0; i < 40; ++i) deep += (i ? "/" : "") + std::string("p");
  expect_refused(deep, "32 levels");
  // 80 characters of two bytes each are fine.
  std::string wide;
  for (int i = 0; i < 80; ++i) wide += "\xc3\xa9";
  EXPECT_NO_THROW(ceso::check_pool_name(wide, "x", ceso::Exit::usage));
}

TEST(Pools, OptionValues) {
  EXPECT_EQ(ceso::parse_limit("cpu-limit", "unlimited", false), -1);
  EXPECT_EQ(ceso::parse_limit("cpu-limit", "2000", false), 2000);
  EXPECT_EQ(ceso::parse_limit("mem-limit", "2G", true), 2048);
  EXPECT_EQ(ceso::parse_limit("mem-limit", "0", true), 0);
  EXPECT_THROW(ceso::parse_limit("cpu-limit", "-5", false), ceso::Error);
  EXPECT_THROW(ceso::parse_limit("cpu-limit", "", false), ceso::Error);
  EXPECT_EQ(ceso::parse_reservation("mem-reservation", "512", true), 512);
  EXPECT_EQ(ceso::parse_reservation("mem-reservation", "0", true), 0);
  EXPECT_THROW(ceso::parse_reservation("cpu-reservation", "1.5", false), ceso::Error);
  ceso::Allocation a;
  ceso::parse_shares("cpu-shares", "high", a);
  EXPECT_EQ(a.level, "high");
  ceso::parse_shares("cpu-shares", "1234", a);
  EXPECT_EQ(a.level, "custom");
  EXPECT_EQ(a.shares, 1234);
  EXPECT_THROW(ceso::parse_shares("cpu-shares", "medium", a), ceso::Error);
  EXPECT_TRUE(ceso::parse_yes_no("cpu-expandable", "yes"));
  EXPECT_FALSE(ceso::parse_yes_no("cpu-expandable", "no"));
  EXPECT_THROW(ceso::parse_yes_no("cpu-expandable", "maybe"), ceso::Error);
  ceso::Allocation bad;
  bad.reservation = 100;
  bad.limit = 50;
  EXPECT_THROW(ceso::check_allocation(bad, "--cpu-limit"), ceso::Error);
  bad.limit = -1;
  EXPECT_NO_THROW(ceso::check_allocation(bad, "--cpu-limit"));
}

TEST(Pools, SpecHasAllFourFieldsInOrder) {
  ceso::Allocation cpu = ceso::default_allocation();
  ceso::Allocation mem;
  mem.reservation = 1024;
  mem.expandable = false;
  mem.limit = 4096;
  mem.level = "custom";
  mem.shares = 500;
  EXPECT_EQ(ceso::resource_config_spec_xml(cpu, mem),
            "<spec><cpuAllocation><reservation>0</reservation><expandableReservation>true"
            "</expandableReservation><limit>-1</limit><shares><shares>0</shares><level>normal"
            "</level></shares></cpuAllocation><memoryAllocation><reservation>1024</reservation>"
            "<expandableReservation>false</expandableReservation><limit>4096</limit><shares>"
            "<shares>500</shares><level>custom</level></shares></memoryAllocation></spec>");
}

}  // namespace
