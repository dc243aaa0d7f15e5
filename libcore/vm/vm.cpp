#include "vm/vm.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "base/codec.hpp"
#include "base/util.hpp"
#include "vm/names.hpp"
#include "vm/pci.hpp"

namespace ceso {

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// GiB as a number: whole when exact, else two decimals.
ordered_json gib(uint64_t bytes) {
  if (bytes % (1ull << 30) == 0) return bytes >> 30;
  return std::round(static_cast<double>(bytes) / kGiB * 100.0) / 100.0;
}

uint64_t disk_bytes(const xml::Node& dev) {
  std::string b = dev.child_text("capacityInBytes");
  if (!b.empty()) return std::stoull(b);
  std::string kb = dev.child_text("capacityInKB");
  return kb.empty() ? 0 : std::stoull(kb) * 1024;
}

long to_long(const std::string& s, long fallback = 0) {
  if (s.empty()) return fallback;
  try {
    return std::stol(s);
  } catch (const std::exception&) {
    return fallback;
  }
}

// "[datastore1] web01/web01.vmx" → "datastore1".
std::string datastore_of(const std::string& ds_path) {
  if (ds_path.size() > 2 && ds_path.front() == '[') {
    size_t close = ds_path.find(']');
    if (close != std::string::npos) return ds_path.substr(1, close - 1);
  }
  return {};
}

std::vector<const xml::Node*> devices(const vim::ObjectContent& vm) {
  std::vector<const xml::Node*> out;
  if (const xml::Node* val = vm.prop("config.hardware.device"))
    for (const auto& d : val->children) out.push_back(&d);
  return out;
}

// "VirtualVmxnet3" → "vmxnet3".
std::string nic_type(const std::string& xsi_type) {
  return ascii_lower(xsi_type.rfind("Virtual", 0) == 0 ? xsi_type.substr(7) : xsi_type);
}

bool is_nic_type(std::string_view type) {
  static const std::set<std::string, std::less<>> kNics = {
      "VirtualVmxnet3",     "VirtualVmxnet3Vrdma", "VirtualVmxnet2", "VirtualVmxnet",
      "VirtualE1000",       "VirtualE1000e",       "VirtualPCNet32", "VirtualSriovEthernetCard",
      "VirtualEthernetCard"};
  return kNics.count(type) > 0;
}

bool is_nic(const xml::Node& d) { return is_nic_type(d.type()); }

// The disk controllers vm_details lists.
bool is_listed_controller(std::string_view type) {
  return (type.find("Controller") != std::string_view::npos &&
          type.find("SCSI") != std::string_view::npos) ||
         type == "ParaVirtualSCSIController" || type == "VirtualLsiLogicController" ||
         type == "VirtualLsiLogicSASController" || type == "VirtualBusLogicController" ||
         type == "VirtualNVMEController" || type == "VirtualAHCIController";
}

// An object's fields appended in order, each value moved in: the keys are
// distinct, so no lookup, and no pair built and copied per field as
// nlohmann's initializer lists do (vm_details writes thousands of them).
struct Fields {
  ordered_json object = ordered_json::object();
  Fields& operator()(const char* key, ordered_json value) {
    object.get_ref<ordered_json::object_t&>().emplace_back(key, std::move(value));
    return *this;
  }
};

ordered_json snapshot_tree(const xml::Node& node, const std::string& current) {
  ordered_json s;
  s["name"] = node.child_text("name");
  s["id"] = to_long(node.child_text("id"));
  const xml::Node* ref = node.child("snapshot");
  s["moref"] = ref ? ref->text : "";
  s["description"] = node.child_text("description");
  s["created"] = node.child_text("createTime");
  s["power"] = power_word(node.child_text("state"));
  s["quiesced"] = node.child_text("quiesced") == "true";
  s["current"] = ref && ref->text == current;
  ordered_json children = ordered_json::array();
  for (const xml::Node* c : node.all("childSnapshotList"))
    children.push_back(snapshot_tree(*c, current));
  s["children"] = std::move(children);
  return s;
}

}  // namespace

std::string power_word(std::string_view s) {
  if (s == "poweredOn") return "on";
  if (s == "poweredOff") return "off";
  if (s == "suspended") return "suspended";
  return std::string(s);
}

