package main

import (
	"context"
	"log"
	"os"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
)

// Snapshot file removal, repaired. vcsim 0.24.2 finds the files of a snapshot it removes
// through layoutEx keys: it deletes the file whose key is the snapshot's dataKey. But its
// RefreshStorageInfo (run by CreateVM_Task and after every snapshot removal) drops every
// layoutEx file entry (it stats "[ds] path" strings, which never exist locally) and adds
// the directory's files back under new keys, without updating the snapshots' keys. A later
// removal then deletes whatever file now has that key: removing the root of a two-snapshot
// chain, or RemoveAllSnapshots_Task, deleted the VM's base disk. RemoveSnapshot_Task with
// removeChildren also left the children's files and objects behind.
//
// The override: before vcsim removes snapshots, their dataKey/memoryKey are set to -1 so
// vcsim deletes no file; afterwards we delete the .vmsn of every snapshot that left the
// tree, found by the name recorded when it was created, drop the removed snapshots'
// layout entries and point the remaining ones at their files by name again.

// snapFiles maps a snapshot's moref value to its .vmsn ("[ds] dir/VM-Snapshot1.vmsn").
var snapFiles = struct {
	sync.Mutex
	byRef map[string]string
}{byRef: map[string]string{}}

var snapshotRemovals = map[string]bool{
	"RemoveSnapshot_Task":     true,
	"RemoveAllSnapshots_Task": true,
}

// withLayoutEx runs fn under the VM's lock when the VM exists and has a layoutEx.
func withLayoutEx(vmRef types.ManagedObjectReference, fn func(vm *simulator.VirtualMachine)) {
	vm, ok := simulator.Map.Get(vmRef).(*simulator.VirtualMachine)
	if !ok {
		return
	}
	simulator.Map.WithLock(vm, func() {
		if vm.LayoutEx != nil {
			fn(vm)
		}
	})
}

// recordSnapshotFile remembers the file of a snapshot just created: right after
// CreateSnapshot_Task its dataKey names the .vmsn vcsim made for it.
func recordSnapshotFile(vmRef, snap types.ManagedObjectReference) {
	withLayoutEx(vmRef, func(vm *simulator.VirtualMachine) {
		for _, s := range vm.LayoutEx.Snapshot {
			if s.Key != snap {
				continue
			}
			for _, f := range vm.LayoutEx.File {
				if f.Key == s.DataKey {
					snapFiles.Lock()
					snapFiles.byRef[snap.Value] = f.Name
					snapFiles.Unlock()
				}
			}
		}
	})
}

// snapshotRefs lists every snapshot in a VM's tree.
func snapshotRefs(vm *simulator.VirtualMachine) map[string]types.ManagedObjectReference {
	out := map[string]types.ManagedObjectReference{}
	if vm.Snapshot == nil {
		return out
	}
	var walk func([]types.VirtualMachineSnapshotTree)
	walk = func(list []types.VirtualMachineSnapshotTree) {
		for _, s := range list {
			out[s.Snapshot.Value] = s.Snapshot
			walk(s.ChildSnapshotList)
		}
	}
	walk(vm.Snapshot.RootSnapshotList)
	return out
}

// defuseSnapshotFiles makes vcsim's removal delete no file, and returns the snapshots
// the VM has before it.
func defuseSnapshotFiles(vmRef types.ManagedObjectReference) map[string]types.ManagedObjectReference {
	vm, ok := simulator.Map.Get(vmRef).(*simulator.VirtualMachine)
	if !ok {
		return nil
	}
	var before map[string]types.ManagedObjectReference
	simulator.Map.WithLock(vm, func() {
		before = snapshotRefs(vm)
		if vm.LayoutEx == nil {
			return
		}
		// vcsim edits this slice in place; a copy keeps collectors' old values intact.
		layout := *vm.LayoutEx
		layout.Snapshot = nil
		for _, s := range vm.LayoutEx.Snapshot {
			s.DataKey, s.MemoryKey = -1, -1
			layout.Snapshot = append(layout.Snapshot, s)
		}
		vm.LayoutEx = &layout
	})
	return before
}

// finishSnapshotRemoval deletes the files of the snapshots that are gone and repairs the
// layout of the remaining ones.
func (inv *inventory) finishSnapshotRemoval(ctx context.Context, vmRef types.ManagedObjectReference,
	before map[string]types.ManagedObjectReference) error {
	vm, ok := simulator.Map.Get(vmRef).(*simulator.VirtualMachine)
	if !ok {
		return nil
	}
	var after map[string]types.ManagedObjectReference
	simulator.Map.WithLock(vm, func() { after = snapshotRefs(vm) })
	dirs, err := inv.datastoreDirs(ctx)
	if err != nil {
		return err
	}
	for key, ref := range before {
		if _, kept := after[key]; kept {
			continue
		}
		snapFiles.Lock()
		name, known := snapFiles.byRef[key]
		delete(snapFiles.byRef, key)
		snapFiles.Unlock()
		if known {
			if file, err := localPath(dirs, name); err == nil {
				if err := os.Remove(file); err != nil && !os.IsNotExist(err) {
					log.Printf("removing snapshot file %s: %v", name, err)
				}
			}
		}
		// RemoveSnapshot_Task with removeChildren leaves the children's objects.
		if simulator.Map.Get(ref) != nil {
			simulator.Map.Remove(ref)
		}
	}
	// Drop the deleted files from layoutEx (vcsim's refresh, then our repair of it).
	if _, err := methods.RefreshStorageInfo(ctx, inv.client, &types.RefreshStorageInfo{This: vmRef}); err != nil {
		return err
	}
	fixLayoutEx(vmRef)
	repointSnapshots(vmRef, after)
	return nil
}

// repointSnapshots keeps the layout entries of the snapshots in `keep` and points their
// dataKey at their .vmsn by name (keys change with every RefreshStorageInfo).
func repointSnapshots(vmRef types.ManagedObjectReference, keep map[string]types.ManagedObjectReference) {
	withLayoutEx(vmRef, func(vm *simulator.VirtualMachine) {
		keys := map[string]int32{}
		for _, f := range vm.LayoutEx.File {
			keys[f.Name] = f.Key
		}
		layout := *vm.LayoutEx
		layout.Snapshot = nil
		snapFiles.Lock()
		for _, s := range vm.LayoutEx.Snapshot {
			if _, ok := keep[s.Key.Value]; !ok {
				continue
			}
			s.DataKey, s.MemoryKey = -1, -1
			if k, ok := keys[snapFiles.byRef[s.Key.Value]]; ok {
				s.DataKey = k
			}
			layout.Snapshot = append(layout.Snapshot, s)
		}
		snapFiles.Unlock()
		simulator.Map.Update(vm, []types.PropertyChange{{Name: "layoutEx", Val: &layout}})
	})
}

// currentSnapshots lists a VM's snapshots now.
func currentSnapshots(vmRef types.ManagedObjectReference) map[string]types.ManagedObjectReference {
	vm, ok := simulator.Map.Get(vmRef).(*simulator.VirtualMachine)
	if !ok {
		return nil
	}
	var out map[string]types.ManagedObjectReference
	simulator.Map.WithLock(vm, func() { out = snapshotRefs(vm) })
	return out
}
