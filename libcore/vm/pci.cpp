#include "vm/pci.hpp"

#include <algorithm>
#include <charconv>
#include <map>

#include "base/error.hpp"
#include "base/log.hpp"
#include "base/util.hpp"
#include "vm/host.hpp"
#include "vm/vm.hpp"

namespace ceso {

namespace {

using xml::tag;

// Hex digits only (no sign, no prefix), at most `max_digits`, or nullopt.
std::optional<unsigned> parse_hex(std::string_view s, size_t max_digits) {
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  unsigned v = 0;
  for (char c : s) {
    int d = hex_value(c);
    if (d < 0) return std::nullopt;
    v = v * 16 + static_cast<unsigned>(d);
  }
  return v;
}

// A host's number: hardware.pciDevice ids are xsd:short, so 0x8086 arrives
// as -32634. Anything that is not a 16-bit number is the host's error.
uint16_t short_value(const std::string& text, std::string_view field) {
  int v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || v < -32768 || v > 65535)
    fail("the host sent " + quote(text) + " as " + std::string(field) + ", not a 16-bit number");
  return static_cast<uint16_t>(v);
}

std::string power_of(std::string_view state) { return power_word(state); }

}  // namespace

std::string hex4(uint16_t v) {
  static const char* kDigits = "0123456789abcdef";
  std::string s(4, '0');
  for (int i = 3; i >= 0; --i, v = static_cast<uint16_t>(v >> 4)) s[i] = kDigits[v & 0xf];
  return s;
}

std::string pci_ids_text(PciIds ids) { return hex4(ids.vendor) + ":" + hex4(ids.device); }

std::optional<PciIds> decimal_reading(std::string_view text) {
  size_t colon = text.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  auto one = [](std::string_view s) -> std::optional<uint16_t> {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v > 0xffff)
      return std::nullopt;
    return static_cast<uint16_t>(v);
  };
  auto v = one(text.substr(0, colon)), d = one(text.substr(colon + 1));
  if (!v || !d) return std::nullopt;
  return PciIds{*v, *d};
}

std::string parse_pci_address(std::string_view text, std::string_view what) {
  auto bad = [&](std::string_view why) -> std::string {
    usage_error(std::string(what) + ": " + quote(text) + " is not a PCI address (" +
                std::string(why) + "; e.g. 0000:3b:00.0)");
  };
  if (text.empty()) bad("empty");
  if (text.size() > 12) bad("too long");
  std::string_view rest = text;
  unsigned segment = 0;
  // segment:bus:slot.function or bus:slot.function
  size_t colons = static_cast<size_t>(std::count(rest.begin(), rest.end(), ':'));
  if (colons == 2) {
    auto s = parse_hex(rest.substr(0, rest.find(':')), 4);
    if (!s || rest.find(':') != 4) bad("the segment is 4 hex digits");
    segment = *s;
    rest.remove_prefix(5);
  } else if (colons != 1) {
    bad("expected segment:bus:slot.function");
  }
  size_t colon = rest.find(':'), dot = rest.find('.');
  if (colon != 2 || dot != 5 || rest.size() != 7) bad("expected bus:slot.function as 3b:00.0");
  auto bus = parse_hex(rest.substr(0, 2), 2), slot = parse_hex(rest.substr(3, 2), 2);
  if (!bus) bad("the bus is 2 hex digits");
  if (!slot || *slot > 0x1f) bad("the slot is 2 hex digits, 00 to 1f");
  char fn = rest[6];
  if (fn < '0' || fn > '7') bad("the function is 0 to 7");
  char out[16];
  std::snprintf(out, sizeof out, "%04x:%02x:%02x.%c", segment, *bus, *slot, fn);
  return out;
}

PciIds parse_pci_ids(std::string_view text, std::string_view what) {
  auto bad = [&](std::string_view why) -> PciIds {
    usage_error(std::string(what) + ": " + quote(text) + " is not VENDOR:DEVICE (" +
                std::string(why) + "; hex ids as lspci -nn prints them, e.g. 10de:1eb8)");
  };
  size_t colon = text.find(':');
  if (text.empty()) return bad("empty");
  if (colon == std::string_view::npos || text.find(':', colon + 1) != std::string_view::npos)
    return bad("one colon between the two ids");
  auto one = [&](std::string_view s) {
    if (s.starts_with("0x") || s.starts_with("0X")) s.remove_prefix(2);
    return parse_hex(s, 4);
  };
  auto v = one(text.substr(0, colon)), d = one(text.substr(colon + 1));
  if (!v || !d) return bad("each id is 1 to 4 hex digits");
  if (*v == 0 || *v == 0xffff) return bad("vendor 0000 and ffff are not devices");
  return {static_cast<uint16_t>(*v), static_cast<uint16_t>(*d)};
}

