// What ESXi's own command-line clients print, read as pure functions: the
// way to a free-licensed host, where the API is read-only and changes are
// made over SSH (transport/ssh) with vim-cmd (docs/esxi.md "SSH").
//
// The formats are the host's (../shared/ESXI-FACTS.md): column tables padded
// with spaces, a snapshot tree drawn with "--" depth markers, and faults
// printed as "(vim.fault.X) { … }" blocks, often with exit status 0. Host
// text reaches messages only through host_text()/quote().
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "transport/ssh.hpp"
#include "vsphere/client.hpp"

namespace ceso::vim {

// One row of `vim-cmd vmsvc/getallvms`. Only the vmid and the .vmx path are
// read (the name comes from the API or the .vmx): names and datastore names
// may hold spaces and brackets, and annotations may span lines. `vmx_path`
// is "[datastore] dir/name.vmx". A row whose text allows more than one
// reading of the path has `ambiguous` set (a name such as "a [b] c"):
// callers that know the path they want use vmids_for_vmx instead. The vmid
// is the VirtualMachine moref value the API shows; the rows are hints to be
// confirmed through the API (a hostile annotation can print a fake row).
struct GetAllVmsRow {
  std::string vmid;
  std::string vmx_path;
  bool ambiguous = false;
};
std::vector<GetAllVmsRow> parse_getallvms(std::string_view output);

// The vmids of the rows whose File column is exactly `vmx_path`
// ("[ds] dir/name.vmx"): after `solo/registervm`, which may print nothing.
std::vector<std::string> vmids_for_vmx(std::string_view output, std::string_view vmx_path);

// `vim-cmd vmsvc/power.getstate ID`: "Retrieved runtime info" then
// "Powered on", "Powered off" or "Suspended". Throws Error(failure) naming
// the output's first line for anything else.
enum class PowerState { powered_on, powered_off, suspended };
PowerState parse_power_state(std::string_view output);

// One snapshot of `vim-cmd vmsvc/snapshot.get ID`, in the order printed
// (depth first). `depth` 0 is a root; `parent` indexes the list (-1 for a
// root). `id` is the number snapshot.remove and snapshot.revert take.
struct Snapshot {
  std::string id;
  std::string name;
  std::string description;  // "Desciption" in the host's output (VMware's typo)
  std::string created;      // "2/23/2015 18:12:50" as printed
  std::string state;        // "powered on", "powered off", "suspended"
  int depth = 0;
  int parent = -1;
};
// No snapshots: only the "Get Snapshot:" line, an empty list. Throws
// Error(failure) naming the line for a tree that does not hold together
// (a depth jump, a snapshot without an id, a repeated id).
std::vector<Snapshot> parse_snapshot_get(std::string_view output);

// `vim-cmd hostsvc/hostsummary`: the host's HostSystem summary as hostd
// prints it, "(vim.host.Summary) {" … with a block "hardware =
// (vim.host.Summary.HardwareSummary) {" holding `uuid = "…"` — the same
// value the API reports as summary.hardware.uuid (hostd answers both;
// docs/esxi.md). Returns that uuid, trimmed, as printed (compare it without
// case: hardware_uuids_equal). Throws Error(failure) naming the line for
// output that is not such a summary: no summary, no hardware block or two,
// no uuid line in it or two, a value that is not one quoted run of hex
// digits and '-' (at most 64), `<unset>` or empty.
std::string parse_hostsummary_uuid(std::string_view output);
// Whether two hardware uuids are the same: equal once trimmed, without case.
// Empty never equals anything.
bool hardware_uuids_equal(std::string_view a, std::string_view b);

// The first fault block in `text` — a line "(vim.fault.NotFound) {" at the
// start, up to a line "}" — as a Fault with the exit code and explanation
// of the API's fault of that type (fault_meaning), its `msg = "…"` as the
// host's message, `command` as the method ("vim-cmd vmsvc/power.on").
// nullopt when there is none.
std::optional<Fault> find_fault(std::string_view text, std::string_view command,
                                const std::string& host);

// The result of a vim-cmd run: throws the Fault of a fault block in its
// stdout or stderr (whatever the exit status), else Error(failure) for a
// non-zero exit status or a signal, naming the first line of its stderr
// (or stdout).
void check_result(const SshResult& result, std::string_view command, const std::string& host);

}  // namespace ceso::vim
