#include "vm/net.hpp"

#include <algorithm>
#include <map>

#include "base/error.hpp"
#include "base/log.hpp"
#include "base/numbers.hpp"
#include "vm/host.hpp"
#include "vm/names.hpp"
#include "vm/spec.hpp"
#include "vm/vm.hpp"

namespace ceso {

namespace {

using xml::tag;

// A number the host sent, or nullopt when it is not one.
std::optional<int> host_int(const std::string& text) {
  if (text.empty() || text.size() > 9) return std::nullopt;
  size_t i = text[0] == '-' ? 1 : 0;
  if (i == text.size()) return std::nullopt;
  for (size_t k = i; k < text.size(); ++k)
    if (text[k] < '0' || text[k] > '9') return std::nullopt;
  return std::stoi(text);
}

std::optional<int> host_vlan(const std::string& text, std::string_view what) {
  auto v = host_int(text);
  if (!v || *v < 0 || *v > kVlanTrunk) {
    warn("the host sent " + quote(text) + " as the VLAN id of " + std::string(what) +
         ", not a number 0-4095; shown as null");
    return std::nullopt;
  }
  return v;
}

// The VLAN of a distributed portgroup's default port setting.
void dv_vlan(NetEntry& e, const xml::Node* port_config) {
  const xml::Node* vlan = port_config ? port_config->child("vlan") : nullptr;
  if (!vlan) return;
  if (vlan->type() == "VmwareDistributedVirtualSwitchTrunkVlanSpec") {
    std::string ranges;
    for (const xml::Node* r : vlan->all("vlanId"))
      ranges += (ranges.empty() ? "" : ",") + r->child_text("start") + "-" + r->child_text("end");
    e.vlan_ranges = ranges;
    e.vlan = kVlanTrunk;
  } else if (const xml::Node* id = vlan->child("vlanId")) {
    e.vlan = host_vlan(id->text, "distributed portgroup " + quote(e.name));
  }
}

}  // namespace

int parse_vlan(std::string_view text, std::string_view what) {
  std::string w(what);
  w.erase(0, w.find_first_not_of('-'));
  return static_cast<int>(parse_count(w, text, 0, kVlanTrunk));
}

void check_portgroup_name(std::string_view name, std::string_view field, Exit code) {
  check_object_label(name, field, "portgroup name", kMaxPortgroupNameBytes, code);
}

const DvSwitch* NetInventory::dv_switch(std::string_view n) const {
  for (const auto& d : dv_switches)
    if (d.name == n) return &d;
  return nullptr;
}

const NetEntry* NetInventory::dvportgroup(std::string_view n) const {
  for (const auto& d : dvportgroups)
    if (d.name == n) return &d;
  return nullptr;
}

const NetEntry* HostNet::portgroup(std::string_view n) const {
  for (const auto& p : portgroups)
    if (p.name == n) return &p;
  return nullptr;
}

const NetEntry* HostNet::vswitch(std::string_view n) const {
  for (const auto& v : vswitches)
    if (v.name == n) return &v;
  return nullptr;
}

void host_net_from(HostNet& h, const xml::Node& info) {
  std::map<std::string, std::string> switch_by_key;
  for (const xml::Node* v : info.all("vswitch")) {
    NetEntry e;
    e.kind = "vswitch";
    e.name = v->child_text("name");
    e.key = v->child_text("key");
    e.host = h.name;
    e.host_ref = h.host;
    e.ports = host_int(v->child_text("numPorts")).value_or(0);
    e.mtu = host_int(v->child_text("mtu")).value_or(0);
    for (const xml::Node* p : v->all("pnic")) {
      std::string u = p->text;  // "key-vim.host.PhysicalNic-vmnic0"
      auto dash = u.rfind('-');
      e.uplinks.push_back(dash == std::string::npos ? u : u.substr(dash + 1));
    }
    switch_by_key[e.key] = e.name;
    h.vswitches.push_back(std::move(e));
  }
  for (const xml::Node* p : info.all("portgroup")) {
    const xml::Node* spec = p->child("spec");
    if (!spec) continue;
    NetEntry e;
    e.kind = "portgroup";
    e.name = spec->child_text("name");
    e.key = p->child_text("key");
    e.host = h.name;
    e.host_ref = h.host;
    e.vswitch = spec->child_text("vswitchName");
    e.vlan = host_vlan(spec->child_text("vlanId"), "portgroup " + quote(e.name));
    if (const xml::Node* pol = spec->child("policy"))
      e.policy_xml = vmspec::node_xml(*pol, "policy");
    for (const xml::Node* port : p->all("port"))
      if (port->child_text("type") == "host") e.vmkernel = true;
    h.portgroups.push_back(std::move(e));
  }
  for (auto& v : h.vswitches)
    for (const auto& p : h.portgroups)
      if (p.vswitch == v.name) v.portgroups.push_back(p.name);
}

NetInventory read_networks(vim::Client& c) {
  NetInventory inv;
  std::vector<vim::MoRef> hosts = host_systems(c);
  std::vector<vim::MoRef> systems;
  std::vector<vim::MoRef> networks, dvpgs;
  std::map<std::string, std::vector<std::string>> host_networks;  // host → its networks
  for (auto& o : c.retrieve(hosts, {"name", "configManager.networkSystem", "network"})) {
    HostNet h;
    h.host = o.obj;
    h.name = o.text("name");
    if (const xml::Node* s = o.prop("configManager.networkSystem")) {
      h.network_system = vim::moref_of(*s);
      systems.push_back(h.network_system);
    }
    if (const xml::Node* n = o.prop("network"))
      for (const auto& r : n->children) {
        vim::MoRef ref = vim::moref_of(r);
        auto& list = ref.type == "DistributedVirtualPortgroup" ? dvpgs : networks;
        if (std::find(list.begin(), list.end(), ref) == list.end()) list.push_back(ref);
        host_networks[h.host.value].push_back(ref.value);
      }
    inv.hosts.push_back(std::move(h));
  }
  std::sort(inv.hosts.begin(), inv.hosts.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  std::map<std::string, const xml::Node*> info_by_system;
  auto infos = c.retrieve(systems, {"networkInfo"});
  for (const auto& o : infos)
    if (const xml::Node* n = o.prop("networkInfo")) info_by_system[o.obj.value] = n;
  for (auto& h : inv.hosts) {
    auto it = info_by_system.find(h.network_system.value);
    if (it != info_by_system.end()) host_net_from(h, *it->second);
  }
  // Network objects: a standard portgroup's is named after it.
  std::map<std::string, std::string> network_name;  // moref value → name
  for (const auto& o : c.retrieve(networks, {"name"})) network_name[o.obj.value] = o.text("name");
  for (auto& h : inv.hosts) {
    for (auto& p : h.portgroups)
      for (const auto& ref : host_networks[h.host.value])
        if (network_name.count(ref) && network_name[ref] == p.name) p.network = {"Network", ref};
  }
  // Distributed portgroups (vCenter) and their switches' names.
  std::map<std::string, NetEntry*> dv_by_ref;
  std::vector<vim::MoRef> switches;
  for (const auto& o : c.retrieve(dvpgs, {"config"})) {
    const xml::Node* cfg = o.prop("config");
    if (!cfg) continue;
    vim::MoRef sw;
    if (const xml::Node* s = cfg->child("distributedVirtualSwitch")) {
      sw = vim::moref_of(*s);
      if (std::find(switches.begin(), switches.end(), sw) == switches.end()) switches.push_back(sw);
    }
    if (cfg->child_text("uplink") == "true") continue;  // the switch's uplink ports
    NetEntry e;
    e.kind = "dvportgroup";
    e.name = cfg->child_text("name");
    e.key = cfg->child_text("key");
    e.config_version = cfg->child_text("configVersion");
    e.network = o.obj;
    e.vswitch = sw.value;  // replaced by its name below
    dv_vlan(e, cfg->child("defaultPortConfig"));
    inv.dvportgroups.push_back(std::move(e));
  }
  std::map<std::string, std::string> switch_name;
  // retrieve() takes one type at a time.
  std::map<std::string, std::vector<vim::MoRef>> switches_by_type;
  for (const auto& s : switches) switches_by_type[s.type].push_back(s);
  for (const auto& [type, refs] : switches_by_type)
    for (const auto& o : c.retrieve(refs, {"name"})) switch_name[o.obj.value] = o.text("name");
  for (auto& e : inv.dvportgroups)
    if (switch_name.count(e.vswitch)) e.vswitch = switch_name[e.vswitch];
  for (const auto& sw : switches)
    if (switch_name.count(sw.value)) inv.dv_switches.push_back({sw, switch_name[sw.value]});
  std::sort(inv.dvportgroups.begin(), inv.dvportgroups.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  for (auto& e : inv.dvportgroups) dv_by_ref[e.network.value] = &e;
  // Who uses what: each VM's `network` names the objects its NICs are on.
  std::map<std::string, std::vector<NetEntry*>> by_network;  // moref value → entries
  for (auto& h : inv.hosts)
    for (auto& p : h.portgroups)
      if (!p.network.empty()) by_network[p.network.value].push_back(&p);
  for (auto& [ref, e] : dv_by_ref) by_network[ref].push_back(e);
  std::map<std::string, std::string> host_of_vm;
  for (const auto& vm :
       c.retrieve_all_vms({"name", "runtime.powerState", "runtime.host", "network"})) {
    const xml::Node* nets = vm.prop("network");
    if (!nets) continue;
    NetClient who{vm.obj.value, vm.text("name"), power_word(vm.text("runtime.powerState"))};
    std::string host = vm.text("runtime.host");
    for (const auto& r : nets->children) {
      auto it = by_network.find(r.text);
      if (it == by_network.end()) continue;
      for (NetEntry* e : it->second) {
        // A standard portgroup exists per host: count the VMs of that host.
        if (e->kind == "portgroup" && !host.empty() && e->host_ref.value != host) continue;
        if (who.power == "on")
          e->clients.insert(e->clients.begin(), who);
        else
          e->clients.push_back(who);
      }
    }
  }
  return inv;
}

ordered_json net_record(const NetEntry& e, const std::string& endpoint) {
  ordered_json r;
  r["type"] = "net";
  r["kind"] = e.kind;
  r["endpoint"] = endpoint;
  r["host"] = e.host.empty() ? ordered_json(nullptr) : ordered_json(e.host);
  r["name"] = e.name;
  if (e.kind == "vswitch") {
    r["vswitch"] = e.name;
    r["vlan"] = nullptr;
    r["ports"] = e.ports;
    r["mtu"] = e.mtu;
    r["uplinks"] = e.uplinks;
    r["portgroups"] = e.portgroups;
    return r;
  }
  r["vlan"] = e.vlan ? ordered_json(*e.vlan) : ordered_json(nullptr);
  r["trunk"] = e.vlan && *e.vlan == kVlanTrunk;
  if (!e.vlan_ranges.empty()) r["vlan_ranges"] = e.vlan_ranges;
  r["vswitch"] = e.vswitch;
  if (e.kind == "dvportgroup") r["key"] = e.key;
  int on = 0;
  ordered_json vms = ordered_json::array();
  for (const auto& u : e.clients) {
    on += u.power == "on";
    vms.push_back(u.name);
  }
  r["clients"] = on;  // active clients, as the host counts them
  r["vms"] = std::move(vms);
  if (e.kind == "portgroup") r["vmkernel"] = e.vmkernel;
  return r;
}

std::string portgroup_spec_xml(const PortGroupSpec& s) {
  // HostPortGroupSpec: name, vlanId, vswitchName, policy (required; empty:
  // the vSwitch's policy applies).
  return "<portgrp>" + tag("name", s.name) + tag("vlanId", std::to_string(s.vlan)) +
         tag("vswitchName", s.vswitch) +
         (s.policy_xml.empty() ? "<policy></policy>" : s.policy_xml) + "</portgrp>";
}

namespace {
void need_system(const vim::MoRef& sys) {
  if (sys.empty()) fail("the host has no network system (configManager.networkSystem)");
}
}  // namespace

void add_portgroup(vim::Client& c, const vim::MoRef& sys, const PortGroupSpec& s) {
  need_system(sys);
  c.call("AddPortGroup", sys, portgroup_spec_xml(s));
}

void update_portgroup(vim::Client& c, const vim::MoRef& sys, const std::string& name,
                      const PortGroupSpec& s) {
  need_system(sys);
  c.call("UpdatePortGroup", sys, tag("pgName", name) + portgroup_spec_xml(s));
}

void remove_portgroup(vim::Client& c, const vim::MoRef& sys, const std::string& name) {
  need_system(sys);
  c.call("RemovePortGroup", sys, tag("pgName", name));
}

namespace {
std::string dv_vlan_xml(int vlan) {
  return vlan == kVlanTrunk ? "<vlan xsi:type=\"VmwareDistributedVirtualSwitchTrunkVlanSpec\">"
                              "<inherited>false</inherited><vlanId><start>0</start><end>4094</end>"
                              "</vlanId></vlan>"
                            : "<vlan xsi:type=\"VmwareDistributedVirtualSwitchVlanIdSpec\">"
                              "<inherited>false</inherited>" +
                                  tag("vlanId", std::to_string(vlan)) + "</vlan>";
}
}  // namespace

std::string dvportgroup_spec_xml(const std::string& name, int vlan) {
  std::string v = dv_vlan_xml(vlan);
  return "<spec>" + tag("name", name) + "<numPorts>8</numPorts>" +
         "<defaultPortConfig xsi:type=\"VMwareDVSPortSetting\">" + v + "</defaultPortConfig>" +
         "<type>earlyBinding</type><autoExpand>true</autoExpand></spec>";
}

void add_dvportgroup(vim::Client& c, const vim::MoRef& dv_switch, const std::string& name,
                     int vlan) {
  xml::Node resp = c.call("AddDVPortgroup_Task", dv_switch, dvportgroup_spec_xml(name, vlan));
  c.wait_for_task({"Task", resp.child_text("returnval")});
}

std::string dvportgroup_vlan_spec_xml(const std::string& config_version, int vlan) {
  // DVPortgroupConfigSpec: configVersion, name, numPorts, portNameFormat,
  // defaultPortConfig, …: unset fields are left as they are.
  return "<spec>" + tag("configVersion", config_version) +
         "<defaultPortConfig xsi:type=\"VMwareDVSPortSetting\">" + dv_vlan_xml(vlan) +
         "</defaultPortConfig></spec>";
}

void reconfigure_dvportgroup_vlan(vim::Client& c, const vim::MoRef& portgroup,
                                  const std::string& config_version, int vlan) {
  xml::Node resp = c.call("ReconfigureDVPortgroup_Task", portgroup,
                          dvportgroup_vlan_spec_xml(config_version, vlan));
  try {
    c.wait_for_task({"Task", resp.child_text("returnval")});
  } catch (const vim::Fault& e) {
    if (e.fault_type() != "ConcurrentAccess") throw;
    fail("the distributed portgroup changed since ceso read it (configVersion " +
         quote(config_version) + " is stale: ConcurrentAccess); nothing was changed, run again");
  }
}

void destroy_dvportgroup(vim::Client& c, const vim::MoRef& portgroup) {
  xml::Node resp = c.call("Destroy_Task", portgroup);
  c.wait_for_task({"Task", resp.child_text("returnval")});
}

}  // namespace ceso