namespace {

// Trimmed and ASCII-lower-cased: the one form tags are compared in.
std::string tag_key(std::string_view t) {
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.front()))) t.remove_prefix(1);
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.remove_suffix(1);
  std::string out(t);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

}  // namespace

std::vector<std::string> parse_tags(std::string_view csv) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= csv.size()) {
    size_t comma = csv.find(',', start);
    std::string t = tag_key(csv.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (!t.empty() && std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string normalize_tag(std::string_view option, std::string_view tag) {
  std::string t = tag_key(tag);
  if (t.empty() || t.find(',') != std::string::npos)
    usage_error("--" + std::string(option) + ": " + quote(tag) +
                " is not a tag (tags are not empty and have no commas)");
  return t;
}

std::vector<std::string> normalize_tags(std::string_view option,
                                        const std::vector<std::string>& tags) {
  std::vector<std::string> out;
  for (const auto& t : tags) {
    std::string n = normalize_tag(option, t);
    if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(std::move(n));
  }
  return out;
}

bool has_tag(const ordered_json& tags, std::string_view tag) {
  if (!tags.is_array()) return false;
  std::string want = tag_key(tag);
  for (const auto& t : tags)
    if (t.is_string() && tag_key(t.get_ref<const std::string&>()) == want) return true;
  return false;
}

std::map<std::string, std::string> extra_config_map(const xml::Node* val) {
  std::map<std::string, std::string> out;
  if (!val) return out;
  for (const auto& ov : val->children) out[ov.child_text("key")] = ov.child_text("value");
  return out;
}

const std::vector<std::string>& vm_record_paths() {
  static const std::vector<std::string> kPaths = {"name",
                                                  "config.uuid",
                                                  "runtime.powerState",
                                                  "config.hardware.numCPU",
                                                  "config.hardware.memoryMB",
                                                  "config.hardware.device",
                                                  "guest.ipAddress",
                                                  "config.extraConfig",
                                                  "config.guestId",
                                                  "config.files.vmPathName",
                                                  "config.template"};
  return kPaths;
}

const std::vector<vim::ValueFilter>& vm_record_filters() {
  static const std::vector<vim::ValueFilter> kFilters = {
      // disk_bytes(): a VirtualDisk's capacityInBytes, else capacityInKB.
      {"config.hardware.device",
       [](size_t depth, const xml::Node&, std::string_view name, std::string_view type) {
         if (depth == 1) return type == "VirtualDisk";
         return depth == 2 && (name == "capacityInBytes" || name == "capacityInKB");
       }},
      // extra_config_map(): every key, the value of ceso.tags only (key comes
      // first in an OptionValue).
      {"config.extraConfig",
       [](size_t depth, const xml::Node& parent, std::string_view name, std::string_view) {
         if (depth == 1) return true;
         if (depth == 2 && name == "key") return true;
         return depth == 2 && name == "value" && parent.child_text("key") == "ceso.tags";
       }},
  };
  return kFilters;
}

ordered_json vm_record(const vim::ObjectContent& vm, const Endpoint& ep) {
  Fields r;
  r("type", "vm")("endpoint", ep.id)("id", vm.obj.value)("name", vm.text("name"))(
      "uuid", vm.text("config.uuid"))("power", power_word(vm.text("runtime.powerState")))(
      "cpus", to_long(vm.text("config.hardware.numCPU")))(
      "memory_mib", to_long(vm.text("config.hardware.memoryMB")));
  ordered_json disks = ordered_json::array();
  for (const xml::Node* d : devices(vm))
    if (d->type() == "VirtualDisk") disks.push_back(gib(disk_bytes(*d)));
  r("disks_gib", std::move(disks));
  std::string ip = vm.text("guest.ipAddress");
  r("ip", ip.empty() ? ordered_json(nullptr) : ordered_json(std::move(ip)));
  auto extra = extra_config_map(vm.prop("config.extraConfig"));
  r("tags", parse_tags(extra["ceso.tags"]))("guest_id", vm.text("config.guestId"));
  std::string vmx = vm.text("config.files.vmPathName");
  r("datastore", datastore_of(vmx))("vmx", std::move(vmx));
  if (vm.text("config.template") == "true") r("template", true);
  return std::move(r.object);
}

const std::vector<std::string>& vm_detail_paths() {
  static const std::vector<std::string> kPaths = [] {
    std::vector<std::string> p = vm_record_paths();
    for (const char* extra :
         {"config.instanceUuid", "config.annotation", "config.firmware", "config.version",
          "config.guestFullName", "config.hardware.numCoresPerSocket",
          "config.changeTrackingEnabled", "guest.toolsStatus", "guest.toolsRunningStatus",
          "guest.toolsVersion", "guest.toolsVersionStatus2", "guest.hostName", "guest.net",
          "snapshot", "runtime.bootTime", "summary.storage.committed",
          "summary.storage.uncommitted"})
      p.emplace_back(extra);
    return p;
  }();
  return kPaths;
}

const std::vector<vim::ValueFilter>& vm_detail_filters() {
  // What vm_details (and vm_pci_devices) read of a device; keep in step
  // with them. Depth 1: a device; 2: its fields; 3: fields of its backing,
  // deviceInfo and connectable; 4: of backing/port and backing/allowedDevice.
  static const std::vector<vim::ValueFilter> kFilters = {
      {"config.hardware.device",
       [](size_t depth, const xml::Node& parent, std::string_view name, std::string_view type) {
         static const std::set<std::string, std::less<>> kFields = {
             "backing",     "deviceInfo", "key",         "controllerKey",   "unitNumber",
             "connectable", "macAddress", "addressType", "capacityInBytes", "capacityInKB"};
         static const std::set<std::string, std::less<>> kBacking = {
             "fileName",   "thinProvisioned", "eagerlyScrub", "diskMode", "deviceName", "port",
             "assignedId", "allowedDevice",   "id",           "deviceId", "systemId",   "vendorId"};
         switch (depth) {
           case 1:
             return type == "VirtualDisk" || type == "VirtualCdrom" ||
                    type == "VirtualPCIPassthrough" || is_nic_type(type) ||
                    is_listed_controller(type);
           case 2:
             return kFields.count(name) > 0;
           case 3:
             if (parent.name == "deviceInfo") return name == "label";
             if (parent.name == "connectable")
               return name == "connected" || name == "startConnected";
             return parent.name == "backing" && kBacking.count(name) > 0;
           case 4:
             if (parent.name == "port") return name == "portgroupKey";
             return parent.name == "allowedDevice" && (name == "vendorId" || name == "deviceId");
           default:
             return false;
         }
       }},
  };
  return kFilters;
}

ordered_json vm_details(const vim::ObjectContent& vm, const Endpoint& ep, bool decode) {
  ordered_json r = vm_record(vm, ep);
  r["instance_uuid"] = vm.text("config.instanceUuid");
  r["annotation"] = vm.text("config.annotation");
  r["guest_full_name"] = vm.text("config.guestFullName");
  r["hardware"] = Fields()("cpus", to_long(vm.text("config.hardware.numCPU")))(
                      "cores_per_socket", to_long(vm.text("config.hardware.numCoresPerSocket"), 1))(
                      "memory_mib", to_long(vm.text("config.hardware.memoryMB")))(
                      "firmware", vm.text("config.firmware"))("version", vm.text("config.version"))(
                      "cbt", vm.text("config.changeTrackingEnabled") == "true")
                      .object;

  ordered_json disks = ordered_json::array(), nics = ordered_json::array(),
               cdroms = ordered_json::array(), controllers = ordered_json::array();
  for (const xml::Node* d : devices(vm)) {
    std::string type = d->type();
    const xml::Node* backing = d->child("backing");
    std::string label = d->find_text("deviceInfo/label");
    if (type == "VirtualDisk") {
      std::string file = backing ? backing->child_text("fileName") : "";
      std::string provisioning = "thick";
      if (backing && backing->child_text("thinProvisioned") == "true")
        provisioning = "thin";
      else if (backing && backing->child_text("eagerlyScrub") == "true")
        provisioning = "eagerzeroedthick";
      uint64_t bytes = disk_bytes(*d);
      std::string datastore = datastore_of(file);
      disks.push_back(Fields()("label", std::move(label))("file", std::move(file))(
                          "datastore", std::move(datastore))("capacity_gib", gib(bytes))(
                          "capacity_bytes", bytes)("provisioning", std::move(provisioning))(
                          "mode", backing ? backing->child_text("diskMode") : "")(
                          "key", to_long(d->child_text("key")))(
                          "controller_key", to_long(d->child_text("controllerKey")))(
                          "unit", to_long(d->child_text("unitNumber")))
                          .object);
    } else if (is_nic(*d)) {
      std::string network = backing ? backing->child_text("deviceName") : "";
      if (network.empty() && backing) network = backing->find_text("port/portgroupKey");
      nics.push_back(
          Fields()("label", std::move(label))("type", nic_type(type))(
              "mac", d->child_text("macAddress"))("address_type", d->child_text("addressType"))(
              "network", std::move(network))("connected",
                                             d->find_text("connectable/connected") == "true")(
              "start_connected", d->find_text("connectable/startConnected") == "true")(
              "key", to_long(d->child_text("key")))
              .object);
    } else if (type == "VirtualCdrom") {
      std::string iso = backing && backing->type() == "VirtualCdromIsoBackingInfo"
                            ? backing->child_text("fileName")
                            : "";
      cdroms.push_back(
          Fields()("label", std::move(label))(
              "iso", iso.empty() ? ordered_json(nullptr) : ordered_json(std::move(iso)))(
              "connected", d->find_text("connectable/connected") == "true")(
              "start_connected", d->find_text("connectable/startConnected") == "true")
              .object);
    } else if (is_listed_controller(type)) {
      controllers.push_back(
          Fields()("label", std::move(label))("type", type)("key", to_long(d->child_text("key")))
              .object);
    }
  }
  r["disks"] = std::move(disks);
  r["nics"] = std::move(nics);
  r["cdroms"] = std::move(cdroms);
  r["controllers"] = std::move(controllers);

  std::string current;
  ordered_json snaps = ordered_json::array();
  if (const xml::Node* s = vm.prop("snapshot")) {
    current = s->child_text("currentSnapshot");
    for (const xml::Node* root : s->all("rootSnapshotList"))
      snaps.push_back(snapshot_tree(*root, current));
  }
  r["snapshots"] = std::move(snaps);

  r["tools"] =
      Fields()("status", vm.text("guest.toolsStatus"))(
          "running", vm.text("guest.toolsRunningStatus"))("version", vm.text("guest.toolsVersion"))(
          "version_status", vm.text("guest.toolsVersionStatus2"))
          .object;
  ordered_json ips = ordered_json::array();
  if (const xml::Node* net = vm.prop("guest.net"))
    for (const auto& nic : net->children)
      for (const xml::Node* ip : nic.all("ipAddress"))
        if (std::find(ips.begin(), ips.end(), ip->text) == ips.end()) ips.push_back(ip->text);
  std::string primary = vm.text("guest.ipAddress");
  if (!primary.empty() && std::find(ips.begin(), ips.end(), primary) == ips.end())
    ips.insert(ips.begin(), primary);
  r["ips"] = std::move(ips);
  std::string host = vm.text("guest.hostName");
  r["guest_hostname"] = host.empty() ? ordered_json(nullptr) : ordered_json(host);
  std::string committed = vm.text("summary.storage.committed");
  std::string uncommitted = vm.text("summary.storage.uncommitted");
  r["storage"] = Fields()("committed_bytes", committed.empty() ? 0 : std::stoull(committed))(
                     "uncommitted_bytes", uncommitted.empty() ? 0 : std::stoull(uncommitted))
                     .object;

  auto extra = extra_config_map(vm.prop("config.extraConfig"));
  ordered_json gi = ordered_json::object();
  for (const auto& [k, v] : extra) {
    if (k.rfind("guestinfo.", 0) != 0) continue;
    gi[k] = v;
  }
  if (decode) {
    // Replace encoded documents by their text, keeping the encoding key so
    // the reader sees what was stored.
    ordered_json decoded = ordered_json::object();
    for (const auto& [k, v] : extra) {
      if (k.rfind("guestinfo.", 0) != 0) continue;
      auto enc = extra.find(k + ".encoding");
      if (enc != extra.end()) {
        try {
          decoded[k] = decode_guestinfo_value(v, enc->second);
        } catch (const Error& e) {
          decoded[k] = v;
          decoded[k + ".decode_error"] = e.what();
        }
      } else {
        decoded[k] = v;
      }
    }
    gi = std::move(decoded);
  }
  r["guestinfo"] = std::move(gi);
  // PCI passthrough devices (ceso-pci): a VM with one cannot be snapshotted.
  const xml::Node* devices = vm.prop("config.hardware.device");
  r["pci"] = vm_pci_json(devices ? vm_pci_devices(*devices) : std::vector<VmPciDevice>{});
  return r;
}

std::vector<std::string> vm_owned_fields(std::initializer_list<std::string_view> results) {
  // vm_record's fields, then vm_details' (docs/design.md "Types").
  static const char* const kFields[] = {"type",
                                        "endpoint",
                                        "id",
                                        "name",
                                        "uuid",
                                        "power",
                                        "cpus",
                                        "memory_mib",
                                        "disks_gib",
                                        "ip",
                                        "tags",
                                        "guest_id",
                                        "datastore",
                                        "vmx",
                                        "template",
                                        "instance_uuid",
                                        "annotation",
                                        "guest_full_name",
                                        "hardware",
                                        "disks",
                                        "nics",
                                        "cdroms",
                                        "controllers",
                                        "snapshots",
                                        "tools",
                                        "ips",
                                        "guest_hostname",
                                        "storage",
                                        "guestinfo",
                                        "pci"};
  std::vector<std::string> out(std::begin(kFields), std::end(kFields));
  for (auto r : results) out.emplace_back(r);
  return out;
}

// ---- finding a target's VM ----

namespace {

// A record's field as a string: "" when absent or null; bad input otherwise.
std::string identity_field(const Target& t, const char* key) {
  auto it = t.record.find(key);
  if (it == t.record.end() || it->is_null()) return {};
  if (!it->is_string())
    bad_input("error (at " + t.origin + "): field \"" + key + "\" is not a string");
  return it->get<std::string>();
}

std::string describe(const VmIdentity& v) {
  std::string out = quote_name(v.name) + " (" + v.id;
  if (!v.uuid.empty()) out += ", uuid " + v.uuid;
  return out + ")";
}

[[noreturn]] void mismatch(const VmIdentity& want, std::string_view origin,
                           std::string_view endpoint, const std::string& why) {
  std::string what = "VM " + quote_name(want.name);
  if (!want.id.empty()) what += " id " + want.id;
  if (!want.uuid.empty()) what += " uuid " + want.uuid;
  bad_input("error (at " + std::string(origin) + "): the record's " + what + " matches no VM on " +
            std::string(endpoint) + ": " + why + "; nothing done");
}

// UUIDs compare without regard to case (RFC 4122); ESXi prints lower case.
bool same_uuid(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::vector<VmIdentity> named(const std::vector<VmIdentity>& all, const std::string& name) {
  std::vector<VmIdentity> out;
  for (const auto& v : all)
    if (same_vm_name(v.name, name)) out.push_back(v);
  return out;
}

// Why the VM with the record's id is not the record's VM.
std::string id_verdict(const VmIdentity& want, const std::optional<VmIdentity>& by_id) {
  if (want.id.empty()) return "the record has no id";
  if (!by_id) return "no VM has id " + want.id + " now";
  if (!want.uuid.empty()) return "VM " + want.id + " is now " + describe(*by_id) + ", another uuid";
  return "VM " + want.id + " is now named " + quote_name(by_id->name);
}

}  // namespace

VmIdentity wanted_identity(const Target& t) {
  if (t.record.empty()) return {"", t.name, ""};
  return {identity_field(t, "id"), t.name, identity_field(t, "uuid")};
}

VmIdentity match_vm(const VmIdentity& want, const std::optional<VmIdentity>& by_id,
                    const std::function<std::vector<VmIdentity>()>& listing, bool from_record,
                    std::string_view origin, std::string_view endpoint) {
  if (by_id && !want.id.empty() && by_id->id == want.id) {
    if (!want.uuid.empty() ? same_uuid(by_id->uuid, want.uuid)
                           : same_vm_name(by_id->name, want.name))
      return *by_id;  // with a uuid, a renamed VM is still the same VM
  }
  bool by_name_only = want.id.empty() && want.uuid.empty();
  if (from_record && !by_name_only && want.uuid.empty())
    mismatch(want, origin, endpoint,
             id_verdict(want, by_id) +
                 " (a record without uuid is matched by id and name only, never by name alone)");
  std::vector<VmIdentity> candidates = named(listing(), want.name);
  if (by_name_only) {
    if (candidates.empty())
      fail("no VM named " + quote_name(want.name) + " on " + std::string(endpoint));
    if (candidates.size() > 1) {
      std::string ids;
      for (const auto& v : candidates) ids += (ids.empty() ? "" : ", ") + v.id;
      fail(std::to_string(candidates.size()) + " VMs are named " + quote_name(want.name) + " on " +
           std::string(endpoint) + " (" + ids + "); pass the record with its id");
    }
    return candidates.front();
  }
  // The record has a uuid: a VM of its name with its uuid (re-registered).
  std::vector<VmIdentity> same;
  for (const auto& v : candidates)
    if (same_uuid(v.uuid, want.uuid)) same.push_back(v);
  if (same.size() == 1) return same.front();
  if (same.size() > 1) {
    std::string ids;
    for (const auto& v : same) ids += (ids.empty() ? "" : ", ") + v.id;
    mismatch(want, origin, endpoint,
             id_verdict(want, by_id) + ", and " + std::to_string(same.size()) +
                 " VMs have its name and uuid (" + ids + ")");
  }
  std::string others;
  for (const auto& v : candidates) others += (others.empty() ? "" : ", ") + describe(v);
  mismatch(want, origin, endpoint,
           id_verdict(want, by_id) + ", and " +
               (others.empty() ? "no VM is named " + quote_name(want.name)
                               : "the VM named so now is " + others + ", another uuid"));
}

VmLocator::VmLocator(std::function<Endpoint()> default_endpoint)
    : default_endpoint_(std::move(default_endpoint)) {}
VmLocator::~VmLocator() = default;

vim::Client& VmLocator::default_client() {
  if (default_id_.empty()) {
    Endpoint ep = default_endpoint_();
    default_id_ = ep.id;
    auto& slot = clients_[default_id_];
    if (!slot) slot = std::make_unique<vim::Client>(std::move(ep));
  }
  return *clients_.at(default_id_);
}

vim::Client& VmLocator::client_for(const Target& target) {
  auto ep_field = target.record.find("endpoint");
  if (ep_field == target.record.end()) return default_client();
  // A record that names its host is acted on there or not at all: never on
  // the default host because the field was unusable.
  if (!ep_field->is_string())
    bad_input("error (at " + target.origin + "): field \"endpoint\" is not a string");
  std::string id = ep_field->get<std::string>();
  if (auto it = clients_.find(id); it != clients_.end()) return *it->second;
  vim::Client& def = default_client();
  if (def.endpoint().id == id) return def;
  Endpoint ep = endpoint_for_record(id, def.endpoint());
  std::string key = ep.id;
  auto& slot = clients_[key];
  if (!slot) slot = std::make_unique<vim::Client>(std::move(ep));
  return *slot;
}

namespace {

const std::vector<std::string> kIdentityPaths = {"name", "config.uuid"};

VmIdentity identity_of(const vim::ObjectContent& o) {
  return {o.obj.value, o.text("name"), o.text("config.uuid")};
}

std::vector<VmIdentity> list_identities(vim::Client& c) {
  std::vector<VmIdentity> out;
  for (const auto& o : c.retrieve_all_vms(kIdentityPaths)) out.push_back(identity_of(o));
  return out;
}

}  // namespace

LocatedVm VmLocator::locate(const Target& target) {
  auto results = locate_batch({&target});
  if (results.front().error) std::rethrow_exception(results.front().error);
  return results.front().found->vm;
}

std::vector<LookupResult> VmLocator::locate_batch(const std::vector<const Target*>& targets,
                                                  const std::vector<std::string>& paths,
                                                  const std::vector<vim::ValueFilter>& filters) {
  std::vector<LookupResult> out(targets.size());
  std::vector<std::string> all_paths = kIdentityPaths;
  for (const auto& p : paths)
    if (std::find(all_paths.begin(), all_paths.end(), p) == all_paths.end()) all_paths.push_back(p);
  // The targets of each endpoint, in input order.
  std::vector<std::pair<vim::Client*, std::vector<size_t>>> groups;
  std::vector<VmIdentity> wants(targets.size());
  for (size_t i = 0; i < targets.size(); ++i) {
    try {
      vim::Client* c = &client_for(*targets[i]);
      wants[i] = wanted_identity(*targets[i]);
      auto g = std::find_if(groups.begin(), groups.end(), [&](auto& e) { return e.first == c; });
      if (g == groups.end()) g = groups.insert(groups.end(), {c, {}});
      g->second.push_back(i);
    } catch (...) {
      out[i].error = std::current_exception();
    }
  }
  auto unique_refs = [](const std::vector<std::string>& ids) {
    std::vector<vim::MoRef> refs;
    std::set<std::string> seen;
    for (const auto& id : ids)
      if (!id.empty() && seen.insert(id).second) refs.push_back({"VirtualMachine", id});
    return refs;
  };
  auto read = [&](vim::Client& c, const std::vector<vim::MoRef>& refs) {
    std::map<std::string, vim::ObjectContent> by_id;
    for (auto& o : c.retrieve(refs, all_paths, filters)) by_id.emplace(o.obj.value, std::move(o));
    return by_id;
  };
  for (auto& [client, indices] : groups) {
    vim::Client& c = *client;
    const std::string& endpoint = c.endpoint().id;
    try {
      std::vector<std::string> ids;
      for (size_t i : indices) ids.push_back(wants[i].id);
      auto by_id = read(c, unique_refs(ids));
      auto checked = std::chrono::steady_clock::now();
      std::optional<std::vector<VmIdentity>> listed;  // once per batch and endpoint
      auto listing = [&] {
        if (!listed) listed = list_identities(c);
        return *listed;
      };
      std::vector<std::pair<size_t, VmIdentity>> from_listing;
      // How many targets may still take each VM's properties: the last one
      // takes them without a copy.
      std::map<std::string, size_t> takers;
      for (size_t i : indices)
        if (!wants[i].id.empty()) ++takers[wants[i].id];
      for (size_t i : indices) {
        try {
          const Target& t = *targets[i];
          std::optional<VmIdentity> by;
          auto it = wants[i].id.empty() ? by_id.end() : by_id.find(wants[i].id);
          if (it != by_id.end()) by = identity_of(it->second);
          VmIdentity vm = match_vm(wants[i], by, listing, !t.record.empty(), t.origin, endpoint);
          if (by && by->id == vm.id) {
            bool last = --takers[it->first] == 0;
            out[i].found = FoundVm{{&c, {"VirtualMachine", vm.id}, vm.name, vm.uuid},
                                   last ? std::move(it->second) : it->second,
                                   checked};
          } else
            from_listing.emplace_back(i, std::move(vm));
        } catch (...) {
          out[i].error = std::current_exception();
        }
      }
      if (from_listing.empty()) continue;
      // Found in a listing: make sure each VM still is what the listing said
      // before anything acts on its id (and read its paths).
      ids.clear();
      for (const auto& [i, vm] : from_listing) ids.push_back(vm.id);
      auto now = read(c, unique_refs(ids));
      checked = std::chrono::steady_clock::now();
      for (const auto& [i, vm] : from_listing) {
        auto it = now.find(vm.id);
        if (it == now.end() || it->second.text("name") != vm.name ||
            it->second.text("config.uuid") != vm.uuid) {
          try {
            fail("VM " + describe(vm) + " changed on " + endpoint +
                 " while it was being looked up; try again");
          } catch (...) {
            out[i].error = std::current_exception();
          }
          continue;
        }
        out[i].found =
            FoundVm{{&c, {"VirtualMachine", vm.id}, vm.name, vm.uuid}, it->second, checked};
      }
    } catch (...) {
      // A call failed: the failure of every target of this endpoint not
      // settled yet.
      for (size_t i : indices)
        if (!out[i].found && !out[i].error) out[i].error = std::current_exception();
    }
  }
  return out;
}

}  // namespace ceso