std::string pci_class_name(uint16_t class_id) {
  static const std::map<uint16_t, const char*> kNames = {
      {0x0100, "SCSI storage controller"},
      {0x0104, "RAID bus controller"},
      {0x0106, "SATA controller"},
      {0x0107, "Serial Attached SCSI controller"},
      {0x0108, "Non-Volatile memory controller"},
      {0x0200, "Ethernet controller"},
      {0x0207, "Infiniband controller"},
      {0x0280, "Network controller"},
      {0x0300, "VGA compatible controller"},
      {0x0302, "3D controller"},
      {0x0380, "Display controller"},
      {0x0401, "Multimedia audio controller"},
      {0x0403, "Audio device"},
      {0x0600, "Host bridge"},
      {0x0601, "ISA bridge"},
      {0x0604, "PCI bridge"},
      {0x0680, "Bridge"},
      {0x0c03, "USB controller"},
      {0x0c05, "SMBus"},
      {0x0c04, "Fibre Channel"},
      {0x1200, "Processing accelerators"},
  };
  if (auto it = kNames.find(class_id); it != kNames.end()) return it->second;
  char out[16];
  std::snprintf(out, sizeof out, "class 0x%04x", class_id);
  return out;
}

bool is_gpu_class(uint16_t class_id) { return (class_id >> 8) == 0x03; }

std::vector<PciDevice> pci_devices_from(const xml::Node* pci_devices,
                                        const xml::Node* passthru_info) {
  std::vector<PciDevice> out;
  if (!pci_devices) return out;
  std::map<std::string, const xml::Node*> info;
  if (passthru_info)
    for (const auto& i : passthru_info->children) info[i.child_text("id")] = &i;
  for (const auto& n : pci_devices->children) {
    PciDevice d;
    d.id = n.child_text("id");
    if (d.id.empty()) continue;
    d.ids = {short_value(n.child_text("vendorId"), "vendorId"),
             short_value(n.child_text("deviceId"), "deviceId")};
    d.sub_ids = {short_value(n.child_text("subVendorId"), "subVendorId"),
                 short_value(n.child_text("subDeviceId"), "subDeviceId")};
    d.class_id = short_value(n.child_text("classId"), "classId");
    d.vendor_name = n.child_text("vendorName");
    d.device_name = n.child_text("deviceName");
    if (auto it = info.find(d.id); it != info.end()) {
      d.capable = it->second->child_text("passthruCapable") == "true";
      d.enabled = it->second->child_text("passthruEnabled") == "true";
      d.active = it->second->child_text("passthruActive") == "true";
    }
    out.push_back(std::move(d));
  }
  return out;
}

std::vector<VmPciDevice> vm_pci_devices(const xml::Node& devices) {
  std::vector<VmPciDevice> out;
  for (const auto& d : devices.children) {
    if (d.type() != "VirtualPCIPassthrough") continue;
    const xml::Node* b = d.child("backing");
    if (!b) continue;
    VmPciDevice v;
    v.node = &d;
    v.key = std::atoi(d.child_text("key").c_str());
    v.label = d.find_text("deviceInfo/label");
    if (b->type() == "VirtualPCIPassthroughDynamicBackingInfo") {
      v.dynamic = true;
      for (const xml::Node* a : b->all("allowedDevice")) {
        long vendor = std::atol(a->child_text("vendorId").c_str());
        long device = std::atol(a->child_text("deviceId").c_str());
        v.allowed.push_back({static_cast<uint16_t>(vendor), static_cast<uint16_t>(device)});
      }
      v.assigned_id = b->child_text("assignedId");
    } else if (b->type() == "VirtualPCIPassthroughDeviceBackingInfo") {
      v.id = b->child_text("id");
      v.device_id = b->child_text("deviceId");
      v.system_id = b->child_text("systemId");
      int vendor = std::atoi(b->child_text("vendorId").c_str());
      v.vendor_id = static_cast<uint16_t>(vendor);
    } else {
      continue;  // vGPU and others: not ceso's
    }
    out.push_back(std::move(v));
  }
  return out;
}

