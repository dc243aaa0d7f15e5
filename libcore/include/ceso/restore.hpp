// Restoring a backup as a new VM (`ceso-backup restore`).
//
// The backup's config (config.xml: the `config` property as the API reported
// it) gives the hardware; the disks are uploaded through the host's /folder
// service, decompressed and re-hashed on the fly (never a whole disk in
// memory or in a local file), into a fresh folder; then the VM is created
// around them with a new BIOS and instance uuid, new MACs and new guestinfo
// whose metadata carries a new instance-id (and the new network when flags
// give one), so cloud-init treats the VM as new on its first boot and
// re-applies the network. A kept network config that matched NICs by MAC is
// rewritten to the new MACs.
//
// Everything that changes the host goes through the gate (dry-run plans,
// policy, audit). A failure, a hash mismatch or an interruption rolls back
// what the run made (folder, files, VM); with --replace, the VM being
// replaced is renamed out of the way first and only destroyed once the
// restored VM exists, and renamed back when the restore fails.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ceso/cloudinit.hpp"
#include "ceso/policy.hpp"
#include "ceso/progress.hpp"
#include "ceso/records.hpp"
#include "ceso/target.hpp"
#include "ceso/vim.hpp"

namespace ceso {

struct RestoreRequest {
  std::string id;         // backup id
  std::string name;       // --as; "" = the backed-up VM's name
  std::string datastore;  // "" = the datastore the VM was on
  std::string network;    // portgroup for every NIC; "" = the original portgroups
  ordered_json cloudinit = ordered_json::object();  // cloud-init flag fields
  GuestInfoEncoding encoding = GuestInfoEncoding::gzip_base64;
  std::vector<std::string> macs;  // MACs of the first NICs; the others are generated
  bool power_on = false;
  bool replace = false;
  bool keep_on_failure = false;
  int retries = 3;  // uploads started again after a cut connection
  std::chrono::seconds timeout{600};
};

// Restores one backup on the client's host and returns the new VM's record
// (`vm` record plus restored_from, macs, instance_id, replaced), or null in
// dry-run. Throws Error: failure (1) for a damaged backup (nothing is
// created), a name in use without --replace, a VM to replace that is not
// powered off; policy (5); interrupted (130) after the rollback.
ordered_json restore_backup(vim::Client& client, BackupTarget& target, const RestoreRequest& req,
                            Gate& gate, Progress& progress);

// A disk descriptor with its extent file names and parentFileNameHint
// replaced: extents[k] names the k-th extent line's file; `parent` ("" = leave
// as is) the parent descriptor of a delta disk. Throws Error(bad_input) when
// the text is not a descriptor or has fewer extent lines than names.
std::string rewrite_descriptor(const std::string& text, const std::vector<std::string>& extents,
                               const std::string& parent);
// The extent file names of a descriptor, in order.
std::vector<std::string> descriptor_extents(const std::string& text);

}  // namespace ceso
