// VM writes over the vSphere API or over SSH (docs/architecture.md "VM
// writes"; docs/esxi.md "Free-licensed hosts over SSH").
//
// Reads always go through the API (a free licence allows them, one round
// trip). Writes go through a VmWriter: ApiVmWriter makes the vSphere calls
// ceso always made (same calls, same round trips); SshVmWriter runs the
// host's own local clients (vim-cmd) over one SshConnection per tool run,
// the way to change anything on a free-licensed ESXi host, whose API is
// read-only. VmWriters picks one per endpoint for a tool run:
//
//   api   the API, whatever the licence (a free host answers RestrictedVersion)
//   ssh   SSH; the endpoint must have SSH access configured (else Error usage)
//   auto  SSH iff the host's licence forbids API writes (Client::
//         api_writes_restricted, read once per session) and SSH access is
//         configured; without SSH access the API, with no licence read (so a
//         licensed host costs what it always did) and a RestrictedVersion
//         answer turned into a message saying how to configure SSH.
//
// The writers make the change they are asked for; they do not gate it (the
// tool wraps each call in Gate::perform, with Mutation::transport set from
// transport()).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "transport/ssh.hpp"
#include "vm/lifecycle.hpp"
#include "vm/snapshot.hpp"
#include "vm/spec.hpp"
#include "vsphere/client.hpp"

namespace ceso {

enum class Transport { api, ssh };

// One .vmx change: the key and its new value, or nullopt to remove the key.
using VmxChange = std::pair<std::string, std::optional<std::string>>;
// Computes the changes from the .vmx text as read (SshVmWriter::edit_vmx_file).
using VmxEditor = std::function<std::vector<VmxChange>(std::string_view vmx)>;
enum class TransportChoice { api, ssh, automatic };

std::string_view to_string(Transport t);  // "api", "ssh"
// "api", "ssh", "auto" → the choice; else nullopt.
std::optional<TransportChoice> transport_choice_from(std::string_view word);

class VmWriter {
 public:
  virtual ~VmWriter() = default;
  virtual Transport transport() const = 0;
  // The API client of the VM's endpoint: every read goes there.
  virtual vim::Client& client() = 0;

  // A hard power operation (on, off, reset, suspend): PowerOnVM_Task… or
  // vim-cmd vmsvc/power.on…; waits until the host has done it.
  virtual void power(const vim::MoRef& vm, PowerOp op) = 0;
  // shutdown or reboot through VMware Tools (ShutdownGuest/RebootGuest, or
  // vim-cmd vmsvc/power.shutdown/reboot); returns at once. Throws the
  // host's Fault (ToolsUnavailable, InvalidPowerState) as the API does.
  virtual void guest(const vim::MoRef& vm, PowerOp op) = 0;
  // Destroy_Task / vim-cmd vmsvc/destroy: the VM and its files.
  virtual void destroy(const vim::MoRef& vm) = 0;

  // A new snapshot. The API returns its moref; over SSH the ref is empty
  // (vim-cmd prints none): find it in the tree read afterwards
  // (new_snapshot).
  virtual vim::MoRef create_snapshot(const vim::MoRef& vm, const std::string& name,
                                     const std::string& description, bool memory, bool quiesce) = 0;
  virtual void remove_snapshot(const vim::MoRef& vm, const SnapshotInfo& snapshot,
                               bool remove_children, bool consolidate) = 0;
  virtual void remove_all_snapshots(const vim::MoRef& vm, bool consolidate) = 0;
  virtual void revert_snapshot(const vim::MoRef& vm, const SnapshotInfo& snapshot,
                               bool suppress_power_on) = 0;

  // ReconfigVM_Task with `spec`. Over SSH only what lives in the .vmx can
  // change (CPUs, cores per socket, memory, annotation, ExtraConfig), only
  // while the VM is off: the .vmx is edited (read, changed, written to a
  // temporary file, renamed over it) and reloaded (vim-cmd vmsvc/reload).
  // Anything else is refused (Error failure) before anything is sent.
  virtual void reconfigure(const vim::MoRef& vm, const vmspec::ConfigSpec& spec) = 0;

  // Over SSH only: the .vmx edit of reconfigure with the changes `editor`
  // computes from the file as read (VM off, confirmed by vim-cmd; written to
  // a temporary file renamed over it; vim-cmd vmsvc/reload). No change: no
  // write. The API writer throws Error(failure).
  virtual void edit_vmx_file(const vim::MoRef& vm, const VmxEditor& editor);
  // Over SSH only: a host command (esxcli) once the SSH host is known to be
  // the API's host (as for every change), its result returned unchecked.
  // The API writer throws Error(failure).
  virtual SshResult host_command(const std::vector<std::string>& argv);

