// Host networking (ceso-net): the standard vSwitches and portgroups of each
// host, the distributed portgroups of a vCenter, the VMs on each, and the
// HostNetworkSystem calls that add, change and remove standard portgroups.
//
// Facts relied on (docs/esxi.md "Networking"): a portgroup is
// HostPortGroupSpec{name, vlanId, vswitchName, policy} in that order, policy
// required but may be empty (then the vSwitch's policy applies); vlanId 0 is
// no VLAN, 1–4094 a VLAN, 4095 all VLANs (a trunk: the guest tags, VGT); the
// name is unique on the host; RemovePortGroup of a portgroup in use by a
// powered-on VM or a VMkernel NIC fails with ResourceInUse. A VM's `network`
// property lists the Network and DistributedVirtualPortgroup objects its NICs
// use.
//
// These functions make the change they are asked for; the tool gates it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/records.hpp"
#include "vsphere/client.hpp"

namespace ceso {

// --vlan: a whole number 0–4095 (4095 = trunk), digits only. Throws
// Error(usage) naming `what` and the range.
int parse_vlan(std::string_view text, std::string_view what = "--vlan");
inline constexpr int kVlanTrunk = 4095;

// Portgroup names: ceso's rule (docs/esxi.md): 1–59 bytes of UTF-8 without
// control or formatting characters and without a space at either end.
inline constexpr size_t kMaxPortgroupNameBytes = 59;
void check_portgroup_name(std::string_view name, std::string_view field, Exit code);

// A VM whose NICs use a network.
struct NetClient {
  std::string id, name, power;  // vm-42, its name, on/off/suspended
};

// One line of `ceso-net ls`.
struct NetEntry {
  std::string kind;  // "vswitch", "portgroup", "dvportgroup"
  std::string name;
  std::string host;  // the ESXi host (standard switches and portgroups)
  vim::MoRef host_ref;
  std::optional<int> vlan;         // portgroups: the VLAN id; dvportgroups: when one VLAN
  std::string vlan_ranges;         // dvportgroups with a trunk spec: "0-4094" or "10-20,30"
  std::string vswitch;             // portgroup: its vSwitch; dvportgroup: its distributed switch
  vim::MoRef network;              // the Network / DistributedVirtualPortgroup object
  std::string key;                 // dvportgroup key; portgroup key
  std::string config_version;      // dvportgroup: config.configVersion (sent back on a change)
  std::vector<NetClient> clients;  // VMs with a NIC on it (powered-on ones first)
  bool vmkernel = false;           // portgroup: a VMkernel NIC uses it
  std::string policy_xml;          // portgroup: its spec.policy as retrieved (<policy>)
  // vswitch
  int ports = 0, mtu = 0;
  std::vector<std::string> uplinks, portgroups;
};

// One host's standard networking.
struct HostNet {
  vim::MoRef host;
  std::string name;
  vim::MoRef network_system;  // configManager.networkSystem
  std::vector<NetEntry> vswitches, portgroups;
  const NetEntry* portgroup(std::string_view name) const;
  const NetEntry* vswitch(std::string_view name) const;
};

// A vCenter distributed switch that the hosts are on.
struct DvSwitch {
  vim::MoRef ref;
  std::string name;
};

struct NetInventory {
  std::vector<HostNet> hosts;  // by name
  std::vector<NetEntry> dvportgroups;
  std::vector<DvSwitch> dv_switches;  // those with a portgroup on a host (each has its uplinks')
  const DvSwitch* dv_switch(std::string_view name) const;
  const NetEntry* dvportgroup(std::string_view name) const;
};

// The standard switches and portgroups of a host from its network system's
// networkInfo (<val>); clients are not filled in.
void host_net_from(HostNet& h, const xml::Node& network_info);

// Everything `ceso-net ls` shows, read with a few calls: the hosts, their
// network systems, the networks the hosts are on, the VMs' networks.
NetInventory read_networks(vim::Client& c);

// The `net` record.
ordered_json net_record(const NetEntry& e, const std::string& endpoint);

// A standard portgroup as HostPortGroupSpec wants it.
struct PortGroupSpec {
  std::string name;
  int vlan = 0;
  std::string vswitch;
  // <policy>…</policy> to send; empty: an empty policy (the vSwitch's
  // applies). `set` sends the portgroup's own back: UpdatePortGroup replaces
  // the whole spec, so an empty one would drop its security, teaming and
  // shaping overrides.
  std::string policy_xml;
};
// <portgrp>…</portgrp> in the WSDL's order.
std::string portgroup_spec_xml(const PortGroupSpec& s);

void add_portgroup(vim::Client& c, const vim::MoRef& network_system, const PortGroupSpec& s);
void update_portgroup(vim::Client& c, const vim::MoRef& network_system, const std::string& name,
                      const PortGroupSpec& s);
void remove_portgroup(vim::Client& c, const vim::MoRef& network_system, const std::string& name);

// A distributed portgroup (vCenter): DVPortgroupConfigSpec in WSDL order,
// early binding, autoExpand, the VLAN as a VlanIdSpec (0-4094) or, for
// 4095, a trunk of 0-4094. AddDVPortgroup_Task (one spec; vcsim has no CreateDVPortgroup_Task) on
// the switch, waited for.
std::string dvportgroup_spec_xml(const std::string& name, int vlan);
void add_dvportgroup(vim::Client& c, const vim::MoRef& dv_switch, const std::string& name,
                     int vlan);

// A new VLAN for a distributed portgroup: ReconfigureDVPortgroup_Task with a
// DVPortgroupConfigSpec holding only the configVersion read (vCenter fails
// the task with ConcurrentAccess when the portgroup changed since) and the
// default port setting's VLAN; everything else stays. Waited for; a
// ConcurrentAccess becomes an Error saying the portgroup changed meanwhile.
std::string dvportgroup_vlan_spec_xml(const std::string& config_version, int vlan);
void reconfigure_dvportgroup_vlan(vim::Client& c, const vim::MoRef& portgroup,
                                  const std::string& config_version, int vlan);
// Destroy_Task of a distributed portgroup, waited for (vCenter refuses one a
// VM uses: ResourceInUse).
void destroy_dvportgroup(vim::Client& c, const vim::MoRef& portgroup);

}  // namespace ceso
