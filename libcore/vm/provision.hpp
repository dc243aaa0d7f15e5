// Creating a VM from a source VM (ceso-mkvm, ceso-clone, ceso-restore).
//
// Two paths, chosen by the endpoint's apiType (docs/esxi.md):
//   HostAgent (standalone ESXi): CloneVM_Task is NotSupported, so
//     FileManager.MakeDirectory → VirtualDiskManager.CopyVirtualDisk_Task per
//     disk (always with a thin or preallocated FileBackedVirtualDiskSpec whose
//     adapterType matches the source controller) → Folder.CreateVM_Task with a
//     config derived from the source (new name, BIOS and instance uuids, MACs;
//     same guest id, firmware, controllers, NIC types) → ReconfigVM_Task only
//     to grow the first disk.
//   VirtualCenter: one CloneVM_Task carrying the equivalent config.
// Every step that changes the host goes through the caller's StepGate (the
// tool's ceso::Gate: dry-run plans, policy, audit). A failing step rolls back
// what this run created, newest first (VM, disks, folder), unless
// keep_on_failure; the error names the step.
//
// On a free-licensed standalone host (the API is read-only) the same steps
// are made over SSH with the host's own clients when the Provisioner is given
// a writer whose transport is SSH (vm/writer.hpp): `mkdir` of the folder, `vmkfstools -i SRC -d
// thin DST` per disk, the .vmx written (new_vmx, vm/vmx.hpp) without overwriting anything, `vim-cmd
// solo/registervm`; reads stay on the API. Rollback unregisters the VM and removes the folder this
// run made. Steps go through the same gate with the API method they stand for and the shell command
// in their params ("command").
//
// Backup restore reuses the standalone path from the middle: it has a saved
// configuration (a SourceVm parsed from the saved PropertyCollector XML with
// source_vm_from) and disks it has already uploaded; create_from_disks()
// makes the VM around them.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/records.hpp"
#include "cloudinit/cloudinit.hpp"
#include "cloudinit/fields.hpp"
#include "vm/spec.hpp"
#include "vsphere/client.hpp"

namespace ceso {

class VmWriter;

// The properties provisioning reads from a source VM, in one retrieval.
const std::vector<std::string>& source_vm_paths();

struct SourceVm {
  std::shared_ptr<const vim::ObjectContent> props;  // owns the XML `hardware` points into
  vim::MoRef ref;
  std::string name;
  std::string power;  // "on" | "off" | "suspended"
  bool is_template = false;
  std::string guest_id, firmware, version, vmx_path, annotation;
  int cpus = 1;
  int cores_per_socket = 0;
  int64_t memory_mib = 0;
  vmspec::Hardware hardware;
  std::map<std::string, std::string> extra_config;
  vim::MoRef folder, pool, host;  // parent folder, resource pool, runtime.host
  vim::MoRef datacenter;          // read with it by read_source_vm; else empty
  std::string datastore() const;  // of the .vmx
};

SourceVm source_vm_from(vim::ObjectContent props);
SourceVm read_source_vm(vim::Client& client, const vim::MoRef& vm);
// From a VM's `config` property (VirtualMachineConfigInfo) as a backup keeps
// it: name, hardware, ExtraConfig… of a VM that is not on this host (no
// morefs: the caller sets folder, pool and host), powered off.
SourceVm source_vm_from_config(const xml::Node& config);

// The portgroup `name` among the networks of `where` (a HostSystem or a
// Datacenter: both list theirs in `network`), standard or distributed (its
// key and its switch's uuid, for a distributed-port backing). Throws
// Error(failure) naming the portgroup and `what` when there is none.
vmspec::Network find_network(vim::Client& client, const vim::MoRef& where, const std::string& name,
                             const std::string& what);

// What the new VM should be.
struct NewVm {
  std::string name;
  std::string datastore;  // "" = the source's
  bool thick = false;     // disk copies preallocated instead of thin
  std::optional<int> cpus;
  std::optional<int64_t> memory_mib;
  std::optional<vmspec::DiskGrow> disk_grow;  // first disk
  std::string network;                        // "" = the source's portgroups
  std::optional<std::vector<std::string>> tags;
  std::optional<std::string> annotation;
  // guestinfo.* keys (and any other ExtraConfig) to set on the new VM.
  std::vector<std::pair<std::string, std::string>> extra_config;
  std::vector<std::string> macs;  // MACs for the NICs in order; missing ones are generated
  bool keep_on_failure = false;
  vim::MoRef pool;  // resource pool of the new VM (found by the caller); empty: the source's
  // vCenter: the host the new VM is to run on (ceso-place's `host_id`); its
  // datastores are searched and, without `pool`, its compute resource's root
  // pool is used. Empty: the source's pool, where vCenter chooses the host.
  vim::MoRef host;
};

// Makes one change on the host through the tool's gate; returns false when
// the change was not made (dry-run). `params` is what the plan shows.
using StepGate = std::function<bool(const std::string& operation, const ordered_json& params,
                                    const std::function<void()>& action)>;
// Told about long steps: label ("copying disk 1/2") and percent (0..100).
using ProgressFn = std::function<void(const std::string& label, int percent)>;

struct Provisioned {
  vim::MoRef vm;  // empty in dry-run
  std::string uuid, instance_uuid;
  std::vector<std::string> macs;
  std::vector<std::string> disks;  // datastore paths of the new disks
  std::string vmx;
};

// The MACs, uuids and disk paths a copy of `src` will get, decided before any
// call so they can go into guestinfo (cloud-init matches NICs by MAC).
Provisioned plan_identity(const SourceVm& src, const NewVm& req);

class Provisioner {
 public:
  Provisioner(vim::Client& client, StepGate gate, ProgressFn progress = {});
  // Writes through `writer` (over SSH on a free-licensed standalone host;
  // the API writer gives the API path), reads on `client`.
  Provisioner(vim::Client& client, VmWriter& writer, StepGate gate, ProgressFn progress = {});