  // Over SSH only: a command on the host's shell (mkdir, vmkfstools, a file
  // written from `input`), on the writer's connection, its result returned
  // unchecked — for the provisioning steps of vm/provision that have no
  // call above. The API writer throws Error(failure).
  virtual SshResult shell(const std::vector<std::string>& argv, std::string_view input = {});
  // Over SSH only: the same with a stream on the command's stdin, pulled
  // from `input` in chunks (SshConnection::run_input: a restored disk). The
  // API writer throws Error(failure).
  virtual SshResult shell_input(const std::vector<std::string>& argv,
                                const SshConnection::InputFn& input,
                                const std::function<bool()>& cancel = {});
  // Over SSH only: a command whose stdout is handed to `sink` as it arrives
  // (SshConnection::stream: a file read back, never held whole); returns
  // its exit status and stderr (`out` stays empty). The API writer throws
  // Error(failure).
  virtual SshResult shell_output(const std::vector<std::string>& argv,
                                 const std::function<void(const char*, size_t)>& sink);
  // "root@host:22" over SSH, the endpoint id over the API: for messages.
  virtual std::string name() const;
  // Over SSH: opens the connection now, if it is not open, which proves it
  // reaches the endpoint's host (VmWriters below); nothing else runs. For a
  // tool whose work ends with a change over SSH (ceso-mv removing a free
  // source): a wrong `ssh:` is refused before the work starts, not after
  // it. The API writer has nothing to do.
  virtual void prove() {}
};

// What to configure for changes over SSH on `ep` (a free-licensed host
// without SSH access): the `ssh:` config keys or CESO_SSH…, ceso(7).
std::string ssh_access_hint(const Endpoint& ep);

// The API writer for a client (what every tool did before).
std::unique_ptr<VmWriter> make_api_writer(vim::Client& c);

// The writers of one tool run, one per client; at most one SshConnection per
// endpoint, opened at its first command (a dry run never connects; opened again
// after it was lost, so a rollback can run) and
// shared by every worker of a parallel run (commands one at a time).
// Each connection is used only once it has proved to reach the endpoint's
// host: `vim-cmd hostsvc/hostsummary` there prints the hardware uuid the API
// reports (summary.hardware.uuid of the endpoint's one HostSystem, read once
// per run); otherwise every command over it is refused with Error(usage)
// naming both uuids (docs/esxi.md "Free-licensed hosts over SSH").
// Thread-safe.
class VmWriters {
 public:
  explicit VmWriters(TransportChoice choice, bool accept_new_host_key = false,
                     Environment env = process_environment());
  ~VmWriters();
  VmWriters(const VmWriters&) = delete;
  VmWriters& operator=(const VmWriters&) = delete;

  // The writer for `c`'s endpoint, chosen as the top of this file says.
  // Throws Error(usage) for --transport ssh without SSH access.
  VmWriter& for_client(vim::Client& c);

  // SSH commands run so far (every endpoint), for round-trip accounting.
  uint64_t ssh_commands() const;

  struct Link;

 private:
  TransportChoice choice_;
  bool accept_new_host_key_;
  Environment env_;
  mutable std::mutex mutex_;
  std::map<vim::Client*, std::unique_ptr<VmWriter>> writers_;
  std::map<std::string, std::shared_ptr<Link>> links_;  // by endpoint id
};

// After create_snapshot: the snapshot it made in the tree read afterwards —
// the one with `ref` when the writer returned one, else the one named
// `name` whose id is not among `before`'s (the newest such). nullptr when
// none.
const SnapshotInfo* new_snapshot(const std::vector<SnapshotInfo>& after,
                                 const std::vector<SnapshotInfo>& before, const vim::MoRef& ref,
                                 const std::string& name);

// .vmx editing (pure; exposed for tests). VmxChange: above.
// What `spec` changes in a .vmx: numvcpus, cpuid.coresPerSocket, memSize,
// annotation, and each ExtraConfig key (an empty value removes it, as the
// API does). Throws Error(failure) naming what cannot be changed by editing
// the .vmx (devices, name, uuids, guest id, firmware, version), and
// Error(bad_input) for a key that is not a .vmx key (letters, digits, '.',
// '_', '-', ':' only).
std::vector<VmxChange> vmx_changes(const vmspec::ConfigSpec& spec);
// `text` with `changes` applied: a key's line (keys compare without case, as
// the host reads them) is replaced in place, or removed; a new key is
// appended; every other line is kept byte for byte. Values are written with
// vmx_quote. Throws Error(failure) when a key appears on more than one line
// (the file is not as the host writes it).
std::string edit_vmx(std::string_view text, const std::vector<VmxChange>& changes);
// "[ds] dir/x.vmx" → "/vmfs/volumes/ds/dir/x.vmx". Throws Error(failure)
// for a path that is not of that form or holds a ".." component.
std::string vmfs_path(std::string_view datastore_path);

}  // namespace ceso
