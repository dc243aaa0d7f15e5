// VirtualMachineConfigSpec and device specs as SOAP XML, and the parts of a
// VM's hardware that provisioning and reconfiguration need.
//
// Everything here is pure: it turns values into XML (escaped with
// xml::escape, elements in WSDL order as in govmomi's types.go) or reads
// values out of PropertyCollector results. Nothing talks to a host, so the
// unit tests check exactly what would be sent.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/xml.hpp"

namespace ceso::vmspec {

// ----------------------------------------------------------------- sizes

// --memory: "2048" (MiB), "512M", "512MiB", "2G", "2GiB", "1T". Whole MiB,
// 4 MiB granularity as ESXi wants. Throws Error(usage) naming the value.
int64_t parse_memory_mib(std::string_view text);

// --disk-grow: "40G" grows the first disk TO 40 GiB, "+10G" grows it BY
// 10 GiB. A bare number is GiB; M/MiB, G/GiB, T/TiB units.
struct DiskGrow {
  bool relative = false;
  int64_t bytes = 0;
};
DiskGrow parse_disk_grow(std::string_view text);
// The new capacity for a disk of `current` bytes. Throws Error(failure) when
// the target is smaller (disks never shrink); equal means nothing to do.
int64_t grown_capacity(const DiskGrow& grow, int64_t current);

// ----------------------------------------------------------------- identity

// A random MAC in VMware's range for manually assigned addresses
// (00:50:56:00:00:00–00:50:56:3f:ff:ff), so a created VM's MACs are known
// before it exists (cloud-init can match NICs by MAC) and never collide with
// the host's generated ones.
std::string random_mac();
// A random RFC 4122 version 4 UUID, lower case.
std::string random_uuid();

// ----------------------------------------------------------------- datastore paths

// "[datastore1] web01/web01.vmdk" ↔ {"datastore1", "web01/web01.vmdk"}.
struct DatastorePath {
  std::string datastore;
  std::string path;
  std::string text() const;  // "[ds] path" ("[ds]" when path is empty)
};
// Throws Error(failure) for text that is not "[ds] path".
DatastorePath parse_datastore_path(std::string_view text);
// Everything before the last component of a path ("" if none).
std::string dir_name(std::string_view path);

// ----------------------------------------------------------------- hardware

struct Controller {
  int key = 0;
  std::string type;  // "ParaVirtualSCSIController", "VirtualAHCIController", …
  int bus = 0;
  const xml::Node* node = nullptr;  // the retrieved device, for copying
};

struct Disk {
  int key = 0;
  int controller_key = 0;
  int unit = 0;
  std::string file;  // "[ds] dir/name.vmdk"
  int64_t capacity_bytes = 0;
  bool thin = false;
  std::string disk_mode;        // "persistent" …
  std::string controller_type;  // type of the controller it sits on
  const xml::Node* node = nullptr;
};

struct Nic {
  int key = 0;
  std::string type;  // "VirtualVmxnet3", "VirtualE1000e", …
  std::string mac;
  std::string network;        // portgroup name (deviceName of the backing); "" for DVS
  std::string portgroup_key;  // distributed portgroup key; "" for a standard one
  const xml::Node* node = nullptr;
};

// The devices provisioning copies. Default devices every VM gets (PCI, IDE,
// PS/2, SIO, keyboard, video, VMCI…) are left out: the host creates them.
struct Hardware {
  std::vector<Controller> controllers;  // SCSI, SATA, NVMe
  std::vector<Disk> disks;              // in device order
  std::vector<Nic> nics;
};

// From config.hardware.device (the <val> of the property). The returned
// structs point into `devices`, which must outlive them.
Hardware parse_hardware(const xml::Node& devices);

// The adapterType of a FileBackedVirtualDiskSpec for a disk on a controller
// of this type: busLogic, lsiLogic (all other SCSI) or ide (IDE, SATA, NVMe).
std::string_view disk_adapter_type(std::string_view controller_type);

// ----------------------------------------------------------------- XML pieces

// Re-serialize a retrieved element as `name` (its xsi:type kept), skipping
// direct children named in `skip`. Text is escaped again.
std::string node_xml(const xml::Node& node, std::string_view name,
                     const std::set<std::string, std::less<>>& skip = {});

// <NAME xsi:type="OptionValue"><key>K</key><value xsi:type="xsd:string">V</value></NAME>…
std::string option_values_xml(std::string_view name,
                              const std::vector<std::pair<std::string, std::string>>& values);

// <destSpec xsi:type="FileBackedVirtualDiskSpec">: never nil, because a nil
// destSpec makes ESXi write a preallocated BusLogic disk.
std::string copy_disk_spec_xml(std::string_view adapter_type, bool thin, int64_t capacity_bytes);

// One <deviceChange>. `file_operation` may be empty.
std::string device_change_xml(std::string_view operation, std::string_view file_operation,
                              const std::string& device_xml);

// A portgroup a NIC is connected to. A standard portgroup is named; a
// distributed one (vCenter) is reached through its switch's uuid and its
// portgroup key, and a NIC on it needs a distributed-port backing: a
// standard backing naming a distributed portgroup is refused by vCenter.
struct Network {
  std::string name;           // "" = keep the NIC's current portgroup
  std::string switch_uuid;    // distributed only
  std::string portgroup_key;  // distributed only ("dvportgroup-13")
  bool distributed() const { return !portgroup_key.empty(); }
};

// Whether NIC `n` is connected to `net` already.
bool nic_on(const Nic& n, const Network& net);

// Device XML for a new VM. Keys are the caller's (negative = new device).
std::string controller_add_xml(const Controller& c, int new_key);
std::string disk_attach_xml(const Disk& d, int new_key, int controller_key, const std::string& file,
                            bool thin);
// A copy of NIC `n` on `network` (its own portgroup when network.name is "").
std::string nic_add_xml(const Nic& n, int new_key, const std::string& mac, const Network& network);

// Edits of an existing device: the retrieved device echoed with one change.
std::string disk_resize_xml(const Disk& d, int64_t capacity_bytes);
std::string nic_network_xml(const Nic& n, const Network& network);
// New MAC (manual) and, when `network` is named, a new portgroup; a NIC on a
// distributed portgroup keeps it but not its port (a vCenter clone's NIC).
std::string nic_mac_xml(const Nic& n, const std::string& mac, const Network& network = {});

// The backing for `network`: VirtualEthernetCardNetworkBackingInfo (by
// name) or VirtualEthernetCardDistributedVirtualPortBackingInfo (switch
// uuid + portgroup key, no port: the host picks one).
std::string network_backing_xml(const Network& network);

// ----------------------------------------------------------------- config spec

// The fields of VirtualMachineConfigSpec that ceso sets. Empty / nullopt
// fields are not sent (the host keeps what it has).
struct ConfigSpec {
  std::string name;
  std::string uuid;           // BIOS uuid
  std::string instance_uuid;  // vCenter instance uuid
  std::string guest_id;
  std::optional<std::string> annotation;
  std::string vm_path_name;  // files.vmPathName: "[ds] dir/name.vmx"
  std::optional<int> num_cpus;
  std::optional<int> cores_per_socket;
  std::optional<int64_t> memory_mib;
  std::vector<std::string> device_changes;  // rendered <deviceChange> elements
  std::vector<std::pair<std::string, std::string>> extra_config;
  std::string firmware;                                  // "bios" / "efi"
  std::string version;                                   // "vmx-19"
  std::optional<bool> memory_reservation_locked_to_max;  // PCI passthrough needs it
  bool empty() const;
  // <ELEMENT xsi:type="VirtualMachineConfigSpec">…</ELEMENT>
  std::string xml(std::string_view element) const;
};

// ExtraConfig keys a copy inherits from its source: everything except keys
// the host manages (uuids, swap, nvram, device slots, tools state…), the
// guestinfo (rebuilt for every VM) and the tags (set per VM).
bool inheritable_extra_config(std::string_view key);

}  // namespace ceso::vmspec
