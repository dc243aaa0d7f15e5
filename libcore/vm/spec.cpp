#include "vm/spec.hpp"

#include <openssl/rand.h>

#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <map>

#include "base/error.hpp"
#include "base/numbers.hpp"
#include "base/util.hpp"

namespace ceso::vmspec {

namespace {

void random_bytes(unsigned char* out, size_t n) {
  if (RAND_bytes(out, static_cast<int>(n)) != 1)
    fail("cannot get random bytes (OpenSSL RAND_bytes)");
}

using xml::tag;

// The attributes a retrieved element keeps when it is sent back: its xsi:type
// and, for a ManagedObjectReference (a disk backing's <datastore>, a NIC
// backing's <network>), its `type`. A moref without `type` is refused by
// every real host's deserializer (vcsim alone accepts it).
std::string type_attrs(const xml::Node& n) {
  std::string out;
  if (std::string t = n.attr("xsi:type"); !t.empty()) out += " xsi:type=\"" + xml::escape(t) + "\"";
  if (std::string t = n.attr("type"); !t.empty()) out += " type=\"" + xml::escape(t) + "\"";
  return out;
}

// Re-serialize `n` as `name`, replacing the children named in `replace`
// (value: raw XML, "" drops the child) and dropping those in `skip`.
std::string rebuild(const xml::Node& n, std::string_view name,
                    const std::map<std::string, std::string, std::less<>>& replace,
                    const std::set<std::string, std::less<>>& skip = {}) {
  std::string out = "<" + std::string(name) + type_attrs(n) + ">";
  if (n.children.empty()) out += xml::escape(n.text);
  for (const auto& c : n.children) {
    if (skip.count(c.name)) continue;
    if (auto it = replace.find(c.name); it != replace.end()) {
      out += it->second;
      continue;
    }
    out += node_xml(c, c.name);
  }
  return out + "</" + std::string(name) + ">";
}

int to_int(const std::string& s) { return s.empty() ? 0 : std::atoi(s.c_str()); }

bool is_controller(std::string_view type) {
  return type.ends_with("SCSIController") || type == "VirtualLsiLogicController" ||
         type == "VirtualLsiLogicSASController" || type == "VirtualBusLogicController" ||
         type == "VirtualAHCIController" || type == "VirtualNVMEController";
}

}  // namespace

int64_t parse_memory_mib(std::string_view text) {
  // 4 MiB granularity, as ESXi wants; at most the host's 24 TiB.
  return parse_size("memory", text, kMiB, 4 * kMiB, kMaxVmMemoryBytes) / kMiB;
}

DiskGrow parse_disk_grow(std::string_view text) {
  DiskGrow g;
  std::string_view t = text;
  if (!t.empty() && t.front() == '+') {
    g.relative = true;
    t.remove_prefix(1);
  }
  // The rest is a plain size ("++1G", "+-1G" and " 1G" are refused there),
  // whole MiB, at most ESXi's 62 TiB per disk, so no sum below can wrap.
  if (std::string why = size_error(t, kGiB, kMiB, kMaxDiskBytes, &g.bytes); !why.empty())
    usage_error("--disk-grow: " + quote(text) + " " + why + "; +SIZE grows by SIZE");
  return g;
}

int64_t grown_capacity(const DiskGrow& grow, int64_t current) {
  int64_t target = grow.relative ? current + grow.bytes : grow.bytes;
  if (target < current)
    fail("the first disk has " + std::to_string(current / (1024 * 1024)) +
         " MiB; disks can grow but not shrink (asked for " +
         std::to_string(target / (1024 * 1024)) + " MiB)");
  if (target > kMaxDiskBytes)
    fail("the first disk has " + size_text(current) + "; growing it by " + size_text(grow.bytes) +
         " passes the host's maximum disk size of " + size_text(kMaxDiskBytes));
  return target;
}

std::string random_mac() {
  std::array<unsigned char, 3> b{};
  random_bytes(b.data(), b.size());
  char buf[32];
  std::snprintf(buf, sizeof buf, "00:50:56:%02x:%02x:%02x", b[0] & 0x3f, b[1], b[2]);
  return buf;
}

std::string random_uuid() {
  std::array<unsigned char, 16> b{};
  random_bytes(b.data(), b.size());
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  const unsigned char* p = b.data();
  return hex_encode(p, 4) + "-" + hex_encode(p + 4, 2) + "-" + hex_encode(p + 6, 2) + "-" +
         hex_encode(p + 8, 2) + "-" + hex_encode(p + 10, 6);
}

std::string DatastorePath::text() const {
  return "[" + datastore + "]" + (path.empty() ? "" : " " + path);
}

DatastorePath parse_datastore_path(std::string_view text) {
  if (text.empty() || text.front() != '[' || text.find(']') == std::string_view::npos)
    fail("not a datastore path: " + quote(text));
  size_t close = text.find(']');
  DatastorePath p{std::string(text.substr(1, close - 1)), std::string(text.substr(close + 1))};
  while (!p.path.empty() && p.path.front() == ' ') p.path.erase(0, 1);
  return p;
}

std::string dir_name(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string() : std::string(path.substr(0, slash));
}

Hardware parse_hardware(const xml::Node& devices) {
  Hardware hw;
  std::map<int, std::string> types;  // every device key → type, for disks' controllers
  for (const auto& d : devices.children) types[to_int(d.child_text("key"))] = d.type();
  for (const auto& d : devices.children) {
    std::string type = d.type();
    int key = to_int(d.child_text("key"));
    if (is_controller(type)) {
      hw.controllers.push_back({key, type, to_int(d.child_text("busNumber")), &d});
    } else if (type == "VirtualDisk") {
      Disk disk;
      disk.key = key;
      disk.controller_key = to_int(d.child_text("controllerKey"));
      disk.unit = to_int(d.child_text("unitNumber"));
      disk.file = d.find_text("backing/fileName");
      std::string bytes = d.child_text("capacityInBytes");
      disk.capacity_bytes = bytes.empty() ? std::atoll(d.child_text("capacityInKB").c_str()) * 1024
                                          : std::atoll(bytes.c_str());
      disk.thin = d.find_text("backing/thinProvisioned") == "true";
      disk.disk_mode = d.find_text("backing/diskMode");
      disk.controller_type = types[disk.controller_key];
      disk.node = &d;
      hw.disks.push_back(std::move(disk));
    } else if (d.child("addressType") || d.child("macAddress")) {
      hw.nics.push_back({key, type, d.child_text("macAddress"), d.find_text("backing/deviceName"),
                         d.find_text("backing/port/portgroupKey"), &d});
    }
  }
  return hw;
}

std::string_view disk_adapter_type(std::string_view controller_type) {
  if (controller_type == "VirtualBusLogicController") return "busLogic";
  if (controller_type == "VirtualIDEController" || controller_type == "VirtualAHCIController" ||
      controller_type == "VirtualNVMEController")
    return "ide";
  return "lsiLogic";
}

std::string node_xml(const xml::Node& node, std::string_view name,
                     const std::set<std::string, std::less<>>& skip) {
  return rebuild(node, name, {}, skip);
}

std::string option_values_xml(std::string_view name,
                              const std::vector<std::pair<std::string, std::string>>& values) {
  std::string out;
  for (const auto& [k, v] : values)
    out += "<" + std::string(name) + " xsi:type=\"OptionValue\">" + tag("key", k) +
           "<value xsi:type=\"xsd:string\">" + xml::escape(v) + "</value></" + std::string(name) +
           ">";
  return out;
}

std::string copy_disk_spec_xml(std::string_view adapter_type, bool thin, int64_t capacity_bytes) {
  return "<destSpec xsi:type=\"FileBackedVirtualDiskSpec\">" +
         tag("diskType", thin ? "thin" : "preallocated") + tag("adapterType", adapter_type) +
         tag("capacityKb", std::to_string(capacity_bytes / 1024)) + "</destSpec>";
}

std::string device_change_xml(std::string_view operation, std::string_view file_operation,
                              const std::string& device_xml) {
  std::string out = "<deviceChange>" + tag("operation", operation);
  if (!file_operation.empty()) out += tag("fileOperation", file_operation);
  return out + device_xml + "</deviceChange>";
}

std::string controller_add_xml(const Controller& c, int new_key) {
  if (!c.node) return "";
  // The host places the controller on its PCI bus and fills in the list of
  // attached devices itself.
  std::string body = rebuild(*c.node, "device", {{"key", tag("key", std::to_string(new_key))}},
                             {"deviceInfo", "slotInfo", "controllerKey", "unitNumber", "device"});
  return body;
}

std::string disk_attach_xml(const Disk& d, int new_key, int controller_key, const std::string& file,
                            bool thin) {
  std::string mode = d.disk_mode.empty() ? "persistent" : d.disk_mode;
  return "<device xsi:type=\"VirtualDisk\">" + tag("key", std::to_string(new_key)) +
         "<backing xsi:type=\"VirtualDiskFlatVer2BackingInfo\">" + tag("fileName", file) +
         tag("diskMode", mode) + tag("thinProvisioned", thin ? "true" : "false") + "</backing>" +
         tag("controllerKey", std::to_string(controller_key)) +
         tag("unitNumber", std::to_string(d.unit)) +
         tag("capacityInKB", std::to_string(d.capacity_bytes / 1024)) +
         tag("capacityInBytes", std::to_string(d.capacity_bytes)) + "</device>";
}

std::string network_backing_xml(const Network& network) {
  if (network.distributed())
    return "<backing xsi:type=\"VirtualEthernetCardDistributedVirtualPortBackingInfo\"><port>" +
           tag("switchUuid", network.switch_uuid) + tag("portgroupKey", network.portgroup_key) +
           "</port></backing>";
  return "<backing xsi:type=\"VirtualEthernetCardNetworkBackingInfo\">" +
         tag("deviceName", network.name) + "</backing>";
}

bool nic_on(const Nic& n, const Network& net) {
  if (net.distributed()) return n.portgroup_key == net.portgroup_key;
  return n.portgroup_key.empty() && n.network == net.name;
}

namespace {

// The backing a copy of NIC `n` gets: a standard portgroup by name, or the
// same distributed portgroup (switch + portgroup, no port: the host picks).
std::string copied_backing(const Nic& n) {
  const xml::Node* b = n.node ? n.node->child("backing") : nullptr;
  if (b && b->type() == "VirtualEthernetCardDistributedVirtualPortBackingInfo")
    return network_backing_xml(
        {"", b->find_text("port/switchUuid"), b->find_text("port/portgroupKey")});
  return network_backing_xml({n.network, "", ""});
}

}  // namespace

std::string nic_add_xml(const Nic& n, int new_key, const std::string& mac, const Network& network) {
  std::string type = n.type.empty() ? "VirtualVmxnet3" : n.type;
  return "<device xsi:type=\"" + xml::escape(type) + "\">" + tag("key", std::to_string(new_key)) +
         (network.name.empty() ? copied_backing(n) : network_backing_xml(network)) +
         "<connectable><startConnected>true</startConnected>"
         "<allowGuestControl>true</allowGuestControl><connected>true</connected></connectable>" +
         tag("addressType", "manual") + tag("macAddress", mac) + "</device>";
}

std::string disk_resize_xml(const Disk& d, int64_t capacity_bytes) {
  if (!d.node) return "";
  std::map<std::string, std::string, std::less<>> r = {
      {"capacityInKB", tag("capacityInKB", std::to_string(capacity_bytes / 1024))}};
  if (d.node->child("capacityInBytes"))
    r["capacityInBytes"] = tag("capacityInBytes", std::to_string(capacity_bytes));
  return rebuild(*d.node, "device", r);
}

std::string nic_network_xml(const Nic& n, const Network& network) {
  if (!n.node) return "";
  return rebuild(*n.node, "device", {{"backing", network_backing_xml(network)}});
}

std::string nic_mac_xml(const Nic& n, const std::string& mac, const Network& network) {
  if (!n.node) return "";
  std::map<std::string, std::string, std::less<>> r = {
      {"addressType", tag("addressType", "manual")}, {"macAddress", tag("macAddress", mac)}};
  if (!network.name.empty()) {
    r["backing"] = network_backing_xml(network);
  } else if (!n.portgroup_key.empty()) {
    // A copy must not claim the source's distributed port (portKey,
    // connectionCookie): same portgroup, the host picks a free port.
    r["backing"] = copied_backing(n);
  }
  return rebuild(*n.node, "device", r);
}

bool ConfigSpec::empty() const {
  return name.empty() && uuid.empty() && instance_uuid.empty() && guest_id.empty() && !annotation &&
         vm_path_name.empty() && !num_cpus && !cores_per_socket && !memory_mib &&
         device_changes.empty() && extra_config.empty() && firmware.empty() && version.empty() &&
         !memory_reservation_locked_to_max;
}

std::string ConfigSpec::xml(std::string_view element) const {
  // Field order is the WSDL's (VirtualMachineConfigSpec in types.go).
  std::string out = "<" + std::string(element) + " xsi:type=\"VirtualMachineConfigSpec\">";
  if (!name.empty()) out += tag("name", name);
  if (!version.empty()) out += tag("version", version);
  if (!uuid.empty()) out += tag("uuid", uuid);
  if (!instance_uuid.empty()) out += tag("instanceUuid", instance_uuid);
  if (!guest_id.empty()) out += tag("guestId", guest_id);
  if (annotation) out += tag("annotation", *annotation);
  if (!vm_path_name.empty()) out += "<files>" + tag("vmPathName", vm_path_name) + "</files>";
  if (num_cpus) out += tag("numCPUs", std::to_string(*num_cpus));
  if (cores_per_socket) out += tag("numCoresPerSocket", std::to_string(*cores_per_socket));
  if (memory_mib) out += tag("memoryMB", std::to_string(*memory_mib));
  for (const auto& d : device_changes) out += d;
  out += option_values_xml("extraConfig", extra_config);
  if (!firmware.empty()) out += tag("firmware", firmware);
  if (memory_reservation_locked_to_max)
    out +=
        tag("memoryReservationLockedToMax", *memory_reservation_locked_to_max ? "true" : "false");
  return out + "</" + std::string(element) + ">";
}

bool inheritable_extra_config(std::string_view key) {
  static const std::vector<std::string_view> kHostManaged = {"guestinfo.",
                                                             "ceso.tags",
                                                             "sched.",
                                                             "nvram",
                                                             "migrate.",
                                                             "vmware.",
                                                             "toolsInstallManager.",
                                                             "tools.",
                                                             "svga.",
                                                             "monitor.",
                                                             "numa.",
                                                             "pciBridge",
                                                             "ethernet",
                                                             "scsi",
                                                             "sata",
                                                             "nvme",
                                                             "ide",
                                                             "hpet",
                                                             "vmotion.",
                                                             "uuid.",
                                                             "vc.uuid",
                                                             "govcsim",
                                                             "softPowerOff",
                                                             "checkpoint.",
                                                             "cpuid.",
                                                             "featMask.",
                                                             "viv.",
                                                             "SET.",
                                                             "vmci",
                                                             "config.",
                                                             "virtualHW.",
                                                             "answer."};
  for (auto p : kHostManaged)
    if (key.starts_with(p)) return false;
  return true;
}

}  // namespace ceso::vmspec
