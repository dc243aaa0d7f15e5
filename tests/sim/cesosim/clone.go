package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// vcsim 0.24.2's CloneVM_Task (vpx model) has two defects that would mislead clone and
// backup tests: it blanks the file name of the source VM's disk device objects and then
// hands those very objects to the clone, so afterwards the SOURCE VM's disks point at the
// clone's new files; and the clone's disks are new empty disks, not copies. We remember
// the source's disks before the call and afterwards give the source back its own (copied)
// disk devices and copy the data into the clone's disks, as vCenter would.
// (The clone still shares its other devices, and thus its MAC addresses, with the source.)

// diskFiles lists a VM's disks: device key → backing file, in device order.
type diskFile struct {
	key  int32
	file string
}

func (inv *inventory) diskFiles(ctx context.Context, ref types.ManagedObjectReference) ([]diskFile, error) {
	var vm mo.VirtualMachine
	if err := property.DefaultCollector(inv.client).RetrieveOne(ctx, ref, []string{"config.hardware.device"}, &vm); err != nil {
		return nil, err
	}
	var out []diskFile
	if vm.Config == nil {
		return nil, nil
	}
	for _, d := range object.VirtualDeviceList(vm.Config.Hardware.Device).SelectByType((*types.VirtualDisk)(nil)) {
		if b, ok := d.(*types.VirtualDisk).Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
			out = append(out, diskFile{key: d.GetVirtualDevice().Key, file: b.FileName})
		}
	}
	return out, nil
}

// repairClone runs after a successful CloneVM_Task of src (whose disks were before).
func (inv *inventory) repairClone(ctx context.Context, src, clone types.ManagedObjectReference, before []diskFile) error {
	vm, ok := simulator.Map.Get(src).(*simulator.VirtualMachine)
	if !ok {
		return fmt.Errorf("source VM %s is gone", src.Value)
	}
	want := map[int32]string{}
	for _, d := range before {
		want[d.key] = d.file
	}
	simulator.Map.WithLock(vm, func() {
		devices := append(object.VirtualDeviceList(nil), vm.Config.Hardware.Device...)
		changed := false
		for i, d := range devices {
			disk, ok := d.(*types.VirtualDisk)
			if !ok {
				continue
			}
			b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
			if !ok || want[disk.Key] == "" || b.FileName == want[disk.Key] {
				continue
			}
			// A copy, so the clone keeps the object that now names its own file.
			nd, nb := *disk, *b
			nb.FileName = want[disk.Key]
			nd.Backing = &nb
			devices[i] = &nd
			changed = true
		}
		if changed {
			simulator.Map.Update(vm, []types.PropertyChange{{Name: "config.hardware.device", Val: []types.BaseVirtualDevice(devices)}})
		}
	})
	fixLayoutEx(src)

	after, err := inv.diskFiles(ctx, clone)
	if err != nil {
		return err
	}
	dirs, err := inv.datastoreDirs(ctx)
	if err != nil {
		return err
	}
	for i := 0; i < len(before) && i < len(after); i++ {
		from, err := localPath(dirs, before[i].file)
		if err != nil {
			return err
		}
		to, err := localPath(dirs, after[i].file)
		if err != nil {
			return err
		}
		if err := copyFile(flatName(from), flatName(to)); err != nil {
			return err
		}
	}
	if err := object.NewVirtualMachine(inv.client, clone).RefreshStorageInfo(ctx); err != nil {
		return err
	}
	fixLayoutEx(clone)
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
