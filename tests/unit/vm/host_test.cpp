// host records from PropertyCollector objects (ceso-host ls): fields, the
// cluster, resource pool paths, the licence, and hostile answers.
#include "vm/host.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/xml.hpp"

namespace {

using ceso::ordered_json;
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

ObjectContent host(const std::string& id, const std::string& name, const std::string& parent_type,
                   const std::string& parent, const std::string& maintenance = "false") {
  return obj(
      "HostSystem", id,
      prop("name", name) + ref("parent", parent_type, parent) +
          prop("datastore",
               "<ManagedObjectReference type=\"Datastore\">ds-2</ManagedObjectReference>"
               "<ManagedObjectReference type=\"Datastore\">ds-1</ManagedObjectReference>"
               "<ManagedObjectReference type=\"Datastore\">ds-gone</ManagedObjectReference>") +
          prop("summary.config.product",
               "<name>VMware ESXi</name><fullName>VMware ESXi 8.0.2 build-22380479</"
               "fullName><version>8.0.2</version><build>22380479</build>") +
          prop("summary.hardware",
               "<memorySize>68719476736</memorySize><cpuMhz>2100</cpuMhz>"
               "<numCpuCores>16</numCpuCores>") +
          prop("summary.quickStats",
               "<overallCpuUsage>3150</overallCpuUsage><overallMemoryUsage>20480</"
               "overallMemoryUsage>") +
          prop("runtime.inMaintenanceMode", maintenance) +
          prop("runtime.connectionState", "connected"));
}

std::vector<ObjectContent> datastores() {
  return {
      obj("Datastore", "ds-1",
          prop("name", "nvme") + prop("summary.capacity", "1099511627776") +
              prop("summary.freeSpace", "537139347456")),
      obj("Datastore", "ds-2",
          prop("name", "hdd") + prop("summary.capacity", "x12") + prop("summary.freeSpace", ""))};
}

TEST(HostRecords, StandaloneHostFieldsLicenceAndDatastores) {
  auto objs = datastores();
  objs.push_back(host("ha-host", "esxi1", "ComputeResource", "ha-compute-res"));
  objs.push_back(obj("ComputeResource", "ha-compute-res", prop("name", "esxi1")));
  objs.push_back(obj("LicenseManager", "ha-license-manager",
                     prop("licenses",
                          "<LicenseManagerLicenseInfo><licenseKey>x</licenseKey><editionKey>"
                          "esxBasic</editionKey></LicenseManagerLicenseInfo>")));
  auto recs = ceso::host_records(objs, "esxi1.lab:443", false);
  ASSERT_EQ(recs.size(), 1u);
  const auto& r = recs[0];
  EXPECT_EQ(r["type"], "host");
  EXPECT_EQ(r["endpoint"], "esxi1.lab:443");
  EXPECT_EQ(r["id"], "ha-host");
  EXPECT_EQ(r["version"], "8.0.2");
  EXPECT_EQ(r["build"], "22380479");
  EXPECT_EQ(r["edition"], "esxBasic");
  EXPECT_EQ(r["free"], true);
  EXPECT_EQ(r["cpu_cores"], 16);
  EXPECT_EQ(r["cpu_capacity_mhz"], 33600);
  EXPECT_EQ(r["cpu_used_mhz"], 3150);
  EXPECT_EQ(r["memory_mib"], 65536);
  EXPECT_EQ(r["memory_used_mib"], 20480);
  EXPECT_EQ(r["maintenance"], false);
  EXPECT_EQ(r["connection"], "connected");
  EXPECT_TRUE(r["cluster"].is_null());
  // Sorted by name; the datastore the answer does not describe is left out;
  // malformed sizes are null.
  EXPECT_EQ(r["datastores"].dump(), R"([{"name":"hdd","capacity_gib":null,"free_gib":null},)"
                                    R"({"name":"nvme","capacity_gib":1024,"free_gib":500.25}])");
}

TEST(HostRecords, VcenterClusterPoolsAndNoLicence) {
  auto objs = datastores();
  objs.push_back(host("host-2", "b-esx", "ClusterComputeResource", "domain-c1"));
  objs.push_back(host("host-1", "a-esx", "ClusterComputeResource", "domain-c1", "true"));
  objs.push_back(obj("ClusterComputeResource", "domain-c1", prop("name", "gold")));
  auto pool = [](const std::string& id, const std::string& name, const std::string& parent_type,
                 const std::string& parent, const std::string& owner = "domain-c1") {
    return obj("ResourcePool", id,
               prop("name", name) + ref("parent", parent_type, parent) +
                   ref("owner", "ClusterComputeResource", owner));
  };
  objs.push_back(pool("resgroup-1", "Resources", "ClusterComputeResource", "domain-c1"));
  objs.push_back(pool("resgroup-2", "web", "ResourcePool", "resgroup-1"));
  objs.push_back(pool("resgroup-3", "front", "ResourcePool", "resgroup-2"));
  objs.push_back(pool("resgroup-4", "db", "ResourcePool", "resgroup-1"));
  // Another cluster's pool, and a pool whose parents loop: not listed.
  objs.push_back(pool("resgroup-9", "other", "ResourcePool", "resgroup-8", "domain-c2"));
  objs.push_back(pool("resgroup-5", "loop", "ResourcePool", "resgroup-6"));
  objs.push_back(pool("resgroup-6", "loop2", "ResourcePool", "resgroup-5"));
  auto recs = ceso::host_records(objs, "vc.lab:443", true);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0]["name"], "a-esx");  // sorted by name
  EXPECT_EQ(recs[0]["maintenance"], true);
  EXPECT_EQ(recs[1]["name"], "b-esx");
  for (const auto& r : recs) {
    EXPECT_EQ(r["cluster"], "gold");
    EXPECT_EQ(r["pools"].dump(), R"(["db","web","web/front"])");
    EXPECT_TRUE(r["edition"].is_null());
    EXPECT_EQ(r["free"], false);
  }
}

TEST(HostRecords, HostileAnswerBecomesNullsNotErrors) {
  std::vector<ObjectContent> objs{
      obj("HostSystem", "h",
          prop("name", "x") + prop("summary.hardware",
                                   "<memorySize>-5</memorySize><cpuMhz>"
                                   "99999999999999999999999</cpuMhz>"))};
  auto recs = ceso::host_records(objs, "e:443", false);
  ASSERT_EQ(recs.size(), 1u);
  const auto& r = recs[0];
  EXPECT_TRUE(r["memory_mib"].is_null());
  EXPECT_TRUE(r["cpu_mhz"].is_null());
  EXPECT_TRUE(r["cpu_capacity_mhz"].is_null());
  EXPECT_TRUE(r["version"].is_null());
  EXPECT_TRUE(r["edition"].is_null());
  EXPECT_EQ(r["free"], false);
  EXPECT_TRUE(r["maintenance"].is_null());
  EXPECT_EQ(r["datastores"].dump(), "[]");
  EXPECT_EQ(r["pools"].dump(), "[]");
}

TEST(HostSpec, ReadsTheLicenceOnlyWhenAsked) {
  ceso::vim::MoRef root{"Folder", "ha-folder-root"};
  std::string with = ceso::host_spec(root, {"LicenseManager", "ha-license-manager"});
  std::string without = ceso::host_spec(root, {});
  EXPECT_NE(with.find("<type>LicenseManager</type>"), std::string::npos);
  EXPECT_NE(with.find(">ha-license-manager</obj>"), std::string::npos);
  EXPECT_EQ(without.find("LicenseManager"), std::string::npos);
  EXPECT_NE(without.find("<path>datastore</path>"), std::string::npos);
}

}  // namespace
