package main

import (
	"context"
	"fmt"
	"io/ioutil"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// fixLayoutEx repairs a vcsim 0.24.2 bug: RefreshStorageInfo (which vcsim also runs at the
// end of every CreateVM_Task) records the files of a VM's directory as "[ds] file" instead
// of "[ds] dir/file", next to correct entries for the disks. A backup tool listing a VM's
// files from layoutEx would get paths that do not exist. We rename the broken entries,
// drop the duplicates this creates, and keep disk/snapshot key references consistent.
// There is no API to set layoutEx, so this edits vcsim's object under its own lock.
func fixLayoutEx(ref types.ManagedObjectReference) {
	vm, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return
	}
	simulator.Map.WithLock(vm, func() {
		if vm.LayoutEx == nil || vm.Config == nil || vm.Config.Files.VmPathName == "" {
			return
		}
		var vmx object.DatastorePath
		if !vmx.FromString(vm.Config.Files.VmPathName) {
			return
		}
		dir := path.Dir(vmx.Path)
		if dir == "." || dir == "/" || dir == "" {
			return // a VM whose files really are at the datastore root
		}
		byName := map[string]int32{}
		for _, f := range vm.LayoutEx.File {
			byName[f.Name] = f.Key
		}
		remap := map[int32]int32{}
		var files []types.VirtualMachineFileLayoutExFileInfo
		for _, f := range vm.LayoutEx.File {
			var p object.DatastorePath
			if p.FromString(f.Name) && p.Datastore == vmx.Datastore && !strings.Contains(p.Path, "/") {
				fixed := (&object.DatastorePath{Datastore: p.Datastore, Path: path.Join(dir, p.Path)}).String()
				if k, dup := byName[fixed]; dup {
					remap[f.Key] = k
					continue
				}
				f.Name = fixed
				byName[fixed] = f.Key
			}
			files = append(files, f)
		}
		if len(files) == len(vm.LayoutEx.File) && len(remap) == 0 && !renamed(vm.LayoutEx.File, files) {
			return
		}
		layout := *vm.LayoutEx
		layout.File = files
		key := func(k int32) int32 {
			if n, ok := remap[k]; ok {
				return n
			}
			return k
		}
		// Copy what we touch: the old slices may be in flight to a property collector.
		layout.Disk = remapDisks(vm.LayoutEx.Disk, key)
		layout.Snapshot = nil
		for _, s := range vm.LayoutEx.Snapshot {
			s.DataKey, s.MemoryKey = key(s.DataKey), key(s.MemoryKey)
			s.Disk = remapDisks(s.Disk, key)
			layout.Snapshot = append(layout.Snapshot, s)
		}
		simulator.Map.Update(vm, []types.PropertyChange{{Name: "layoutEx", Val: &layout}})
	})
}

func renamed(a, b []types.VirtualMachineFileLayoutExFileInfo) bool {
	for i := range a {
		if a[i].Name != b[i].Name {
			return true
		}
	}
	return false
}

func remapDisks(disks []types.VirtualMachineFileLayoutExDiskLayout, key func(int32) int32) []types.VirtualMachineFileLayoutExDiskLayout {
	var out []types.VirtualMachineFileLayoutExDiskLayout
	for _, d := range disks {
		var chain []types.VirtualMachineFileLayoutExDiskUnit
		for _, u := range d.Chain {
			keys := make([]int32, len(u.FileKey))
			for i, k := range u.FileKey {
				keys[i] = key(k)
			}
			u.FileKey = keys
			chain = append(chain, u)
		}
		d.Chain = chain
		out = append(out, d)
	}
	return out
}

// vmOf finds the VM a method acted on: the VM itself, or a snapshot's VM.
func (inv *inventory) vmOf(ctx context.Context, ref types.ManagedObjectReference) (types.ManagedObjectReference, bool) {
	switch ref.Type {
	case "VirtualMachine":
		return ref, true
	case "VirtualMachineSnapshot":
		var s mo.VirtualMachineSnapshot
		if property.DefaultCollector(inv.client).RetrieveOne(ctx, ref, []string{"vm"}, &s) == nil {
			return s.Vm, true
		}
	}
	return types.ManagedObjectReference{}, false
}

