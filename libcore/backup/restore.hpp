// Restoring a backup as a new VM (ceso-restore).
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

#include "backup/catalog.hpp"
#include "backup/manifest.hpp"
#include "base/progress.hpp"
#include "base/records.hpp"
#include "cloudinit/cloudinit.hpp"
#include "safety/policy.hpp"
#include "transport/target.hpp"
#include "vm/shape.hpp"
#include "vsphere/client.hpp"

namespace ceso {

struct RestoreRequest {
  std::string id;  // backup id
  // The user named the backup by its id (not by a VM name): --replace may
  // then replace a VM of another identity (with a warning); by name it may not.
  bool by_id = true;
  std::string name;  // --as; "" = the backed-up VM's name
  // The VM-shape options. Unset fields keep the backed-up VM's: datastore
  // ("" = the one it was on), network ("" = the original portgroups), tags,
  // CPUs, memory, annotation. Powered off unless power_on.
  VmShape shape = {.vm = {}, .power_on = false};
  ordered_json cloudinit = ordered_json::object();  // cloud-init flag fields
  GuestInfoEncoding encoding = GuestInfoEncoding::gzip_base64;
  std::vector<std::string> macs;  // MACs of the first NICs; the others are generated
  bool replace = false;
  int retries = 3;  // uploads started again after a cut connection
};

// Who a VM is: the endpoint it lives on and its BIOS uuid (names change and
// repeat across hosts).
struct VmOrigin {
  std::string endpoint, uuid;
  bool operator==(const VmOrigin&) const = default;
};

// The backup that `restore NAME` means, from catalog rows: the newest
// complete backup named NAME that did not fail verify, of the VM that is
// `live` (the identities of the VMs named NAME on the host restored to)
// when there is one; with none, of the single VM (endpoint+uuid) such
// backups come from. nullopt when no backup has that name. Throws
// Error(bad_input) listing the identities when the name is ambiguous
// (several VMs) or the live VM has no backup.
std::optional<CatalogEntry> backup_for_name(const std::vector<CatalogEntry>& entries,
                                            const std::string& name,
                                            const std::vector<VmOrigin>& live);

class VmWriters;

// Restores one backup on the client's host and returns the new VM's record
// (`vm` record plus restored_from, macs, instance_id, replaced), or null in
// dry-run. Throws Error: failure (1) for a damaged backup (nothing is
// created), a name in use without --replace, a VM to replace that is not
// powered off; policy (5) also for --replace of a VM that is not the one
// backed up (endpoint+uuid) unless req.by_id; interrupted (130) after the
// rollback.
//
// With `writers` whose writer for the client writes over SSH (a free-licensed
// host: its API and its /folder uploads refuse writes), the same steps go
// over that SSH connection: `mkdir` of the folder, each file streamed in
// chunks into `sh -c 'set -C && cat >"$1"'` under a temporary name in the
// folder and renamed (`mv`) once all of it arrived and checked, the .vmx
// and `vim-cmd solo/registervm` as ceso-mkvm does over SSH, the NVRAM,
// `vim-cmd vmsvc/power.on`. --replace is refused there (renaming a VM is
// an API write).
ordered_json restore_backup(vim::Client& client, BackupTarget& target, const RestoreRequest& req,
                            Gate& gate, Progress& progress, VmWriters* writers = nullptr);

// One disk of a backup as a local raw file at `path` (ceso-restore
// --to-file): the disk's data re-hashed on the fly (chunks and the whole
// file, format 1 and 2 alike), written to a temporary file next to `path`,
// synced and renamed into place only when every check passed; a failure or
// an interruption removes the temporary file. Only a disk without snapshot
// deltas (one chain unit) whose extents are flat can be a raw file. Refuses
// (Error(failure), nothing written) when `path` exists. Through the gate
// (operation "RestoreDiskToFile"); returns the `file` record, null in dry-run.
ordered_json restore_disk_to_file(BackupTarget& target, const std::string& id, int disk,
                                  const std::string& path, Gate& gate, Progress& progress);

// VMDK descriptors are host-made text: lines end in LF or CRLF; an extent
// line is `ACCESS SECTORS TYPE "FILE" [OFFSET]` where FILE runs to the last
// '"' of the line (so names with spaces, quotes, non-ASCII are kept whole);
// a ZERO extent has no file. A line that starts like an extent line but
// does not parse (e.g. a file name cut by a newline) makes the descriptor
// unusable for restore.

// A disk descriptor with its extent file names and parentFileNameHint
// replaced: extents[k] names the k-th extent line's file; `parent` ("" = leave
// as is) the parent descriptor of a delta disk. Line ends are kept. Throws
// Error(bad_input) when the text is not a descriptor, has a broken extent
// line, or fewer extent lines than names.
std::string rewrite_descriptor(const std::string& text, const std::vector<std::string>& extents,
                               const std::string& parent);
// The extent file names of a descriptor, in order.
std::vector<std::string> descriptor_extents(const std::string& text);
// Why restore could not use this descriptor for a unit stored with
// `extents` data files; empty when it can.
std::vector<std::string> descriptor_problems(const std::string& text, size_t extents);

// What restore would stop at in a backup whose bytes are intact: a
// missing config, disk units without a descriptor or data file, and
// descriptors it cannot parse (descriptor_problems). `read` returns a
// stored file's raw content. Shared by backup (a run that fails these is
// not published) and verify.
std::vector<std::string> restore_blockers(
    const Manifest& m, const std::function<std::string(const ManifestFile&)>& read);

}  // namespace ceso