  // Powers the new VM on (through the writer), waiting at most `timeout`.
  // For step()'s action.
  void power_on(const vim::MoRef& vm, std::chrono::seconds timeout);

  // Copy `src` (powered off) into a new VM. `ids` from plan_identity.
  Provisioned create(const SourceVm& src, const NewVm& req, const Provisioned& ids);

  // Restore: a fresh directory on the datastore of `ids.vmx` (the VM's name,
  // else NAME_1, NAME_2…, as the host client does), `upload` puts the disks
  // into it (given "[ds] dir" and the .vmx path the VM will have) and returns
  // the path of each disk (the top of its chain) in `config`'s disk order,
  // then the VM is created around them. A failure rolls back everything,
  // uploaded files included.
  using UploadFn =
      std::function<std::vector<std::string>(const std::string& dir, const std::string& vmx)>;
  Provisioned create_from_disks(const SourceVm& config, const NewVm& req, const Provisioned& ids,
                                const UploadFn& upload);

  // A further step of the same run (power on, wait for the IP): through the
  // gate, and a failure rolls back everything created so far. Returns false
  // in dry-run.
  bool step(const std::string& label, const std::string& operation, const ordered_json& params,
            const std::function<void()>& action);
  // The run succeeded: forget the rollback. After SIGINT/SIGTERM it rolls
  // back instead and throws Error(Exit::interrupted), so an interruption
  // during the last call of a run is not lost.
  void commit();

 private:
  struct Undo {
    std::string what;
    std::function<void()> run;
  };
  vim::Client& client_;
  VmWriter* writer_ = nullptr;
  bool ssh_ = false;  // writer_ writes over SSH
  // Over SSH: a VM of this run could not be unregistered (its folder stays).
  std::shared_ptr<bool> vm_left_ = std::make_shared<bool>(false);
  StepGate gate_;
  ProgressFn progress_;
  std::vector<Undo> undo_;
  vim::MoRef datacenter_;

  Provisioned create_standalone(const SourceVm& src, const NewVm& req, const Provisioned& ids);
  Provisioned clone_vcenter(const SourceVm& src, const NewVm& req, const Provisioned& ids);
  void make_directory(const std::string& dir);
  bool try_make_directory(const std::string& dir);
  std::string make_fresh_directory(const std::string& datastore, const std::string& base);
  void copy_disks(const SourceVm& src, const NewVm& req, const Provisioned& ids);
  vim::MoRef create_vm(const SourceVm& config, const NewVm& req, const Provisioned& ids);
  void grow_first_disk(const vim::MoRef& vm, const SourceVm& config, const NewVm& req);
  const vim::MoRef& datacenter();
  vim::MoRef resolve_pool(const SourceVm& src);
  vim::MoRef find_datastore(const SourceVm& src, const std::string& name);
  vmspec::Network network_for(const SourceVm& src, const NewVm& req);
  bool keep_ = false;
  // --network as found on the host, resolved before the first change so an
  // unknown name leaves nothing behind.
  vmspec::Network network_;
  [[noreturn]] void roll_back(const std::string& label, const Error& e);
  // Over SSH (free-licensed host).
  std::string ssh_run(const std::vector<std::string>& argv, const std::string& what,
                      std::string_view input = {});
  bool ssh_make_directory(const std::string& dir);
  void ssh_copy_disks(const SourceVm& src, const NewVm& req, const Provisioned& ids);
  vim::MoRef ssh_create_vm(const SourceVm& config, const NewVm& req, const Provisioned& ids);
  void ssh_power_off_if_on(const std::string& vmid);
  Provisioned create_over_ssh(const SourceVm& src, const NewVm& req, const Provisioned& ids);
  // Undo for a VM this run made: powered off if it is not, then destroyed.
  Undo remove_vm_undo(const std::string& name, const vim::MoRef& vm);
};

// The ExtraConfig a copy gets: the source's inheritable keys with the
// request's tags and extra keys applied.
std::vector<std::pair<std::string, std::string>> new_extra_config(const SourceVm& src,
                                                                  const NewVm& req);

// ------------------------------------------------------------- cloud-init flags

// The cloud-init flag group (cloudinit_flag_options, cloudinit_flag_fields,
// touches_user_data, touches_network) is derived from the one field table in
// cloudinit/fields.hpp.

// The guestinfo of a copy of a VM (clone, restore): the source's documents
// (from its ExtraConfig) with a new instance-id and the identity in `fields`
// (which must name the hostname); the network and the user-data are replaced
// only when `fields` describe them. `macs` (old → new) are changed in a kept
// network config, so a restored VM's NICs still match it. Without guestinfo
// in the source, the documents are rendered from `fields` alone.
GuestInfo reidentified_guestinfo(const std::map<std::string, std::string>& source_extra_config,
                                 const ordered_json& fields, GuestInfoEncoding encoding,
                                 const std::vector<std::pair<std::string, std::string>>& macs = {});
// Every occurrence of the MAC `from` in `text`, in any letter case, becomes `to`.
void replace_mac(std::string& text, const std::string& from, const std::string& to);

}  // namespace ceso
