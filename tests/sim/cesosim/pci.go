package main

// PCI passthrough as a real ESXi host has it (vcsim 0.24.2 has none of it): every host
// gets a few passthrough-capable devices in hardware.pciDevice, a HostPciPassthruSystem
// (configManager.pciPassthruSystem) with pciPassthruInfo and UpdatePassthruConfig, the
// devices in QueryConfigTarget (pciPassthrough, and dynamicPassthrough as on ESXi 7.0+),
// and the checks a host makes when a VM with passthrough devices powers on.

import (
	"fmt"
	"hash/fnv"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// pciDeviceSpec is one device the simulator adds to every host. Ids are real ones
// (pci.ids): an NVIDIA Tesla T4, an NVIDIA Quadro RTX 6000 with its HD audio function,
// and an Intel X710 NIC.
type pciDeviceSpec struct {
	id                   string // segment:bus:slot.function
	class                uint16
	vendor, device       uint16
	subVendor, subDevice uint16
	vendorName, name     string
	enabled              bool // passthrough enabled (and active) at start
}

var simPCIDevices = []pciDeviceSpec{
	{"0000:18:00.0", 0x0200, 0x8086, 0x1572, 0x8086, 0x0006, "Intel Corporation", "Ethernet Controller X710 for 10GbE SFP+", false},
	{"0000:3b:00.0", 0x0302, 0x10de, 0x1eb8, 0x10de, 0x12a2, "NVIDIA Corporation", "TU104GL [Tesla T4]", true},
	{"0000:af:00.0", 0x0300, 0x10de, 0x1e30, 0x10de, 0x12ba, "NVIDIA Corporation", "TU102GL [Quadro RTX 6000/8000]", true},
	{"0000:af:00.1", 0x0403, 0x10de, 0x10f7, 0x10de, 0x12ba, "NVIDIA Corporation", "TU102 High Definition Audio Controller", true},
}

// pciHost is one host's passthrough state.
type pciHost struct {
	host     types.ManagedObjectReference
	system   types.ManagedObjectReference // its HostPciPassthruSystem
	systemID string                       // QueryConfigTarget's systemId, the backing's
	devices  []types.HostPciDevice        // hardware.pciDevice
	info     map[string]*types.HostPciPassthruInfo
}

// pciState holds every host's state; its mutex guards info.
type pciState struct {
	mu      sync.Mutex
	hosts   map[types.ManagedObjectReference]*pciHost
	dynamic bool // offer dynamicPassthrough (ESXi 7.0+)
}

var pci = &pciState{hosts: map[types.ManagedObjectReference]*pciHost{}}

// pciPassthruSystem is the managed object vcsim dispatches UpdatePassthruConfig to.
type pciPassthruSystem struct {
	mo.HostPciPassthruSystem
	host types.ManagedObjectReference
}

// systemIDFor makes a stable, host-unique systemId in the form ESXi uses (a uuid).
func systemIDFor(host types.ManagedObjectReference) string {
	h := fnv.New64a()
	h.Write([]byte(host.Value))
	v := h.Sum64()
	return fmt.Sprintf("5f1b2c3d-%04x-%04x-%04x-0cc47a%06x", v>>48&0xffff, v>>32&0xffff, v>>16&0xffff, v&0xffffff)
}

// installPCI gives every host its devices and its HostPciPassthruSystem. Run before
// serving (no client can see the change half-made).
func installPCI(dynamic bool) {
	pci.dynamic = dynamic
	for _, e := range simulator.Map.All("HostSystem") {
		hs, ok := e.(*simulator.HostSystem)
		if !ok {
			continue
		}
		ph := &pciHost{host: hs.Self, systemID: systemIDFor(hs.Self), info: map[string]*types.HostPciPassthruInfo{}}
		// vcsim's hosts share one hardware info; give each its own device list.
		hw := *hs.Hardware
		hw.PciDevice = append([]types.HostPciDevice(nil), hs.Hardware.PciDevice...)
		var infos []types.BaseHostPciPassthruInfo
		for _, d := range hw.PciDevice { // the chipset: not capable, as on a real host
			i := &types.HostPciPassthruInfo{Id: d.Id, DependentDevice: d.Id}
			ph.info[d.Id] = i
		}
		for _, s := range simPCIDevices {
			bus, slot, fn := parsePCIAddress(s.id)
			dev := types.HostPciDevice{
				Id: s.id, ClassId: int16(s.class), Bus: bus, Slot: slot, Function: fn,
				VendorId: int16(s.vendor), SubVendorId: int16(s.subVendor), VendorName: s.vendorName,
				DeviceId: int16(s.device), SubDeviceId: int16(s.subDevice), DeviceName: s.name,
			}
			hw.PciDevice = append(hw.PciDevice, dev)
			ph.info[s.id] = &types.HostPciPassthruInfo{Id: s.id, DependentDevice: s.id, PassthruCapable: true,
				PassthruEnabled: s.enabled, PassthruActive: s.enabled}
		}
		ph.devices = hw.PciDevice
		for _, d := range hw.PciDevice {
			infos = append(infos, ph.info[d.Id])
		}
		sys := &pciPassthruSystem{host: hs.Self}
		// ESXi's id; vCenter's are per host.
		sys.Self = types.ManagedObjectReference{Type: "HostPciPassthruSystem", Value: "ha-pcipassthrusystem"}
		if hs.Self.Value != "ha-host" {
			sys.Self.Value = "pcipassthrusystem-" + hs.Self.Value
		}
		sys.PciPassthruInfo = infos
		ref := simulator.Map.Put(sys).Reference()
		ph.system = ref
		simulator.Map.WithLock(hs, func() {
			hs.Hardware = &hw
			cfg := *hs.Config
			cfg.PciPassthruInfo = infos
			hs.Config = &cfg
			hs.ConfigManager.PciPassthruSystem = &ref
		})
		pci.hosts[hs.Self] = ph
	}
}

// parsePCIAddress reads "0000:3b:00.0" (hex bus and slot, decimal function).
func parsePCIAddress(id string) (bus, slot, fn byte) {
	var seg, b, s, f uint
	fmt.Sscanf(id, "%04x:%02x:%02x.%d", &seg, &b, &s, &f)
	return byte(b), byte(s), byte(f)
}

// snapshotInfo copies a host's passthrough info in device order (caller holds pci.mu).
func (ph *pciHost) snapshotInfo() []types.BaseHostPciPassthruInfo {
	out := make([]types.BaseHostPciPassthruInfo, 0, len(ph.devices))
	for _, d := range ph.devices {
		c := *ph.info[d.Id]
		out = append(out, &c)
	}
	return out
}

func (ph *pciHost) device(id string) *types.HostPciDevice {
	for i := range ph.devices {
		if ph.devices[i].Id == id {
			return &ph.devices[i]
		}
	}
	return nil
}

// publish writes the state into both objects that show it.
func (ph *pciHost) publish(ctx *simulator.Context, sys *pciPassthruSystem) {
	infos := ph.snapshotInfo()
	sys.PciPassthruInfo = infos // the caller (vcsim's dispatch) holds sys's lock
	if hs, ok := ctx.Map.Get(ph.host).(*simulator.HostSystem); ok {
		ctx.Map.WithLock(hs, func() {
			cfg := *hs.Config
			cfg.PciPassthruInfo = ph.snapshotInfo()
			hs.Config = &cfg
		})
	}
}

// UpdatePassthruConfig as ESXi: the device must exist and be passthrough capable; the
// change is recorded at once (passthruEnabled) but becomes active (passthruActive) only
// after a reboot (POST /_ceso/reboot-host), or at once with applyNow, which a host refuses
// while a powered-on VM uses the device.
func (p *pciPassthruSystem) UpdatePassthruConfig(ctx *simulator.Context, req *types.UpdatePassthruConfig) soap.HasFault {
	body := &methods.UpdatePassthruConfigBody{}
	fail := func(msg string, fault types.BaseMethodFault) soap.HasFault {
		body.Fault_ = simulator.Fault(msg, fault)
		return body
	}
	pci.mu.Lock()
	defer pci.mu.Unlock()
	ph := pci.hosts[p.host]
	if ph == nil {
		return fail("no such host", &types.ManagedObjectNotFound{Obj: p.host})
	}
	// Validate everything first: a host applies all or nothing.
	for _, bc := range req.Config {
		c := bc.GetHostPciPassthruConfig()
		info := ph.info[c.Id]
		if info == nil {
			return fail(fmt.Sprintf("A specified parameter was not correct: config.id (%q)", c.Id),
				&types.InvalidArgument{InvalidProperty: "config.id"})
		}
		if !info.PassthruCapable {
			return fail(fmt.Sprintf("Device %s does not support passthrough", c.Id),
				&types.HostConfigFault{})
		}
		if c.ApplyNow != nil && *c.ApplyNow && !c.PassthruEnabled {
			if vm := poweredOnUser(ctx, ph, c.Id, types.ManagedObjectReference{}); vm != "" {
				return fail(fmt.Sprintf("Device %s is in use by the powered-on virtual machine %s", c.Id, vm),
					&types.ResourceInUse{Name: c.Id})
			}
		}
	}
	for _, bc := range req.Config {
		c := bc.GetHostPciPassthruConfig()
		info := ph.info[c.Id]
		info.PassthruEnabled = c.PassthruEnabled
		if c.ApplyNow != nil && *c.ApplyNow {
			info.PassthruActive = c.PassthruEnabled
		}
	}
	ph.publish(ctx, p)
	body.Res = &types.UpdatePassthruConfigResponse{}
	return body
}

// rebootHosts plays a host reboot for passthrough: what is enabled becomes active.
func rebootHosts() int {
	pci.mu.Lock()
	defer pci.mu.Unlock()
	n := 0
	for _, ph := range pci.hosts {
		for _, i := range ph.info {
			if i.PassthruActive != i.PassthruEnabled {
				i.PassthruActive = i.PassthruEnabled
				n++
			}
		}
		infos := ph.snapshotInfo()
		if sys, ok := simulator.Map.Get(ph.system).(*pciPassthruSystem); ok {
			simulator.Map.WithLock(sys, func() { sys.PciPassthruInfo = infos })
		}
		if hs, ok := simulator.Map.Get(ph.host).(*simulator.HostSystem); ok {
			simulator.Map.WithLock(hs, func() {
				cfg := *hs.Config
				cfg.PciPassthruInfo = ph.snapshotInfo()
				hs.Config = &cfg
			})
		}
	}
	return n
}

// vmPassthrough is what a VM's passthrough devices ask for.
type vmPassthrough struct {
	static  []*types.VirtualPCIPassthroughDeviceBackingInfo
	dynamic []*types.VirtualPCIPassthroughDynamicBackingInfo
}

func passthroughOf(devices []types.BaseVirtualDevice) vmPassthrough {
	var p vmPassthrough
	for _, d := range devices {
		pt, ok := d.(*types.VirtualPCIPassthrough)
		if !ok {
			continue
		}
		switch b := pt.Backing.(type) {
		case *types.VirtualPCIPassthroughDeviceBackingInfo:
			p.static = append(p.static, b)
		case *types.VirtualPCIPassthroughDynamicBackingInfo:
			p.dynamic = append(p.dynamic, b)
		}
	}
	return p
}

// poweredOnUser names a powered-on VM (other than `except`) on the host that uses device
// id, statically or by a dynamic assignment; "" when none.
func poweredOnUser(ctx *simulator.Context, ph *pciHost, id string, except types.ManagedObjectReference) string {
	for _, e := range ctx.Map.All("VirtualMachine") {
		vm, ok := e.(*simulator.VirtualMachine)
		if !ok || vm.Self == except {
			continue
		}
		user := ""
		ctx.Map.WithLock(vm, func() {
			if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn || vm.Config == nil ||
				vm.Runtime.Host == nil || *vm.Runtime.Host != ph.host {
				return
			}
			p := passthroughOf(vm.Config.Hardware.Device)
			for _, b := range p.static {
				if b.Id == id {
					user = vm.Name
				}
			}
			for _, b := range p.dynamic {
				if b.AssignedId == id {
					user = vm.Name
				}
			}
		})
		if user != "" {
			return user
		}
	}
	return ""
}

// pciPowerOn makes the checks ESXi makes when a VM with passthrough devices powers on;
// on failure it answers with a failed task and reports true. Dynamic devices are
// assigned a free matching device (backing.assignedId), as ESXi 7 does.
func (f *front) pciPowerOn(w http.ResponseWriter, call soapCall) bool {
	vm, ok := simulator.Map.Get(call.This).(*simulator.VirtualMachine)
	if !ok {
		return false
	}
	var p vmPassthrough
	var host types.ManagedObjectReference
	lockedToMax, reserved, memMB := false, int64(0), int64(0)
	simulator.Map.WithLock(vm, func() {
		if vm.Config == nil || vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn {
			return
		}
		p = passthroughOf(vm.Config.Hardware.Device)
		if vm.Runtime.Host != nil {
			host = *vm.Runtime.Host
		}
		lockedToMax = vm.Config.MemoryReservationLockedToMax != nil && *vm.Config.MemoryReservationLockedToMax
		if vm.Config.MemoryAllocation != nil && vm.Config.MemoryAllocation.Reservation != nil {
			reserved = *vm.Config.MemoryAllocation.Reservation
		}
		memMB = int64(vm.Config.Hardware.MemoryMB)
	})
	if len(p.static)+len(p.dynamic) == 0 {
		return false
	}
	fail := func(msg string) bool {
		f.failedTask(w, call, &types.GenericVmConfigFault{Reason: msg}, msg)
		return true
	}
	if !lockedToMax && reserved < memMB {
		return fail(fmt.Sprintf("Invalid memory setting: memory reservation (sched.mem.min) should be equal to memsize(%d).", memMB))
	}
	pci.mu.Lock()
	defer pci.mu.Unlock()
	ph := pci.hosts[host]
	if ph == nil {
		return fail("The host of the virtual machine has no PCI passthrough devices.")
	}
	ctx := &simulator.Context{Map: simulator.Map}
	for i, b := range p.static {
		label := fmt.Sprintf("pciPassthru%d", i)
		dev := ph.device(b.Id)
		info := ph.info[b.Id]
		if dev == nil {
			return fail(fmt.Sprintf("Device %s for %s was not found on the host.", b.Id, label))
		}
		want, err := strconv.ParseUint(b.DeviceId, 16, 16)
		if err != nil || uint16(want) != uint16(dev.DeviceId) || b.VendorId != dev.VendorId {
			return fail(fmt.Sprintf("Failed to register the device %s for %s due to unavailable hardware or software support: "+
				"the backing names vendor %04x device %q, the host's device is %04x:%04x (device ids are hexadecimal).",
				label, b.Id, uint16(b.VendorId), b.DeviceId, uint16(dev.VendorId), uint16(dev.DeviceId)))
		}
		if b.SystemId != ph.systemID {
			return fail(fmt.Sprintf("Device %s for %s: systemId %q is not this host's (%s).", b.Id, label, b.SystemId, ph.systemID))
		}
		if !info.PassthruActive {
			return fail(fmt.Sprintf("Device %s for %s is not enabled for passthrough (or the host was not rebooted since).", b.Id, label))
		}
		if other := poweredOnUser(ctx, ph, b.Id, vm.Self); other != "" {
			return fail(fmt.Sprintf("Device %s for %s is already in use by the virtual machine %s.", b.Id, label, other))
		}
	}
	taken := map[string]bool{}
	assigned := make([]string, len(p.dynamic))
	for i, b := range p.dynamic {
		for _, dev := range ph.devices {
			if taken[dev.Id] || !ph.info[dev.Id].PassthruActive || !allowed(b.AllowedDevice, dev) {
				continue
			}
			if poweredOnUser(ctx, ph, dev.Id, vm.Self) != "" {
				continue
			}
			assigned[i], taken[dev.Id] = dev.Id, true
			break
		}
		if assigned[i] == "" {
			return fail(fmt.Sprintf("No free PCI passthrough device matches the allowed devices of pciPassthru%d.", len(p.static)+i))
		}
	}
	if len(p.dynamic) > 0 {
		simulator.Map.WithLock(vm, func() {
			for i, b := range passthroughOf(vm.Config.Hardware.Device).dynamic {
				b.AssignedId = assigned[i]
			}
		})
	}
	return false
}

func allowed(list []types.VirtualPCIPassthroughAllowedDevice, dev types.HostPciDevice) bool {
	for _, a := range list {
		if uint16(a.VendorId) == uint16(dev.VendorId) && uint16(a.DeviceId) == uint16(dev.DeviceId) {
			return true
		}
	}
	return false
}

// pciReconfig refuses, as ESXi does, to add, remove or change a passthrough device of a
// VM that is not powered off. It reports whether it answered.
func (f *front) pciReconfig(w http.ResponseWriter, call soapCall, body []byte) bool {
	if !strings.Contains(string(body), "VirtualPCIPassthrough") {
		return false
	}
	vm, ok := simulator.Map.Get(call.This).(*simulator.VirtualMachine)
	if !ok {
		return false
	}
	var power types.VirtualMachinePowerState
	simulator.Map.WithLock(vm, func() { power = vm.Runtime.PowerState })
	if power == types.VirtualMachinePowerStatePoweredOff {
		return false
	}
	m, err := simulator.UnmarshalBody(types.TypeFunc(), body)
	if err != nil {
		return false
	}
	req, ok := m.Body.(*types.ReconfigVM_Task)
	if !ok {
		return false
	}
	for _, dc := range req.Spec.DeviceChange {
		if _, ok := dc.GetVirtualDeviceConfigSpec().Device.(*types.VirtualPCIPassthrough); ok {
			f.failedTask(w, call, &types.InvalidPowerState{
				RequestedState: types.VirtualMachinePowerStatePoweredOff, ExistingState: power,
			}, "The attempted operation cannot be performed in the current state ("+string(power)+
				"): PCI passthrough devices can be changed only while the virtual machine is powered off.")
			return true
		}
	}
	return false
}

// pciConfigTarget adds the host's active passthrough devices to a QueryConfigTarget
// answer: pciPassthrough (one per device, with the host's systemId) and, as ESXi 7.0+,
// dynamicPassthrough (one per vendor:device).
func (f *front) pciConfigTarget(w http.ResponseWriter, rec []byte, call soapCall, body []byte) bool {
	var res methods.QueryConfigTargetBody
	if err := decodeResponse(rec, &res); err != nil || res.Res == nil || res.Res.Returnval == nil {
		return false
	}
	var hosts []types.ManagedObjectReference
	if m, err := simulator.UnmarshalBody(types.TypeFunc(), body); err == nil {
		if req, ok := m.Body.(*types.QueryConfigTarget); ok && req.Host != nil {
			hosts = append(hosts, *req.Host)
		}
	}
	if len(hosts) == 0 {
		hosts = browserHosts(call.This)
	}
	target := res.Res.Returnval
	pci.mu.Lock()
	seen := map[string]bool{}
	for _, h := range hosts {
		ph := pci.hosts[h]
		if ph == nil {
			continue
		}
		for _, d := range ph.devices {
			if !ph.info[d.Id].PassthruActive {
				continue
			}
			target.PciPassthrough = append(target.PciPassthrough, &types.VirtualMachinePciPassthroughInfo{
				VirtualMachineTargetInfo: types.VirtualMachineTargetInfo{Name: d.DeviceName},
				PciDevice:                d, SystemId: ph.systemID,
			})
			key := fmt.Sprintf("%04x:%04x", uint16(d.VendorId), uint16(d.DeviceId))
			if pci.dynamic && !seen[key] {
				seen[key] = true
				target.DynamicPassthrough = append(target.DynamicPassthrough, types.VirtualMachineDynamicPassthroughInfo{
					VirtualMachineTargetInfo: types.VirtualMachineTargetInfo{Name: d.DeviceName},
					VendorName:               d.VendorName, DeviceName: d.DeviceName,
					VendorId: int32(uint16(d.VendorId)), DeviceId: int32(uint16(d.DeviceId)),
				})
			}
		}
	}
	pci.mu.Unlock()
	sort.SliceStable(target.DynamicPassthrough, func(i, j int) bool {
		return target.DynamicPassthrough[i].DeviceId < target.DynamicPassthrough[j].DeviceId
	})
	writeResponse(w, res.Res)
	return true
}

// browserHosts lists the hosts of the compute resource or cluster that owns an
// EnvironmentBrowser.
func browserHosts(browser types.ManagedObjectReference) []types.ManagedObjectReference {
	for _, kind := range []string{"ComputeResource", "ClusterComputeResource"} {
		for _, e := range simulator.Map.All(kind) {
			var cr *mo.ComputeResource
			switch c := e.(type) {
			case *mo.ComputeResource:
				cr = c
			case *simulator.ClusterComputeResource:
				cr = &c.ComputeResource
			default:
				continue
			}
			var hosts []types.ManagedObjectReference
			match := false
			simulator.Map.WithLock(e, func() {
				match = cr.EnvironmentBrowser != nil && *cr.EnvironmentBrowser == browser
				hosts = append(hosts, cr.Host...)
			})
			if match {
				return hosts
			}
		}
	}
	return nil
}

// pciBackingFor gives the -vm-spec passthrough VM the T4 of `host`, as a client that
// read QueryConfigTarget would.
func pciBackingFor(host types.ManagedObjectReference) *types.VirtualPCIPassthroughDeviceBackingInfo {
	b := &types.VirtualPCIPassthroughDeviceBackingInfo{Id: "0000:3b:00.0", DeviceId: "1eb8", VendorId: 0x10de}
	if ph := pci.hosts[host]; ph != nil {
		b.SystemId = ph.systemID
	}
	return b
}
