// Placement (ceso-place): fit by memory after reservations, datastore space
// after thin growth (and swap), CPU, anti-affinity by tag over existing and
// placed VMs, capacity taken by earlier specs, ties, hostile host numbers,
// and the VM properties read from the host.
#include "vm/place.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/error.hpp"
#include "base/xml.hpp"

namespace {

using ceso::ordered_json;
using ceso::Placer;
using ceso::PlaceSpec;
using ceso::PlaceVm;

ordered_json host(const std::string& ep, const std::string& name, int64_t mem_mib, int64_t used_mib,
                  double ds_cap_gib, double ds_free_gib, const std::string& ds = "LocalDS_0",
                  int64_t cores = 8, int64_t cpu_used = 1000) {
  return {{"type", "host"},
          {"endpoint", ep},
          {"id", "ha-host"},
          {"name", name},
          {"cpu_cores", cores},
          {"cpu_mhz", 2000},
          {"cpu_capacity_mhz", cores * 2000},
          {"cpu_used_mhz", cpu_used},
          {"memory_mib", mem_mib},
          {"memory_used_mib", used_mib},
          {"datastores", {{{"name", ds}, {"capacity_gib", ds_cap_gib}, {"free_gib", ds_free_gib}}}},
          {"maintenance", false},
          {"connection", "connected"}};
}

PlaceSpec spec(const std::string& name, int64_t mem_mib, int64_t disk_gib,
               std::vector<std::string> tags = {}, int64_t cpus = 1) {
  PlaceSpec s;
  s.name = name;
  s.origin = "<stdin>:1";
  s.cpus = cpus;
  s.memory_mib = mem_mib;
  s.disk_mib = disk_gib * 1024;
  s.tags = std::move(tags);
  return s;
}

PlaceVm vm(const std::string& name, bool on, int64_t mem, int64_t reservation,
           std::vector<std::string> tags = {}, int64_t thin_gib = 0) {
  PlaceVm v;
  v.name = name;
  v.host_id = "ha-host";
  v.powered_on = on;
  v.memory_mib = mem;
  v.reservation_mib = reservation;
  v.tags = std::move(tags);
  if (thin_gib) v.thin_mib["LocalDS_0"] = thin_gib * 1024;
  return v;
}

int code_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const ceso::Error& e) {
    return static_cast<int>(e.code());
  }
  return 0;
}

std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const ceso::Error& e) {
    return e.what();
  }
  return "";
}

TEST(Place, MostFreeHostWinsAndEachPlacementTakesItsShare) {
  Placer p({});
  p.add_endpoint("a", {host("a:1", "ha", 16384, 4096, 100, 90)}, {});
  p.add_endpoint("b", {host("b:1", "hb", 16384, 8192, 100, 90)}, {});
  auto r1 = p.place(spec("vm1", 4096, 10));
  EXPECT_EQ(r1["endpoint"], "a:1");
  EXPECT_EQ(r1["datastore"], "LocalDS_0");
  // a: 16384 − 4096 − 4096 = 8192 free, the same as b: a tie goes to the host given first…
  // but a's datastore is fuller now (10 GiB disk + 4 GiB swap), so b wins.
  auto r2 = p.place(spec("vm2", 4096, 10));
  EXPECT_EQ(r2["endpoint"], "b:1");
  EXPECT_EQ(r2["placement"]["memory_free_mib"], 16384 - 8192 - 4096);
  ASSERT_EQ(r2["placement"]["others"].size(), 1u);
  EXPECT_EQ(r2["placement"]["others"][0]["endpoint"], "a:1");
  EXPECT_EQ(p.hosts()[0].placed_memory_mib, 4096);
  EXPECT_EQ(p.datastore("a:1", "LocalDS_0")->placed_mib, 14 * 1024);
}

TEST(Place, TiesGoToTheHostGivenFirst) {
  Placer p({});
  p.add_endpoint("b", {host("b:1", "hb", 8192, 0, 100, 100)}, {});
  p.add_endpoint("a", {host("a:1", "ha", 8192, 0, 100, 100)}, {});
  EXPECT_EQ(p.place(spec("x", 1024, 1))["endpoint"], "b:1");
}

