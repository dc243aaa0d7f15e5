// Cold migration of a VM between two standalone ESXi hosts (ceso-mv), without
// vCenter (so without RelocateVM_Task) and without a local copy; between the
// hosts of one vCenter, RelocateVM_Task (relocate_vm).
//
// Every file of the VM's folder that the host lists in layoutEx (.vmx, .vmxf,
// .nvram, .vmsd, disk descriptors and extents, logs) is streamed from the
// source host's /folder service (GET) into the target's (PUT) at once
// (transport/relay: a bounded pipe, SHA-256 on the way; on a free-licensed
// target the PUT is an SSH channel instead, see run_move), into a new folder
// made for it; the .vmx is read into memory and written with
// `uuid.action = "keep"` (the host's answer to "moved or copied?" is then
// "moved": the BIOS and instance uuids stay). Then every file is read back
// from the target and its size and SHA-256 compared with what was sent (the
// host offers no checksum of a datastore file over its API, so re-reading is
// the honest check), the VM is registered (RegisterVM_Task) and its uuids
// read back, and only then the source is destroyed (Destroy_Task, then its
// folder). A failure or an interruption before that point unregisters and
// deletes what was made on the target and leaves the source as it was.
//
// keep_source makes a copy instead: a new name (folder and displayName), new
// BIOS and instance uuids, new MACs and new cloud-init guestinfo (new
// instance-id, hostname, network: reidentified_guestinfo, as ceso-clone),
// written into the copied .vmx; the source stays.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/progress.hpp"
#include "base/records.hpp"
#include "cloudinit/cloudinit.hpp"
#include "safety/policy.hpp"
#include "transport/datastore.hpp"
#include "vsphere/client.hpp"

namespace ceso {

class VmWriter;

struct MoveRequest {
  std::string datastore;  // target datastore; "" = the one of the same name as the source's
  bool keep_source = false;
  // keep_source only:
  std::string new_name;
  ordered_json cloudinit = ordered_json::object();  // cloud-init flag fields (hostname…)
  GuestInfoEncoding encoding = GuestInfoEncoding::gzip_base64;
  std::vector<std::string> macs;  // MACs of the first NICs; the others are generated
  bool verify = true;             // read every file back from the target
  int retries = 3;                // GET resumes; PUT restarts
  size_t pipe_bytes = 8u << 20;
};

struct MoveFile {
  DatastorePath from, to;
  std::string kind;   // layoutEx type: config, nvram, diskDescriptor, diskExtent, log…
  uint64_t size = 0;  // as layoutEx reports it
};

// What a move will do, read and checked before any change.
struct MovePlan {
  vim::MoRef vm;
  std::string name, uuid, instance_uuid;
  std::string new_name;  // = name unless keep_source
  DatastorePath source_dir, target_dir;
  std::vector<MoveFile> files;
  uint64_t bytes = 0;
  vim::MoRef target_folder, target_pool, target_host;
  std::map<std::string, std::string> extra_config;  // the source's, for keep_source
};

// Reads the source VM and the target host and refuses what cannot be moved:
// Error(usage) for the same endpoint twice; Error(policy) for a VM that is
// not powered off; Error(failure) for a vCenter on either side (see
// relocate_vm), a free-licensed target without `target_over_ssh` (its API is
// read-only; the message says how to configure SSH access), a template,
// snapshots, PCI passthrough devices, a file outside the VM's folder or of a
// kind a powered-off VM does not have (suspend), a datastore that is not
// accessible or missing on the target, a name or BIOS uuid already on the
// target (keep_source: the new name), less free space on the target
// datastore than the files' size. Changes nothing.
//
// A free-licensed source is moved from when `source_over_ssh` (its VmWriter
// writes over SSH: the GETs work on a free host, and the source is removed
// with `vim-cmd vmsvc/destroy` and `rm -rf` of its folder); without it only
// keep_source (nothing is written there).
//
// A free-licensed target is moved to when `target_over_ssh` (its VmWriter
// writes over SSH): its datastore's free space is still read over the API,
// the target paths must be fit for its shell (vmfs_path, shell_quote:
// Error bad_input otherwise, before anything is made).
MovePlan plan_move(vim::Client& source, const vim::MoRef& vm, vim::Client& target,
                   const MoveRequest& req, bool source_over_ssh = false,
                   bool target_over_ssh = false);

// The plan's records for --dry-run params: files with sizes and target paths.
ordered_json plan_files(const MovePlan& plan);

// Carries the plan out, each host's change through the gate (one audited
// mutation per host: RegisterVM_Task on the target with the files, and,
// unless keep_source, Destroy_Task on the source).
//
// With `target_writer` over SSH (a free-licensed target), the target side
// is the ceso-mkvm/ceso-restore path of vm/hostcli instead of the API: the
// folder made with `mkdir`, each file streamed from the source's GET onto
// an SSH channel (`cat` into .NAME.ceso-tmp, `mv -f` to its name; no local
// copy, memory bounded by the pipe), read back with `cat` over SSH and
// hashed, then `vim-cmd solo/registervm` and the identity read back over
// the API; the rollback is `vim-cmd vmsvc/unregister` and `rm -rf` of the
// folder over SSH. The audit entry's transport is then "ssh". Returns the target VM's
// record with moved_from/copied_from and the files (bytes, sha256), or null
// in dry-run. Throws the first error after rolling the target back;
// Error(interrupted) after SIGINT/SIGTERM (the copy stops at once, the
// rollback runs to the end). When the source cannot be removed after the
// target was verified and registered, the target stays and the error says
// so (both exist).
ordered_json run_move(vim::Client& source, VmWriter& source_writer, vim::Client& target,
                      VmWriter& target_writer, const MovePlan& plan, const MoveRequest& req,
                      Gate& gate, Progress& progress);

// On vCenter (the source's endpoint is one): RelocateVM_Task of the
// powered-off VM to the host named `host` of the same vCenter, into that
// host's cluster/compute resource root pool, and to `datastore` when given
// (else its datastores must be visible from the host). Refuses like
// plan_move (not powered off: exit 5; a template, snapshots, passthrough;
// an unknown host or datastore; the VM's own host: exit 2). Through the
// gate (one RelocateVM_Task); returns the VM's record with moved_from
// {endpoint, host}, or null in dry-run.
ordered_json relocate_vm(vim::Client& client, const vim::MoRef& vm, const std::string& host,
                         const std::string& datastore, Gate& gate);

// The MAC changes of a copy: for each NIC of the .vmx (ethernetN.present,
// in N order) its MAC (address or generatedAddress) → the next of `given`,
// else a new one (random_mac). Pure but for the random MACs.
std::vector<std::pair<std::string, std::string>> copy_macs(
    const std::map<std::string, std::string>& vmx, const std::vector<std::string>& given);

// The .vmx of the target (pure; exposed for tests): `uuid.action = "keep"`
// set; with keep_source also the new displayName, uuids (uuid.location
// dropped), MACs (static, the generated ones' keys dropped) and `guestinfo`
// keys. Lines that are not changed are kept byte for byte.
std::string moved_vmx(const std::string& text, bool keep_source, const std::string& new_name,
                      const std::string& uuid, const std::string& instance_uuid,
                      const std::vector<std::pair<std::string, std::string>>& guestinfo,
                      const std::vector<std::pair<std::string, std::string>>& macs);

// `key = "value"` lines of a .vmx, keys lower-cased, |XX escapes decoded.
std::map<std::string, std::string> vmx_values(const std::string& text);

}  // namespace ceso
