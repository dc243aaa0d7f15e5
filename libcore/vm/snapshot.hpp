// VM snapshots: list the tree, create, remove, revert.
//
// These functions make the change; they do not gate it (the tool wraps each
// call in ceso::Gate::perform).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/records.hpp"
#include "vsphere/client.hpp"

namespace ceso {

struct SnapshotInfo {
  vim::MoRef ref;
  std::string name, description;
  std::string created;  // createTime as the host reports it (xsd:dateTime)
  std::string power;    // power state when taken: "on" | "off" | "suspended"
  bool quiesced = false;
  bool current = false;  // the VM's current snapshot
  int id = 0;
  std::string path;  // "parent/child" tree path of names
};

// Every snapshot of the VM, depth first (parents before children). Empty when
// the VM has none.
std::vector<SnapshotInfo> list_snapshots(vim::Client& c, const vim::MoRef& vm);
// The same, and the VM's `vm` record (vm_record, vm/vm.hpp) read in the same
// call: a tool that prints the VM's record with its snapshot result keeps
// every vm field fresh without a second round trip.
std::vector<SnapshotInfo> list_snapshots(vim::Client& c, const vim::MoRef& vm,
                                         ordered_json& record);

// Snapshots from a `snapshot` property value (VirtualMachineSnapshotInfo);
// exposed for tests. `val` may be null (no snapshots).
std::vector<SnapshotInfo> snapshots_from_xml(const xml::Node* val);

// The snapshot named `name` (or whose tree path is `name`). Returns nullptr
// when none; throws Error(failure) naming the paths when several snapshots
// carry that name.
const SnapshotInfo* find_snapshot(const std::vector<SnapshotInfo>& snapshots,
                                  const std::string& name);

// The host's InvalidState for a VM with PCI passthrough devices (which ESXi
// cannot snapshot) as an Error that suggests a cold backup; returns for any
// other fault (the caller rethrows it). Over the API and over SSH.
void translate_snapshot_fault(const vim::Fault& f);

// CreateSnapshot_Task; returns the new snapshot's moref.
vim::MoRef create_snapshot(vim::Client& c, const vim::MoRef& vm, const std::string& name,
                           const std::string& description, bool memory, bool quiesce);

// RemoveSnapshot_Task.
void remove_snapshot(vim::Client& c, const vim::MoRef& snapshot, bool remove_children,
                     bool consolidate);

// RemoveAllSnapshots_Task on the VM.
void remove_all_snapshots(vim::Client& c, const vim::MoRef& vm, bool consolidate);

// RevertToSnapshot_Task.
void revert_snapshot(vim::Client& c, const vim::MoRef& snapshot, bool suppress_power_on);

// The "snapshot" field: {"name","path","id","ref","description","created",
// "power","quiesced","current"}.
ordered_json snapshot_record(const SnapshotInfo& s);

// The stand-alone `snapshot` record of `ceso-snap ls`: the field above with
// "type":"snapshot" and the VM's endpoint, id and name.
ordered_json snapshot_record(const SnapshotInfo& s, const std::string& endpoint,
                             const std::string& vm_id, const std::string& vm_name);

}  // namespace ceso