TEST(Place, ReservationsOfPoweredOnVmsCountWhenAboveUse) {
  Placer p({});
  // 8 GiB host, 1 GiB in use but 6 GiB reserved by a powered-on VM; the
  // powered-off VM's reservation does not count.
  p.add_endpoint("a", {host("a:1", "ha", 8192, 1024, 100, 100)},
                 {vm("db", true, 6144, 6144), vm("off", false, 4096, 4096)});
  EXPECT_EQ(p.hosts()[0].memory_available_mib(), 2048);
  auto msg = message_of([&] { p.place(spec("big", 4096, 1)); });
  EXPECT_NE(msg.find("memory: needs 4 GiB, 2 GiB free after reservations"), std::string::npos)
      << msg;
  EXPECT_EQ(code_of([&] { p.place(spec("big2", 4096, 1)); }), 4);
  EXPECT_EQ(p.place(spec("small", 2048, 1))["endpoint"], "a:1");
  EXPECT_EQ(code_of([&] { p.place(spec("one-more", 4, 1)); }), 4);
}

TEST(Place, ThinDisksOfExistingVmsCountAtFullSizeAndSwapNeedsRoom) {
  Placer p({});
  // 50 GiB free, but thin disks of 40 GiB may still grow: 10 GiB left.
  p.add_endpoint("a", {host("a:1", "ha", 65536, 0, 100, 50)}, {vm("thin", true, 1024, 0, {}, 40)});
  EXPECT_EQ(p.datastore("a:1", "LocalDS_0")->available_mib(), 10 * 1024);
  // 9 GiB disk + 2 GiB swap = 11 GiB: no room.
  auto msg = message_of([&] { p.place(spec("x", 2048, 9)); });
  EXPECT_NE(msg.find("needs 11 GiB (disk + swap), 10 GiB free after thin growth"),
            std::string::npos)
      << msg;
  EXPECT_EQ(p.place(spec("y", 1024, 9))["datastore"], "LocalDS_0");
}

TEST(Place, AntiAffinityAgainstExistingAndPlacedVms) {
  Placer p({{"web"}, false});
  p.add_endpoint("a", {host("a:1", "ha", 65536, 0, 1000, 1000)},
                 {vm("web-old", true, 1024, 0, {"web"})});
  p.add_endpoint("b", {host("b:1", "hb", 8192, 0, 1000, 1000)}, {});
  p.add_endpoint("c", {host("c:1", "hc", 8192, 0, 1000, 1000)}, {});
  // a has the most memory but a web VM already.
  auto r1 = p.place(spec("web1", 1024, 1, {"web", "prod"}));
  EXPECT_EQ(r1["endpoint"], "b:1");
  auto rej = r1["placement"]["rejected"];
  ASSERT_EQ(rej.size(), 1u);
  EXPECT_EQ(rej[0]["endpoint"], "a:1");
  EXPECT_NE(rej[0]["why"][0].get<std::string>().find("'web-old'"), std::string::npos);
  EXPECT_EQ(p.place(spec("web2", 1024, 1, {"web"}))["endpoint"], "c:1");
  // "prod" is no anti-affinity tag: it may share a host.
  EXPECT_EQ(p.place(spec("db1", 1024, 1, {"prod"}))["endpoint"], "a:1");
  auto msg = message_of([&] { p.place(spec("web3", 1024, 1, {"web"})); });
  EXPECT_NE(msg.find("fits on no host ("), std::string::npos) << msg;
  EXPECT_NE(msg.find("anti-affinity: tag 'web' is on 'web1'"), std::string::npos) << msg;
}