// vmxMarker tells our generated .vmx files from anything a test uploaded.
const vmxMarker = `cesosim.generated = "TRUE"`

// writeVMX fills the VM's .vmx, which vcsim creates empty, with the essentials a real
// one has (so a cold backup copies something meaningful). It is rewritten after API
// changes only while it is still ours; like the real thing it is not the source of truth
// for the API, the VM's config is.
func writeVMX(vm mo.VirtualMachine, dirs map[string]string) error {
	if vm.Config == nil {
		return nil
	}
	file, err := localPath(dirs, vm.Config.Files.VmPathName)
	if err != nil || path.Ext(file) != ".vmx" {
		return err
	}
	cur, err := ioutil.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if len(cur) > 0 && !strings.Contains(string(cur), vmxMarker) {
		return nil
	}
	c := vm.Config
	kv := []string{
		`.encoding = "UTF-8"`,
		`config.version = "8"`,
		fmt.Sprintf(`virtualHW.version = "%s"`, strings.TrimPrefix(c.Version, "vmx-")),
		fmt.Sprintf(`displayName = %s`, vmxQuote(c.Name)),
		fmt.Sprintf(`guestOS = %s`, vmxQuote(vmxGuestOS(c.GuestId))),
		fmt.Sprintf(`memSize = "%d"`, c.Hardware.MemoryMB),
		fmt.Sprintf(`numvcpus = "%d"`, c.Hardware.NumCPU),
		fmt.Sprintf(`uuid.bios = %s`, vmxQuote(c.Uuid)),
		fmt.Sprintf(`vc.uuid = %s`, vmxQuote(c.InstanceUuid)),
		fmt.Sprintf(`nvram = %s`, vmxQuote(strings.TrimSuffix(path.Base(file), ".vmx")+".nvram")),
	}
	if c.MemoryReservationLockedToMax != nil && *c.MemoryReservationLockedToMax {
		kv = append(kv, fmt.Sprintf(`sched.mem.min = "%d"`, c.Hardware.MemoryMB), `sched.mem.pin = "TRUE"`)
	} else if c.MemoryAllocation != nil && c.MemoryAllocation.Reservation != nil && *c.MemoryAllocation.Reservation > 0 {
		kv = append(kv, fmt.Sprintf(`sched.mem.min = "%d"`, *c.MemoryAllocation.Reservation))
	}
	devices := object.VirtualDeviceList(c.Hardware.Device)
	nics, passthru := 0, 0
	for _, d := range devices {
		switch x := d.(type) {
		case types.BaseVirtualSCSIController:
			s := x.GetVirtualSCSIController()
			n := fmt.Sprintf("scsi%d", s.BusNumber)
			kv = append(kv, n+`.present = "TRUE"`, fmt.Sprintf(`%s.virtualDev = "%s"`, n, devices.Type(d)))
		case *types.VirtualDisk:
			ctl := devices.FindByKey(x.ControllerKey)
			b, ok := x.Backing.(types.BaseVirtualDeviceFileBackingInfo)
			sc, isSCSI := ctl.(types.BaseVirtualSCSIController)
			if !ok || !isSCSI || x.UnitNumber == nil {
				continue
			}
			n := fmt.Sprintf("scsi%d:%d", sc.GetVirtualSCSIController().BusNumber, *x.UnitNumber)
			name := b.GetVirtualDeviceFileBackingInfo().FileName
			var p object.DatastorePath
			if p.FromString(name) && path.Dir(p.Path) == path.Dir(vmxPath(c)) {
				name = path.Base(p.Path) // same directory: ESXi writes a relative name
			}
			kv = append(kv, n+`.present = "TRUE"`, n+`.fileName = `+vmxQuote(name), n+`.deviceType = "scsi-hardDisk"`)
		case types.BaseVirtualEthernetCard:
			e := x.GetVirtualEthernetCard()
			n := fmt.Sprintf("ethernet%d", nics)
			nics++
			kv = append(kv, n+`.present = "TRUE"`, fmt.Sprintf(`%s.virtualDev = "%s"`, n, nicType(d)))
			if nb, ok := e.Backing.(*types.VirtualEthernetCardNetworkBackingInfo); ok {
				kv = append(kv, n+`.networkName = `+vmxQuote(nb.DeviceName))
			}
			kv = append(kv, n+`.addressType = "generated"`, n+`.generatedAddress = `+vmxQuote(e.MacAddress))
		case *types.VirtualPCIPassthrough:
			// As ESXi 7 writes a static device: the id in decimal fields, the ids 0x-hex.
			b, ok := x.Backing.(*types.VirtualPCIPassthroughDeviceBackingInfo)
			if !ok {
				continue
			}
			n := fmt.Sprintf("pciPassthru%d", passthru)
			passthru++
			bus, slot, fn := parsePCIAddress(b.Id)
			dev, _ := strconv.ParseUint(b.DeviceId, 16, 16)
			kv = append(kv, n+`.present = "TRUE"`, fmt.Sprintf(`%s.id = "%05d:%03d:%02d.%d"`, n, 0, bus, slot, fn),
				fmt.Sprintf(`%s.deviceId = "0x%04x"`, n, dev), fmt.Sprintf(`%s.vendorId = "0x%04x"`, n, uint16(b.VendorId)),
				n+`.systemId = `+vmxQuote(b.SystemId))
		}
	}
	var extra []string
	for _, o := range c.ExtraConfig {
		v := o.GetOptionValue()
		if s, ok := v.Value.(string); ok {
			extra = append(extra, v.Key+" = "+vmxQuote(s))
		}
	}
	sort.Strings(extra)
	kv = append(kv, extra...)
	kv = append(kv, vmxMarker)
	next := strings.Join(kv, "\n") + "\n"
	if next == string(cur) {
		return nil
	}
	return ioutil.WriteFile(file, []byte(next), 0o644)
}

