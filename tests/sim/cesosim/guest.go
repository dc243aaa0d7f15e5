package main

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// guestUpdate plays VMware Tools for a VM, which vcsim cannot: its guest.* properties
// never change on their own (tools stay "not installed", no IP address). Tests of tools
// that wait for an IP or for tools use POST /_ceso/guest, e.g.
//
//	{"name":"web01","ip":"10.0.0.21","tools":"running","hostname":"web01"}
//
// VM by "vm" (moref value) or "name". "tools" is running, notRunning or notInstalled.
// An empty "ip" or "hostname" clears it.
type guestUpdate struct {
	VM       string  `json:"vm,omitempty"`
	Name     string  `json:"name,omitempty"`
	IP       *string `json:"ip,omitempty"`
	Tools    string  `json:"tools,omitempty"`
	Hostname *string `json:"hostname,omitempty"`
}

func (inv *inventory) findVM(ctx context.Context, id, name string) (types.ManagedObjectReference, error) {
	if id != "" {
		ref := types.ManagedObjectReference{Type: "VirtualMachine", Value: id}
		if _, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine); !ok {
			return ref, fmt.Errorf("no VM with id %q", id)
		}
		return ref, nil
	}
	vms, err := inv.vms(ctx, []string{"name"})
	if err != nil {
		return types.ManagedObjectReference{}, err
	}
	for _, vm := range vms {
		if vm.Name == name {
			return vm.Self, nil
		}
	}
	return types.ManagedObjectReference{}, fmt.Errorf("no VM named %q", name)
}

// setGuest changes guest properties directly in vcsim's object (under its lock, with the
// usual change notifications), because no API call sets them: on a real host only the
// guest's tools do.
func (inv *inventory) setGuest(ctx context.Context, u guestUpdate) error {
	if (u.VM == "") == (u.Name == "") {
		return fmt.Errorf("give exactly one of vm or name")
	}
	var running types.VirtualMachineToolsRunningStatus
	var status types.VirtualMachineToolsStatus
	guestState := "notRunning"
	switch u.Tools {
	case "":
	case "running":
		running, status, guestState = types.VirtualMachineToolsRunningStatusGuestToolsRunning, types.VirtualMachineToolsStatusToolsOk, "running"
	case "notRunning":
		running, status = types.VirtualMachineToolsRunningStatusGuestToolsNotRunning, types.VirtualMachineToolsStatusToolsNotRunning
	case "notInstalled":
		running, status = types.VirtualMachineToolsRunningStatusGuestToolsNotRunning, types.VirtualMachineToolsStatusToolsNotInstalled
	default:
		return fmt.Errorf("tools must be running, notRunning or notInstalled, not %q", u.Tools)
	}
	ref, err := inv.findVM(ctx, u.VM, u.Name)
	if err != nil {
		return err
	}
	vm := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	simulator.Map.WithLock(vm, func() {
		var changes []types.PropertyChange
		set := func(name string, val interface{}) {
			changes = append(changes, types.PropertyChange{Name: name, Val: val})
		}
		if u.IP != nil {
			set("guest.ipAddress", *u.IP)
			set("summary.guest.ipAddress", *u.IP)
			if vm.Guest != nil && len(vm.Guest.Net) > 0 {
				nics := append([]types.GuestNicInfo(nil), vm.Guest.Net...)
				nics[0].IpAddress = nil
				if *u.IP != "" {
					nics[0].IpAddress = []string{*u.IP}
				}
				set("guest.net", nics)
			}
		}
		if u.Tools != "" {
			set("guest.toolsRunningStatus", string(running))
			set("guest.toolsStatus", status)
			set("guest.guestState", guestState)
			set("summary.guest.toolsRunningStatus", string(running))
			set("summary.guest.toolsStatus", status)
		}
		if u.Hostname != nil {
			set("guest.hostName", *u.Hostname)
			set("summary.guest.hostName", *u.Hostname)
		}
		simulator.Map.Update(vm, changes)
	})
	return nil
}
