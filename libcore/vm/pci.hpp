// PCI passthrough (ceso-pci, ceso-mkvm --gpu/--pci): the host's PCI devices
// and their passthrough state, what a VM can attach (QueryConfigTarget), the
// passthrough devices of a VM, and the device backings.
//
// Facts relied on (docs/esxi.md "PCI passthrough"): hardware.pciDevice ids
// are signed 16-bit numbers (read through uint16); the backing's deviceId is
// a HEX string (decimal makes the VM fail to power on, as after govc 0.24);
// a VM with a passthrough device needs memoryReservationLockedToMax; devices
// change only while the VM is powered off; UpdatePassthruConfig takes effect
// (passthruActive) after a host reboot unless applyNow works.
//
// These functions make the change they are asked for; the tool gates it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/records.hpp"
#include "vm/spec.hpp"
#include "vsphere/client.hpp"

namespace ceso {

// A PCI address as the host writes it: "0000:3b:00.0" (segment, bus, slot
// in hex, function 0-7). Accepts upper case and the short "3b:00.0"
// (segment 0000). Throws Error(usage) naming `what` and the reason.
std::string parse_pci_address(std::string_view text, std::string_view what = "address");

// Vendor and device id, as lspci -nn prints them: "10de:1eb8" (hex, an
// optional 0x on each). Throws Error(usage) naming `what`.
struct PciIds {
  uint16_t vendor = 0;
  uint16_t device = 0;
  bool operator==(const PciIds&) const = default;
};
PciIds parse_pci_ids(std::string_view text, std::string_view what = "--gpu");
std::string pci_ids_text(PciIds ids);  // "10de:1eb8"
// The same text read as two decimal numbers ("4318:7864" → 10de:1eb8), for
// the hint when hex ids match nothing: govc 0.24 wrote decimal ids.
std::optional<PciIds> decimal_reading(std::string_view text);
std::string hex4(uint16_t v);  // "1eb8"

// "3D controller", "VGA compatible controller", "Ethernet controller"… from
// the class id (class << 8 | subclass); "class 0x0c03" when not known.
std::string pci_class_name(uint16_t class_id);
// Display controllers (class 0x03): what --gpus lists and what gets the
// 64-bit MMIO settings.
bool is_gpu_class(uint16_t class_id);

// A VM that has a host device configured.
struct PciUser {
  std::string id, name, power;  // vm-42, its name, on/off/suspended
};

// One device of a host, with its passthrough state.
struct PciDevice {
  std::string host;  // host name
  vim::MoRef host_ref;
  std::string id;  // "0000:3b:00.0"
  PciIds ids;
  PciIds sub_ids;
  uint16_t class_id = 0;
  std::string vendor_name, device_name;
  bool capable = false, enabled = false, active = false;
  std::vector<PciUser> users;  // VMs configured with it (a powered-on one first)
  bool assignable() const { return capable && active && users.empty(); }
};

// The devices of one host from its hardware.pciDevice and
// config.pciPassthruInfo (<val> nodes; either may be null).
std::vector<PciDevice> pci_devices_from(const xml::Node* pci_devices,
                                        const xml::Node* passthru_info);

// A passthrough device configured in a VM (config.hardware.device).
struct VmPciDevice {
  int key = 0;
  bool dynamic = false;
  std::string id;         // static: the host device address
  std::string device_id;  // static: as stored (hex if written right)
  uint16_t vendor_id = 0;
  std::string system_id;
  std::vector<PciIds> allowed;  // dynamic: allowed vendor:device pairs
  std::string assigned_id;      // dynamic: the device the host gave it at power-on
  std::string label;
  const xml::Node* node = nullptr;  // the retrieved device, to echo on removal
};
// From config.hardware.device (<val>); pointers point into `devices`.
std::vector<VmPciDevice> vm_pci_devices(const xml::Node& devices);
// The `pci` field of VM records: [{"id","vendor_id","device_id",…}].
ordered_json vm_pci_json(const std::vector<VmPciDevice>& devices);

// What a VM on a host may attach (EnvironmentBrowser.QueryConfigTarget).
struct PassthroughTarget {
  struct Static {
    PciDevice device;  // only the ids, names and class are filled in
    std::string system_id;
  };
  std::vector<Static> devices;  // pciPassthrough
  std::vector<PciIds> dynamic;  // dynamicPassthrough (ESXi 7.0+)
  bool dynamic_supported() const { return !dynamic.empty(); }
};
PassthroughTarget passthrough_target_from(const xml::Node& config_target);
// QueryConfigTarget on `browser` (the VM's or its compute resource's
// environmentBrowser) for `host` (may be empty).
PassthroughTarget query_passthrough_target(vim::Client& c, const vim::MoRef& browser,
                                           const vim::MoRef& host);

// Device XML: a new VirtualPCIPassthrough with key `key` and a static
// backing (hex deviceId, the host's systemId) or a dynamic one.
std::string static_passthrough_xml(const PciDevice& d, const std::string& system_id, int key);
std::string dynamic_passthrough_xml(PciIds ids, int key);

// Every host of the endpoint with its devices, passthrough state and the
// VMs that use them. Several calls: the host list, their properties, the VMs.
struct HostPci {
  vim::MoRef host;
  std::string name;
  vim::MoRef passthru_system;  // configManager.pciPassthruSystem
  std::vector<PciDevice> devices;
};
std::vector<HostPci> read_host_pci(vim::Client& c);

// UpdatePassthruConfig with one entry per id; `apply_now` asks the host to
// apply it without a reboot (applyNow, vSphere API 7.0: sent only when asked,
// since an older host refuses the element).
void update_passthru(vim::Client& c, const vim::MoRef& system, const std::vector<std::string>& ids,
                     bool enable, bool apply_now);

// The `pci` record of ceso-pci ls / info.
ordered_json pci_record(const PciDevice& d, const std::string& endpoint);

// A device asked for by address, or any free one by ids (--gpu).
struct PassthroughRequest {
  std::string address;        // "0000:3b:00.0"
  std::optional<PciIds> gpu;  // or by ids
  std::string gpu_text;       // --gpu as given (for the decimal hint)
  int mmio_gb = 64;           // pciPassthru.64bitMMIOSizeGB for a GPU
  bool static_only = false;   // --gpu picks a free device statically (a .vmx over SSH)
};

// The change that attaches it to VM `vm` on `host` (browser: the VM's
// environmentBrowser): a dynamic backing when `gpu` is asked and the host
// has dynamic DirectPath, else the matching device the host offers that no
// other VM has configured, with hex ids and the host's systemId; memory
// locked to max; 64-bit MMIO for a GPU. `params` is what the plan and audit
// show. Throws Error(failure) naming the reason: unknown, not capable, not
// active (reboot), taken by VM X, ids offered (with the decimal hint).
struct AttachPlan {
  vmspec::ConfigSpec spec;
  ordered_json params;
  // A static backing: the device picked and the host's systemId (for the
  // .vmx lines of vm/hostcli); `gpu`: a display controller (64-bit MMIO).
  PciDevice device;
  std::string system_id;
  bool gpu = false;
};
AttachPlan plan_attach(vim::Client& c, const vim::MoRef& vm, const vim::MoRef& browser,
                       const vim::MoRef& host, const PassthroughRequest& q);

// The same for a VM read from the host (its environmentBrowser and
// runtime.host: one call more).
AttachPlan plan_attach(vim::Client& c, const vim::MoRef& vm, const PassthroughRequest& q);
// ReconfigVM_Task with the plan's spec, waited for.
void apply_attach(vim::Client& c, const vim::MoRef& vm, const AttachPlan& plan);
// --mmio-gb: a power of two from 1 to 4096, else Error(usage).
int check_mmio_gb(long gib);

// pciPassthru.64bitMMIOSizeGB when not given: vSphere does not report BAR
// sizes, so VMware's value for one large-BAR GPU.
inline constexpr int kDefaultMmioGiB = 64;

}  // namespace ceso