ordered_json vm_pci_json(const std::vector<VmPciDevice>& devices) {
  ordered_json out = ordered_json::array();
  for (const auto& d : devices) {
    ordered_json j;
    j["key"] = d.key;
    j["kind"] = d.dynamic ? "dynamic" : "static";
    if (d.dynamic) {
      ordered_json allowed = ordered_json::array();
      for (const auto& a : d.allowed) allowed.push_back(pci_ids_text(a));
      j["allowed"] = std::move(allowed);
      j["address"] = d.assigned_id;
    } else {
      j["address"] = d.id;
      j["vendor_id"] = hex4(d.vendor_id);
      j["device_id"] = d.device_id;
    }
    j["label"] = d.label;
    out.push_back(std::move(j));
  }
  return out;
}

PassthroughTarget passthrough_target_from(const xml::Node& config_target) {
  PassthroughTarget t;
  for (const xml::Node* p : config_target.all("pciPassthrough")) {
    if (p->type() != "VirtualMachinePciPassthroughInfo") continue;  // vGPU profiles etc.
    const xml::Node* dev = p->child("pciDevice");
    if (!dev) continue;
    xml::Node list;
    list.children.push_back(*dev);
    auto devs = pci_devices_from(&list, nullptr);
    if (devs.empty()) continue;
    t.devices.push_back({std::move(devs.front()), p->child_text("systemId")});
  }
  for (const xml::Node* d : config_target.all("dynamicPassthrough")) {
    long vendor = std::atol(d->child_text("vendorId").c_str());
    long device = std::atol(d->child_text("deviceId").c_str());
    t.dynamic.push_back({static_cast<uint16_t>(vendor), static_cast<uint16_t>(device)});
  }
  return t;
}

PassthroughTarget query_passthrough_target(vim::Client& c, const vim::MoRef& browser,
                                           const vim::MoRef& host) {
  if (browser.empty()) fail("has no environment browser: cannot ask what it may attach");
  std::string args = host.empty() ? "" : vim::moref_xml("host", host);
  xml::Node resp = c.call("QueryConfigTarget", browser, args);
  const xml::Node* rv = resp.child("returnval");
  return rv ? passthrough_target_from(*rv) : PassthroughTarget{};
}

std::string static_passthrough_xml(const PciDevice& d, const std::string& system_id, int key) {
  // VirtualDeviceDeviceBackingInfo first (deviceName is required), then the
  // passthrough fields in WSDL order. vendorId is an xsd:short.
  std::string backing =
      "<backing xsi:type=\"VirtualPCIPassthroughDeviceBackingInfo\">" + tag("deviceName", "") +
      tag("id", d.id) + tag("deviceId", hex4(d.ids.device)) + tag("systemId", system_id) +
      tag("vendorId", std::to_string(static_cast<int16_t>(d.ids.vendor))) + "</backing>";
  return "<device xsi:type=\"VirtualPCIPassthrough\">" + tag("key", std::to_string(key)) + backing +
         "</device>";
}

std::string dynamic_passthrough_xml(PciIds ids, int key) {
  std::string backing = "<backing xsi:type=\"VirtualPCIPassthroughDynamicBackingInfo\">" +
                        tag("deviceName", "") + "<allowedDevice>" +
                        tag("vendorId", std::to_string(ids.vendor)) +
                        tag("deviceId", std::to_string(ids.device)) + "</allowedDevice></backing>";
  return "<device xsi:type=\"VirtualPCIPassthrough\">" + tag("key", std::to_string(key)) + backing +
         "</device>";
}

