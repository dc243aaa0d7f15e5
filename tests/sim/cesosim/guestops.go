package main

import (
	"net/http"
	"strconv"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// Guest power operations as a real ESXi host does them. vcsim's ShutdownGuest powers
// the VM off at once, without VMware Tools, and it has no RebootGuest at all. On a real
// host both need a powered-on VM (InvalidPowerState) with Tools running
// (ToolsUnavailable), and both return at once: the guest shuts down (or reboots) later,
// on its own. So here ShutdownGuest powers the VM off after a delay, and a guest can be
// told to ignore the request, which is what a hung guest does. Per-VM, in ExtraConfig
// (e.g. through -vm-spec "extra_config"):
//
//	cesosim.guest.shutdown = "ignore"   never shut down when asked
//	cesosim.guest.shutdown_ms = "N"     shut down N ms after being asked (default 300)
//
// SuspendVM_Task of a powered-off VM fails with InvalidPowerState, as on ESXi (vcsim
// "suspends" it).

const (
	toolsUnavailableMsg    = "Cannot complete operation because VMware Tools is not running in this virtual machine."
	invalidPowerStateMsg   = "The attempted operation cannot be performed in the current state (Powered off)."
	defaultGuestShutdownMS = 300
)

// guestOpMethods are the calls guestOps may answer.
var guestOpMethods = map[string]bool{
	"ShutdownGuest":  true,
	"RebootGuest":    true,
	"StandbyGuest":   true,
	"SuspendVM_Task": true,
}

// guestOps answers the calls above itself; it reports whether it answered.
func (f *front) guestOps(w http.ResponseWriter, call soapCall) bool {
	vm, ok := simulator.Map.Get(call.This).(*simulator.VirtualMachine)
	if !ok {
		return false // vcsim answers ManagedObjectNotFound
	}
	var power types.VirtualMachinePowerState
	var tools string
	var extra map[string]string
	simulator.Map.WithLock(vm, func() {
		power = vm.Runtime.PowerState
		if vm.Guest != nil {
			tools = vm.Guest.ToolsRunningStatus
		}
		extra = vmExtraConfig(vm)
	})
	if call.Method == "SuspendVM_Task" {
		if power != types.VirtualMachinePowerStatePoweredOff {
			return false
		}
		f.failedTask(w, call, &types.InvalidPowerState{
			RequestedState: types.VirtualMachinePowerStatePoweredOn,
			ExistingState:  power,
		}, invalidPowerStateMsg)
		return true
	}
	if power != types.VirtualMachinePowerStatePoweredOn {
		writeFault(w, "The attempted operation cannot be performed in the current state ("+
			string(power)+").", &types.InvalidPowerState{
			RequestedState: types.VirtualMachinePowerStatePoweredOn,
			ExistingState:  power,
		})
		return true
	}
	if tools != string(types.VirtualMachineToolsRunningStatusGuestToolsRunning) {
		writeFault(w, toolsUnavailableMsg, &types.ToolsUnavailable{})
		return true
	}
	switch call.Method {
	case "ShutdownGuest":
		if extra["cesosim.guest.shutdown"] != "ignore" {
			delay := defaultGuestShutdownMS
			if ms, err := strconv.Atoi(extra["cesosim.guest.shutdown_ms"]); err == nil && ms >= 0 {
				delay = ms
			}
			time.AfterFunc(time.Duration(delay)*time.Millisecond, func() { guestPoweredOff(vm) })
		}
		writeResponse(w, &types.ShutdownGuestResponse{})
	case "RebootGuest":
		writeResponse(w, &types.RebootGuestResponse{})
	case "StandbyGuest":
		writeResponse(w, &types.StandbyGuestResponse{})
	}
	return true
}

func vmExtraConfig(vm *simulator.VirtualMachine) map[string]string {
	out := map[string]string{}
	if vm.Config == nil {
		return out
	}
	for _, o := range vm.Config.ExtraConfig {
		if ov := o.GetOptionValue(); ov != nil {
			if s, ok := ov.Value.(string); ok {
				out[ov.Key] = s
			}
		}
	}
	return out
}

// guestPoweredOff is the guest finishing its shutdown: the VM powers off.
func guestPoweredOff(vm *simulator.VirtualMachine) {
	simulator.Map.WithLock(vm, func() {
		if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
			return
		}
		off := types.VirtualMachinePowerStatePoweredOff
		simulator.Map.Update(vm, []types.PropertyChange{
			{Name: "runtime.powerState", Val: off},
			{Name: "summary.runtime.powerState", Val: off},
		})
	})
}