TEST(Place, ForceBreaksAntiAffinityLeastAndSaysSo) {
  Placer p({{"*"}, true});
  p.add_endpoint("a", {host("a:1", "ha", 8192, 0, 100, 100)}, {vm("w", true, 0, 0, {"web", "eu"})});
  p.add_endpoint("b", {host("b:1", "hb", 8192, 0, 100, 100)}, {vm("v", true, 0, 0, {"web"})});
  auto r = p.place(spec("web9", 1024, 1, {"web", "eu"}));
  EXPECT_EQ(r["endpoint"], "b:1");  // breaks "web" only, a would break both
  EXPECT_EQ(r["placement"]["forced"], ordered_json({"web"}));
  ASSERT_EQ(r["placement"]["rejected"].size(), 1u);
  EXPECT_EQ(r["placement"]["rejected"][0]["endpoint"], "a:1");
  // Capacity is never forced.
  EXPECT_EQ(code_of([&] { p.place(spec("huge", 1 << 20, 1, {"web"})); }), 4);
}

TEST(Place, NamesPlacedTwiceAndExistingVms) {
  Placer p({});
  p.add_endpoint("a", {host("a:1", "ha", 8192, 0, 100, 100)}, {vm("old", true, 1024, 0)});
  p.add_endpoint("b", {host("b:1", "hb", 8192, 0, 100, 100)}, {vm("dup", true, 1024, 0)});
  p.add_endpoint("c", {host("c:1", "hc", 65536, 0, 100, 100)}, {vm("dup", true, 1024, 0)});
  auto r = p.place(spec("old", 4096, 10));
  EXPECT_EQ(r["endpoint"], "a:1");
  EXPECT_EQ(r["placement"]["existing"], true);
  EXPECT_EQ(p.hosts()[0].placed_memory_mib, 0);
  EXPECT_EQ(code_of([&] { p.place(spec("old", 4096, 10)); }), 3);
  EXPECT_EQ(code_of([&] { p.place(spec("dup", 4096, 10)); }), 1);
  p.place(spec("new", 1024, 1));
  auto msg = message_of([&] { p.place(spec("new", 1024, 1)); });
  EXPECT_NE(msg.find("placed already in this run"), std::string::npos) << msg;
}

