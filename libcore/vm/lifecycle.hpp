// Power operations, waiting for a VM's state, and deleting a VM.
//
// These functions make the change; they do not gate it. The tool wraps each
// call in ceso::Gate::perform (policy.hpp) so --dry-run, restricted mode and
// the audit log apply.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "base/cancel.hpp"
#include "base/log.hpp"
#include "base/records.hpp"
#include "vm/vm.hpp"
#include "vsphere/client.hpp"

namespace ceso {

class VmWriter;  // vm/writer.hpp

enum class PowerOp { on, off, shutdown, reboot, reset, suspend };

// "on", "off", "shutdown", "reboot", "reset", "suspend" → the op; else nullopt.
std::optional<PowerOp> power_op_from(std::string_view word);
std::string_view to_string(PowerOp op);

// The power state an op leads to: "on", "off" or "suspended".
std::string_view target_power(PowerOp op);

// The vSphere method an op starts with ("PowerOnVM_Task", "ShutdownGuest"…),
// as named in plan and audit records.
std::string_view power_method(PowerOp op);

// Current power state word: "on" | "off" | "suspended".
std::string vm_power(vim::Client& c, const vim::MoRef& vm);

// Throws Error(failure) when `op` cannot be done from power state `state`
// (reboot/reset of a VM that is not on, suspend of a VM that is off, shutdown
// of a suspended VM without `force`), with a message that says what to do.
void check_power_op(PowerOp op, std::string_view state, bool force);

// True when `op` from `state` changes nothing (on when on, off/shutdown when
// off, suspend when suspended). Reboot and reset always act.
bool power_op_is_noop(PowerOp op, std::string_view state);

// Make the change (no gate inside: the tool gates). shutdown/reboot go through
// VMware Tools (ShutdownGuest/RebootGuest, which return at once; wait for the
// state with `timeout`); with `force`, fall back to PowerOffVM_Task/ResetVM_Task
// after the timeout (or at once when Tools are not running). Returns false when
// the VM is already there (reboot and reset always act on a running VM).
// Throws Error(failure) for an impossible transition (reboot of a VM that is
// off, suspend of a VM that is off…) and on timeout without `force`.
// `method`, when given, receives the call that did it ("ShutdownGuest", or
// "PowerOffVM_Task" after a fallback).
bool set_power(vim::Client& c, const vim::MoRef& vm, PowerOp op, std::chrono::seconds timeout,
               bool force, std::string* method = nullptr);
// The same through `w` (vm/writer.hpp): reads over its client's API, the
// changes over the API or SSH. `method` is the vSphere method either way.
bool set_power(VmWriter& w, const vim::MoRef& vm, PowerOp op, std::chrono::seconds timeout,
               bool force, std::string* method = nullptr);

// What ceso-wait can wait for.
inline constexpr std::string_view kWaitConditions = "ip tools on off";

// Wait until the VM reports: "ip" (guest.ipAddress, returned), "tools"
// (toolsRunningStatus guestToolsRunning), "on", "off". Returns the IP for
// "ip", else the state word. Throws Error (exit 1) naming what it waited for
// on timeout, Error(usage) for an unknown condition. Polls with backoff.
std::string wait_for(vim::Client& c, const vim::MoRef& vm, std::string_view what,
                     std::chrono::seconds timeout);

// Destroy_Task: unregisters the VM and deletes its files, disks included.
void destroy_vm(vim::Client& c, const vim::MoRef& vm);
void destroy_vm(VmWriter& w, const vim::MoRef& vm);

// The VM's `vm` record as the host has it now (one call). A tool adds its
// result fields to it and prints pass_through(target.record, it,
// vm_owned_fields({results…})): the input's unknown fields kept, ours fresh.
ordered_json current_vm_record(const LocatedVm& vm);

// One human line for a `plan` record on a terminal: "web01: would call
// PowerOffVM_Task" (+ " (refused: …)" in restricted mode).
std::string plan_line(const ordered_json& plan);

// Asks `question` on the controlling terminal (/dev/tty, so it works with
// records on stdin) and returns true for an answer starting with y/Y. Without
// a terminal throws Error(policy) telling to pass `yes_option`. Serialized
// between threads.
bool confirm_on_terminal(const std::string& question, std::string_view yes_option = "--yes");

}  // namespace ceso