func vmxPath(c *types.VirtualMachineConfigInfo) string {
	var p object.DatastorePath
	p.FromString(c.Files.VmPathName)
	return p.Path
}

// vmxQuote quotes a .vmx value; the format escapes '"' and '|' as |22 and |7C.
func vmxQuote(s string) string {
	// As VMware's writer: '"', '|', DEL and control characters but tab as |XX,
	// so a value with a newline stays on its line.
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '|' || c == 0x7f || (c < 0x20 && c != '\t') {
			fmt.Fprintf(&b, "|%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return `"` + b.String() + `"`
}

func nicType(d types.BaseVirtualDevice) string {
	switch d.(type) {
	case *types.VirtualVmxnet3:
		return "vmxnet3"
	case *types.VirtualE1000e:
		return "e1000e"
	case *types.VirtualE1000:
		return "e1000"
	case *types.VirtualVmxnet2:
		return "vmxnet2"
	case *types.VirtualPCNet32:
		return "vlance"
	}
	return "vmxnet"
}

// vmxGuestOS maps the API's guestId to the .vmx guestOS key for the common cases.
func vmxGuestOS(id string) string {
	known := map[string]string{
		"ubuntu64Guest":     "ubuntu-64",
		"ubuntuGuest":       "ubuntu",
		"debian10_64Guest":  "debian10-64",
		"debian11_64Guest":  "debian11-64",
		"otherGuest":        "other",
		"otherGuest64":      "other-64",
		"otherLinux64Guest": "other-linux-64",
	}
	if g, ok := known[id]; ok {
		return g
	}
	return strings.TrimSuffix(id, "Guest")
}