std::vector<HostPci> read_host_pci(vim::Client& c) {
  std::vector<vim::MoRef> hosts = host_systems(c);
  std::vector<HostPci> out;
  for (auto& o : c.retrieve(hosts, {"name", "configManager.pciPassthruSystem", "hardware.pciDevice",
                                    "config.pciPassthruInfo"})) {
    HostPci h;
    h.host = o.obj;
    h.name = o.text("name");
    if (const xml::Node* s = o.prop("configManager.pciPassthruSystem"))
      h.passthru_system = vim::moref_of(*s);
    h.devices = pci_devices_from(o.prop("hardware.pciDevice"), o.prop("config.pciPassthruInfo"));
    for (auto& d : h.devices) d.host = h.name, d.host_ref = h.host;
    out.push_back(std::move(h));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  // Who uses what: static backings name the device; a dynamic one names the
  // device the host assigned while the VM is on.
  std::map<std::string, HostPci*> by_host;
  for (auto& h : out) by_host[h.host.value] = &h;
  for (const auto& vm : c.retrieve_all_vms(
           {"name", "runtime.powerState", "runtime.host", "config.hardware.device"})) {
    const xml::Node* dev = vm.prop("config.hardware.device");
    const xml::Node* host = vm.prop("runtime.host");
    if (!dev || !host) continue;
    auto it = by_host.find(host->text);
    if (it == by_host.end()) continue;
    PciUser user{vm.obj.value, vm.text("name"), power_of(vm.text("runtime.powerState"))};
    for (const auto& p : vm_pci_devices(*dev)) {
      std::string id = p.dynamic ? (user.power == "on" ? p.assigned_id : "") : p.id;
      for (auto& d : it->second->devices)
        if (!id.empty() && d.id == id) {
          if (user.power == "on")
            d.users.insert(d.users.begin(), user);
          else
            d.users.push_back(user);
        }
    }
  }
  return out;
}

void update_passthru(vim::Client& c, const vim::MoRef& system, const std::vector<std::string>& ids,
                     bool enable, bool apply_now) {
  if (system.empty())
    fail("the host has no PCI passthrough system (configManager.pciPassthruSystem)");
  std::string args;
  for (const auto& id : ids)
    args += "<config xsi:type=\"HostPciPassthruConfig\">" + tag("id", id) +
            tag("passthruEnabled", enable ? "true" : "false") +
            // applyNow is API 7.0: an older host refuses the element itself.
            (apply_now ? tag("applyNow", "true") : "") + "</config>";
  c.call("UpdatePassthruConfig", system, args);
}

ordered_json pci_record(const PciDevice& d, const std::string& endpoint) {
  ordered_json r;
  r["type"] = "pci";
  r["endpoint"] = endpoint;
  r["host"] = d.host;
  r["name"] = d.id;  // what the record names, as every record has one
  r["address"] = d.id;
  r["vendor_id"] = hex4(d.ids.vendor);
  r["device_id"] = hex4(d.ids.device);
  r["ids"] = pci_ids_text(d.ids);
  r["vendor"] = d.vendor_name;
  r["device"] = d.device_name;
  r["sub_ids"] = pci_ids_text(d.sub_ids);
  r["class_id"] = hex4(d.class_id);
  r["class"] = pci_class_name(d.class_id);
  r["gpu"] = is_gpu_class(d.class_id);
  r["passthrough"] = {{"capable", d.capable},
                      {"enabled", d.enabled},
                      {"active", d.active},
                      {"reboot_needed", d.enabled != d.active}};
  r["assignable"] = d.assignable();
  if (d.users.empty()) {
    r["vm"] = nullptr;
  } else {
    r["vm"] = d.users.front().name;
    r["vm_id"] = d.users.front().id;
    r["vm_power"] = d.users.front().power;
  }
  if (d.users.size() > 1) {
    ordered_json all = ordered_json::array();
    for (const auto& u : d.users)
      all.push_back({{"id", u.id}, {"name", u.name}, {"power", u.power}});
    r["vms"] = std::move(all);
  }
  return r;
}

}  // namespace ceso

