// Host changes on a free-licensed ESXi host over SSH (ceso-pci, ceso-net):
// the esxcli commands that enable passthrough and change standard
// portgroups, and the .vmx lines of a passthrough device (docs/esxi.md
// "Free-licensed hosts over SSH"). Reads stay on the API (a free licence
// allows them); these are the writes the API refuses there.
//
// Facts relied on: `esxcli hardware pci pcipassthru set --device-id ADDR
// --enable true|false [--apply-now]` (ESXi 7.0+); `esxcli network vswitch
// standard portgroup add|remove --portgroup-name PG --vswitch-name VS`, `set
// --portgroup-name PG --vlan-id N`; esxcli fails with "Error: …" and a
// non-zero exit status. A static passthrough device in a .vmx is
// pciPassthruN.present/id/deviceId/vendorId/systemId, the id written
// "%05d:%03d:%02d.%d" with every field decimal ("00000:059:00.0" for
// 0000:3b:00.0; a hex address is refused at power-on), the ids "0x10de";
// memory locked to its size is sched.mem.min = memSize and sched.mem.pin =
// "TRUE".
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vm/pci.hpp"
#include "vm/writer.hpp"

namespace ceso {

// ---- esxcli argument vectors (every value one argument: never a shell line)
std::vector<std::string> esxcli_passthru_set(const std::string& address, bool enable,
                                             bool apply_now);
std::vector<std::string> esxcli_portgroup_add(const std::string& portgroup,
                                              const std::string& vswitch);
std::vector<std::string> esxcli_portgroup_vlan(const std::string& portgroup, int vlan);
std::vector<std::string> esxcli_portgroup_remove(const std::string& portgroup,
                                                 const std::string& vswitch);

// Runs an esxcli command through `w` (an SSH writer; the API writer throws
// Error failure). A non-zero exit status or a signal throws Error(failure)
// naming `what`, the host and esxcli's first "Error:" line.
void run_esxcli(VmWriter& w, const std::vector<std::string>& argv, const std::string& what);

// Standard portgroups over SSH, as add_portgroup / update_portgroup /
// remove_portgroup (vm/net) over the API. add with a VLAN is two commands
// (add, then set --vlan-id); when the second fails the new portgroup is
// removed again (best effort) and the error thrown. esxcli changes only the
// VLAN of a portgroup (its policy stays): moving one to another vSwitch is
// not done here.
void ssh_add_portgroup(VmWriter& w, const std::string& portgroup, const std::string& vswitch,
                       int vlan);
void ssh_set_portgroup_vlan(VmWriter& w, const std::string& portgroup, int vlan);
void ssh_remove_portgroup(VmWriter& w, const std::string& portgroup, const std::string& vswitch);

// ---- files and VMs on a datastore over SSH (ceso-mkvm, ceso-clone,
// ceso-restore, ceso-mv on a free host; docs/esxi.md "Making a VM over SSH")

// A vim-cmd (or other host client) through `w`: its result checked by
// vim::check_result (fault blocks, exit status), a transient
// ManagedObjectNotFound tried again (3 attempts in all). Returns its stdout.
std::string run_host_client(VmWriter& w, const std::vector<std::string>& argv,
                            const std::string& what, std::string_view input = {});

// `mkdir PATH` (a /vmfs/volumes/DS/DIR path, vmfs_path): true when made,
// false when PATH existed already (`test -e`); else the host's error.
bool ssh_make_dir(VmWriter& w, const std::string& path);

// A whole file written over SSH: its bytes into DIR/.NAME.ceso-tmp
// (`sh -c 'set -C && cat >"$1"'`: never over an existing file), renamed to
// NAME (`mv -f`) once the command exited 0. `cat` exits 0 on a short input
// too (an SSH channel ends stdin the same way whether the data ended or the
// sender gave up): the caller checks what it sent (the input's own count, or
// a read-back) before relying on the file.
struct SshFileWrite {
  std::string path, tmp;
  std::vector<std::string> write, move;
  std::string command() const;  // both, for an audit entry's params
};
SshFileWrite ssh_file_write(const std::string& path);
// Runs `f` with `input` streamed on the first command's stdin (at most 256
// KiB held; SshConnection::run_input). A failing command (also one that
// ends before all of its input, as on a full datastore) throws
// Error(failure) naming the file, the exit status or signal and the host's
// first stderr line; `input`'s errors and Error(interrupted) from `cancel`
// are thrown as they are (the temporary file stays: the caller's rollback
// removes its folder).
void run_ssh_file_write(VmWriter& w, const SshFileWrite& f, const SshConnection::InputFn& input,
                        const std::function<bool()>& cancel = {});

// `cat PATH` streamed back and hashed as it arrives: its size and SHA-256
// (lowercase hex). nullopt when cat fails (no such file: `why` gets the
// host's first stderr line). A file that goes on past `limit` bytes (more
// than was written: a host sending without end) stops the read there,
// Error(failure) naming the file and the limit.
struct SshFileHash {
  uint64_t bytes = 0;
  std::string sha256;
};
std::optional<SshFileHash> ssh_hash_file(VmWriter& w, const std::string& path, std::string& why,
                                         uint64_t limit = UINT64_MAX);

// `vim-cmd solo/registervm VMX NAME` (VMX a /vmfs/volumes path of the
// datastore path `vmx_ds`), then the new vmid: the one printed, else the
// single getallvms row of `vmx_ds`. `vmid` is set as soon as it is known
// (so a caller's undo can unregister it when what follows fails); the id is
// then confirmed through `c`, the API of the same host
// (config.files.vmPathName == vmx_ds), else Error(failure).
void ssh_register_vm(VmWriter& w, vim::Client& c, const std::string& vmx_ds,
                     const std::string& name, std::string& vmid);
// The vmids to undo a registration of `vmx_ds`: `vmid` when known, else
// the getallvms rows of that .vmx (never by name).
std::vector<std::string> ssh_registered_vmids(VmWriter& w, const std::string& vmid,
                                              const std::string& vmx_ds);

// ---- .vmx lines of passthrough devices

// One `key = "value"` line of a .vmx: the key as written, the value unquoted
// (|22 escapes decoded). Lines that are not of that form are skipped.
struct VmxLine {
  std::string key, value;
};
std::vector<VmxLine> vmx_lines(std::string_view text);

// "0000:3b:00.0" → "00000:059:00.0"; and back ("" when `id` is not of that
// form, as an old hex "3b:00.0" is not).
std::string vmx_pci_id(std::string_view address);
std::string pci_address_of_vmx_id(std::string_view id);

// The pciPassthruN devices of a .vmx (any key pciPassthruN.* makes N taken).
struct VmxPassthrough {
  int index = 0;
  bool present = false;
  std::string address;  // from .id ("" when unreadable)
  std::string id_text;  // .id as written
  std::optional<PciIds> ids;
  bool dynamic = false;           // .allowedDevices
  std::vector<std::string> keys;  // every key of this N, as written
};
std::vector<VmxPassthrough> vmx_passthrough(std::string_view text);
// ESXi's limit of passthrough devices per VM.
inline constexpr int kMaxVmxPassthrough = 16;

// The changes that add device `d` of the host with `system_id` as the
// lowest free pciPassthruN, lock the memory (sched.mem.min = the .vmx's
// memSize, sched.mem.pin) and, for a GPU, set the 64-bit MMIO keys. Throws
// Error(failure) when the .vmx has no readable memSize, already holds the
// device, or has no free N below kMaxVmxPassthrough.
std::vector<VmxChange> vmx_attach_changes(std::string_view vmx, const PciDevice& d,
                                          const std::string& system_id, bool gpu, int mmio_gb);

// The changes that remove every present device `match` picks (all of its
// keys); when none is left, the 64-bit MMIO keys go too. `removed` gets the
// addresses (or "dynamic"). Empty when nothing matches.
std::vector<VmxChange> vmx_detach_changes(std::string_view vmx,
                                          const std::function<bool(const VmxPassthrough&)>& match,
                                          std::vector<std::string>& removed);

}  // namespace ceso