TEST(Place, NonsenseHostNumbersMakeTheHostUnusable) {
  Placer p({});
  ordered_json over = host("a:1", "ha", 4096, 9999, 100, 100);
  ordered_json nomem = host("b:1", "hb", 0, 0, 100, 100);
  ordered_json negative = host("c:1", "hc", 8192, 0, 100, 100);
  negative["memory_used_mib"] = -5;
  ordered_json bad_ds = host("d:1", "hd", 8192, 0, 10, 20);
  ordered_json huge = host("e:1", "he", 8192, 0, 100, 100);
  huge["memory_mib"] = 1e30;
  ordered_json maint = host("f:1", "hf", 8192, 0, 100, 100);
  maint["maintenance"] = true;
  std::vector<std::string> warnings;
  for (const auto& [n, h] : std::vector<std::pair<std::string, ordered_json>>{
           {"a", over}, {"b", nomem}, {"c", negative}, {"d", bad_ds}, {"e", huge}, {"f", maint}})
    for (auto& w : p.add_endpoint(n, {h}, {})) warnings.push_back(w);
  EXPECT_EQ(warnings.size(), 5u);  // d's host is fine, its datastore is not
  EXPECT_NE(warnings[0].find("more memory in use (9999 MiB) than it has (4 GiB)"),
            std::string::npos)
      << warnings[0];
  EXPECT_NE(p.hosts()[5].unusable.find("maintenance"), std::string::npos);
  auto msg = message_of([&] { p.place(spec("x", 4, 1)); });
  EXPECT_NE(msg.find("reports more free space (20 GiB) than capacity (10 GiB)"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("reports no memory size"), std::string::npos) << msg;
}

TEST(Place, CpusAboveTheHostsCoresDoNotFit) {
  Placer p({});
  p.add_endpoint("a", {host("a:1", "ha", 8192, 0, 100, 100, "ds", 2)}, {});
  EXPECT_EQ(code_of([&] { p.place(spec("x", 1024, 1, {}, 4)); }), 4);
  EXPECT_EQ(p.place(spec("y", 1024, 1, {}, 2))["endpoint"], "a:1");
}

TEST(Place, BusierCpuLosesWhenMemoryAndDiskAreEqual) {
  Placer p({});
  p.add_endpoint("a", {host("a:1", "ha", 8192, 0, 100, 100, "ds", 4, 7000)}, {});
  p.add_endpoint("b", {host("b:1", "hb", 8192, 0, 100, 100, "ds", 4, 1000)}, {});
  auto r = p.place(spec("x", 1024, 1));
  EXPECT_EQ(r["endpoint"], "b:1");
  // b: (1 − 1000/8000) × 4 cores / (4 + 1 vCPU) = 0.7; a: (1 − 7000/8000) × 4/5 = 0.1
  EXPECT_DOUBLE_EQ(r["placement"]["terms"]["cpu"].get<double>(), 0.7);
  EXPECT_DOUBLE_EQ(
      r["placement"]["score"].get<double>() - r["placement"]["others"][0]["score"].get<double>(),
      0.3 * (0.7 - 0.1));
  // vCPUs placed in the run count against a host's CPU term: b's drops to 0.875 × 4/6
  auto r2 = p.place(spec("y", 1024, 1));
  EXPECT_EQ(r2["endpoint"], "b:1");
  EXPECT_DOUBLE_EQ(r2["placement"]["terms"]["cpu"].get<double>(), 0.5833);
}

TEST(Place, VmPropertiesFromTheHost) {
  auto o = ceso::vim::object_from_xml(ceso::xml::parse(
      "<objects><obj type=\"VirtualMachine\">vm-9</obj>"
      "<propSet><name>name</name><val>web01</val></propSet>"
      "<propSet><name>runtime.host</name><val type=\"HostSystem\">host-7</val></propSet>"
      "<propSet><name>runtime.powerState</name><val>poweredOn</val></propSet>"
      "<propSet><name>config.hardware.memoryMB</name><val>2048</val></propSet>"
      "<propSet><name>config.memoryAllocation.reservation</name><val>512</val></propSet>"
      "<propSet><name>config.hardware.device</name><val>"
      "<VirtualDevice xsi:type=\"VirtualDisk\"><backing><fileName>[ds1] web01/a.vmdk</fileName>"
      "<thinProvisioned>true</thinProvisioned></backing><capacityInKB>2097152</capacityInKB>"
      "</VirtualDevice>"
      "<VirtualDevice xsi:type=\"VirtualDisk\"><backing><fileName>[ds1] web01/b.vmdk</fileName>"
      "<thinProvisioned>false</thinProvisioned></backing><capacityInBytes>1073741824"
      "</capacityInBytes></VirtualDevice></val></propSet>"
      "<propSet><name>config.extraConfig</name><val><OptionValue><key>ceso.tags</key>"
      "<value>Web, db</value></OptionValue></val></propSet></objects>"));
  ASSERT_TRUE(o.has_value());
  PlaceVm v = ceso::place_vm(*o);
  EXPECT_EQ(v.name, "web01");
  EXPECT_EQ(v.host_id, "host-7");
  EXPECT_TRUE(v.powered_on);
  EXPECT_EQ(v.memory_mib, 2048);
  EXPECT_EQ(v.reservation_mib, 512);
  ASSERT_EQ(v.thin_mib.size(), 1u);  // the thick disk is no growth
  EXPECT_EQ(v.thin_mib["ds1"], 2048);
  EXPECT_EQ(v.tags, (std::vector<std::string>{"web", "db"}));

  auto locked = ceso::vim::object_from_xml(ceso::xml::parse(
      "<objects><obj type=\"VirtualMachine\">vm-10</obj>"
      "<propSet><name>config.hardware.memoryMB</name><val>4096</val></propSet>"
      "<propSet><name>config.memoryAllocation.reservation</name><val>0</val></propSet>"
      "<propSet><name>config.memoryReservationLockedToMax</name><val>true</val></propSet>"
      "</objects>"));
  ASSERT_TRUE(locked.has_value());
  EXPECT_EQ(ceso::place_vm(*locked).reservation_mib, 4096);
}

}  // namespace