namespace ceso {

namespace {

// "; 4318:7864 read as decimal is 10de:1eb8, which the host has: write ids
// in hex" when the decimal reading of --gpu names one of `known`.
std::string decimal_hint(const PassthroughRequest& q, const std::vector<PciIds>& known) {
  auto d = q.gpu ? decimal_reading(q.gpu_text) : std::nullopt;
  if (!d || std::find(known.begin(), known.end(), *d) == known.end()) return "";
  return "; " + q.gpu_text + " read as decimal is " + pci_ids_text(*d) +
         ", which the host has: write ids in hex";
}

}  // namespace

AttachPlan plan_attach(vim::Client& c, const vim::MoRef& vm, const vim::MoRef& browser,
                       const vim::MoRef& host, const PassthroughRequest& q) {
  auto target = query_passthrough_target(c, browser, host);
  // Who uses which device on this host (the backings of other VMs).
  std::vector<HostPci> hosts = read_host_pci(c);
  const HostPci* h = nullptr;
  for (const auto& x : hosts)
    if (x.host == host) h = &x;
  auto host_device = [&](const std::string& id) -> const PciDevice* {
    if (h)
      for (const auto& d : h->devices)
        if (d.id == id) return &d;
    return nullptr;
  };
  auto used_by_other = [&](const PciDevice& d) -> const PciUser* {
    for (const auto& u : d.users)
      if (u.id != vm.value) return &u;
    return nullptr;
  };
  AttachPlan plan;
  std::string device_xml;
  bool gpu_class = false;
  if (q.gpu && target.dynamic_supported() && !q.static_only) {
    if (std::find(target.dynamic.begin(), target.dynamic.end(), *q.gpu) == target.dynamic.end()) {
      std::string offered;
      for (const auto& ids : target.dynamic)
        offered += (offered.empty() ? "" : ", ") + pci_ids_text(ids);
      fail("the host offers no device " + pci_ids_text(*q.gpu) +
           " for dynamic passthrough (offered: " + (offered.empty() ? "none" : offered) +
           "; ids are hex, as lspci -nn prints them" + decimal_hint(q, target.dynamic) + ")");
    }
    for (const auto& s : target.devices)
      if (s.device.ids == *q.gpu) gpu_class = gpu_class || is_gpu_class(s.device.class_id);
    device_xml = dynamic_passthrough_xml(*q.gpu, -100);
    plan.params = {{"gpu", pci_ids_text(*q.gpu)}, {"backing", "dynamic"}};
  } else {
    const PassthroughTarget::Static* pick = nullptr;
    std::string busy;
    for (const auto& s : target.devices) {
      bool match = q.gpu ? s.device.ids == *q.gpu : s.device.id == q.address;
      if (!match) continue;
      const PciDevice* hd = host_device(s.device.id);
      if (const PciUser* u = hd ? used_by_other(*hd) : nullptr) {
        busy =
            quote(s.device.id) + " is configured in VM " + quote(u->name) + " (" + u->power + ")";
        continue;
      }
      pick = &s;
      break;
    }
    if (!pick) {
      std::string want = "device " + (q.gpu ? pci_ids_text(*q.gpu) : q.address);
      if (!busy.empty()) fail(want + " is taken: " + busy + " (detach it there first)");
      if (!q.gpu) {
        const PciDevice* hd = host_device(q.address);
        if (!hd) fail("the VM's host has no PCI " + want + " (ceso-pci ls lists them)");
        if (!hd->capable) fail(want + " (" + quote(hd->device_name) + ") cannot be passed through");
        if (!hd->active)
          fail(want + " is not active for passthrough" +
               (hd->enabled ? " until the host reboots"
                            : " (ceso-pci enable " + q.address + ", then reboot the host)"));
      }
      std::vector<PciIds> known;
      for (const auto& s : target.devices) known.push_back(s.device.ids);
      fail("the VM's host offers no " + want +
           " for passthrough (ceso-pci ls --assignable lists what it offers; ids are hex" +
           decimal_hint(q, known) + ")");
    }
    gpu_class = is_gpu_class(pick->device.class_id);
    plan.device = pick->device;
    plan.system_id = pick->system_id;
    device_xml = static_passthrough_xml(pick->device, pick->system_id, -100);
    plan.params = {{"address", pick->device.id},
                   {"ids", pci_ids_text(pick->device.ids)},
                   {"backing", "static"}};
  }
  plan.spec.device_changes.push_back(vmspec::device_change_xml("add", "", device_xml));
  plan.spec.memory_reservation_locked_to_max = true;
  plan.params["memory_reservation_locked_to_max"] = true;
  plan.gpu = gpu_class;
  if (gpu_class) {
    plan.spec.extra_config = {{"pciPassthru.use64bitMMIO", "TRUE"},
                              {"pciPassthru.64bitMMIOSizeGB", std::to_string(q.mmio_gb)}};
    plan.params["mmio_gb"] = q.mmio_gb;
  }
  return plan;
}

AttachPlan plan_attach(vim::Client& c, const vim::MoRef& vm, const PassthroughRequest& q) {
  auto objs = c.retrieve({vm}, {"environmentBrowser", "runtime.host"});
  if (objs.empty()) fail("the VM " + vm.value + " vanished");
  vim::MoRef browser, host;
  if (const auto* b = objs.front().prop("environmentBrowser")) browser = vim::moref_of(*b);
  if (const auto* h = objs.front().prop("runtime.host")) host = vim::moref_of(*h);
  return plan_attach(c, vm, browser, host, q);
}

void apply_attach(vim::Client& c, const vim::MoRef& vm, const AttachPlan& plan) {
  auto resp = c.call("ReconfigVM_Task", vm, plan.spec.xml("spec"));
  std::string task = resp.child_text("returnval");
  if (task.empty()) fail("the host answered ReconfigVM_Task without a task");
  c.wait_for_task({"Task", task});
}

int check_mmio_gb(long gib) {
  if (gib < 1 || gib > 4096 || (gib & (gib - 1)) != 0)
    usage_error("--mmio-gb: " + std::to_string(gib) + " is not a power of two from 1 to 4096");
  return static_cast<int>(gib);
}

}  // namespace ceso
