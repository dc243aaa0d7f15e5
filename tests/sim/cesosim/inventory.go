package main

import (
	"context"
	"fmt"
	"path"
	"regexp"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// inventory reads and changes the simulator through an in-process govmomi client. Going
// through the API (rather than poking vcsim's structs) keeps vcsim's per-object locking
// and property-change notifications intact while HTTP clients are being served.
type inventory struct {
	client *vim25.Client
	esx    bool
}

func (inv *inventory) vms(ctx context.Context, props []string) ([]mo.VirtualMachine, error) {
	var vms []mo.VirtualMachine
	err := inv.retrieveAll(ctx, "VirtualMachine", props, &vms)
	return vms, err
}

func (inv *inventory) retrieveAll(ctx context.Context, kind string, props []string, dst interface{}) error {
	m := view.NewManager(inv.client)
	v, err := m.CreateContainerView(ctx, inv.client.ServiceContent.RootFolder, []string{kind}, true)
	if err != nil {
		return err
	}
	defer v.Destroy(ctx)
	return v.Retrieve(ctx, []string{kind}, props, dst)
}

func (inv *inventory) vmCount(ctx context.Context) int {
	vms, err := inv.vms(ctx, []string{"name"})
	if err != nil {
		return -1
	}
	return len(vms)
}

// datastoreDirs maps datastore name → the local directory vcsim keeps its files in
// (vcsim's info.url is that directory).
func (inv *inventory) datastoreDirs(ctx context.Context) (map[string]string, error) {
	var dss []mo.Datastore
	if err := inv.retrieveAll(ctx, "Datastore", []string{"name", "info"}, &dss); err != nil {
		return nil, err
	}
	dirs := make(map[string]string, len(dss))
	for _, ds := range dss {
		if ds.Info != nil {
			dirs[ds.Name] = ds.Info.GetDatastoreInfo().Url
		}
	}
	return dirs, nil
}

// localPath turns "[ds] dir/file" into the file's path on this machine.
func localPath(dirs map[string]string, dsPath string) (string, error) {
	var p object.DatastorePath
	if !p.FromString(dsPath) {
		return "", fmt.Errorf("not a datastore path: %q", dsPath)
	}
	dir, ok := dirs[p.Datastore]
	if !ok {
		return "", fmt.Errorf("no datastore %q", p.Datastore)
	}
	return path.Join(dir, p.Path), nil
}

// sameDatastorePath compares "[ds] a/b.vmdk" forms, ignoring spacing and redundant slashes.
func sameDatastorePath(a, b string) bool {
	var pa, pb object.DatastorePath
	if !pa.FromString(a) || !pb.FromString(b) {
		return false
	}
	return pa.Datastore == pb.Datastore && path.Clean(pa.Path) == path.Clean(pb.Path)
}

var taskRefPattern = regexp.MustCompile(`<returnval type="Task">([^<]+)</returnval>`)

// taskOutcome looks up a task that vcsim returned in a SOAP response (vcsim runs tasks
// to completion before answering, so its state is final).
func (inv *inventory) taskOutcome(ctx context.Context, response []byte) (*types.TaskInfo, error) {
	m := taskRefPattern.FindSubmatch(response)
	if m == nil {
		return nil, fmt.Errorf("no task in response")
	}
	ref := types.ManagedObjectReference{Type: "Task", Value: string(m[1])}
	var task mo.Task
	if err := property.DefaultCollector(inv.client).RetrieveOne(ctx, ref, []string{"info"}, &task); err != nil {
		return nil, err
	}
	return &task.Info, nil
}

// diskLockHolder tells whether a real host would refuse to touch this virtual disk
// because a running VM has it open: "Unable to access file … since it is locked".
// A running VM holds its current disks exclusively. With a snapshot, a real host writes
// to a delta disk and only holds the base read-only, so copying the base works (that is
// how hot backup works); vcsim never creates delta disks, so "has a snapshot" stands in
// for "the base is no longer the writable leaf". Deleting or moving is refused either way.
func (inv *inventory) diskLockHolder(ctx context.Context, dsPath string, readOnly bool) (string, error) {
	vms, err := inv.vms(ctx, []string{"name", "runtime.powerState", "snapshot", "config.hardware.device"})
	if err != nil {
		return "", err
	}
	for _, vm := range vms {
		if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn || vm.Config == nil {
			continue
		}
		if readOnly && vm.Snapshot != nil && vm.Snapshot.CurrentSnapshot != nil {
			continue
		}
		for _, d := range object.VirtualDeviceList(vm.Config.Hardware.Device).SelectByType((*types.VirtualDisk)(nil)) {
			b, ok := d.(*types.VirtualDisk).Backing.(types.BaseVirtualDeviceFileBackingInfo)
			if ok && sameDatastorePath(b.GetVirtualDeviceFileBackingInfo().FileName, dsPath) {
				return vm.Name, nil
			}
		}
	}
	return "", nil
}
