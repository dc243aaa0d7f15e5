package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/ioutil"
	"sort"
	"strings"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

// vmSpec is one entry of the -vm-spec file: the VMs a test needs by name, with the
// properties ceso reads. Example:
//
//	[{"name":"web 01 & <x> \"q\" é","power":"on","tags":["web","db"],
//	  "guest_id":"ubuntu64Guest","extra_config":{"k":"v"},"cpus":2,"memory_mib":2048,
//	  "disks_mib":[16,8],"nic":"vmxnet3","ip":"10.0.0.21","tools":"running","hostname":"web01"}]
type vmSpec struct {
	Name        string            `json:"name"`
	Power       string            `json:"power"`           // on | off (default) | suspended
	Tags        []string          `json:"tags"`            // stored as ExtraConfig ceso.tags
	GuestID     string            `json:"guest_id"`        // default ubuntu64Guest
	ExtraConfig map[string]string `json:"extra_config"`    // plain ExtraConfig entries
	CPUs        int32             `json:"cpus"`            // default 1
	MemoryMiB   int64             `json:"memory_mib"`      // default 1024
	DisksMiB    []int64           `json:"disks_mib"`       // default one disk of max(-fill-mib, 1) MiB
	NIC         string            `json:"nic"`             // vmxnet3 (default), e1000, e1000e, …
	IP          string            `json:"ip"`              // guest.ipAddress, as VMware Tools would report it
	Tools       string            `json:"tools"`           // running | notRunning | notInstalled (vcsim default)
	Hostname    string            `json:"hostname"`        // guest.hostName
	Passthrough bool              `json:"pci_passthrough"` // a VirtualPCIPassthrough device (a GPU)
}

func loadVMSpecs(file string) ([]vmSpec, error) {
	if file == "" {
		return nil, nil
	}
	data, err := ioutil.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var specs []vmSpec
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&specs); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	for i, s := range specs {
		where := fmt.Sprintf("%s: entry %d", file, i)
		switch {
		case s.Name == "":
			return nil, fmt.Errorf("%s: name is required", where)
		case strings.ContainsAny(s.Name, "/\\"):
			return nil, fmt.Errorf("%s: name %q: '/' and '\\' are not supported by the simulator", where, s.Name)
		case s.Power != "" && s.Power != "on" && s.Power != "off" && s.Power != "suspended":
			return nil, fmt.Errorf("%s: power must be on, off or suspended, not %q", where, s.Power)
		case s.Tools != "" && s.Tools != "running" && s.Tools != "notRunning" && s.Tools != "notInstalled":
			return nil, fmt.Errorf("%s: tools must be running, notRunning or notInstalled, not %q", where, s.Tools)
		}
		for _, t := range s.Tags {
			if t == "" || strings.Contains(t, ",") {
				return nil, fmt.Errorf("%s: tag %q: tags are non-empty and contain no comma", where, t)
			}
		}
		for _, mib := range s.DisksMiB {
			if mib <= 0 {
				return nil, fmt.Errorf("%s: disks_mib entries must be positive", where)
			}
		}
	}
	return specs, nil
}

// placement is where new VMs go: the datacenter's VM folder, the host's (esx) or the
// cluster's (vpx) root resource pool, the first datastore and the "VM Network" portgroup.
type placement struct {
	folder    *object.Folder
	pool      *object.ResourcePool
	host      *object.HostSystem // nil in vpx: vcsim picks a cluster member
	datastore *object.Datastore
	network   types.BaseVirtualDeviceBackingInfo
}

func (inv *inventory) placement(ctx context.Context) (*placement, error) {
	finder := find.NewFinder(inv.client, false)
	dc, err := finder.DefaultDatacenter(ctx)
	if err != nil {
		return nil, err
	}
	finder.SetDatacenter(dc)
	folders, err := dc.Folders(ctx)
	if err != nil {
		return nil, err
	}
	p := &placement{folder: folders.VmFolder}
	if inv.esx {
		if p.host, err = finder.DefaultHostSystem(ctx); err != nil {
			return nil, err
		}
		if p.pool, err = p.host.ResourcePool(ctx); err != nil {
			return nil, err
		}
	} else if p.pool, err = finder.DefaultResourcePool(ctx); err != nil {
		return nil, err
	}
	if p.datastore, err = finder.DefaultDatastore(ctx); err != nil {
		return nil, err
	}
	net, err := finder.Network(ctx, "VM Network")
	if err != nil {
		return nil, err
	}
	if p.network, err = net.EthernetCardBackingInfo(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// createVMs creates the -vm-spec VMs with Folder.CreateVM_Task, as a client would, so
// that they get directories, files, device keys, MACs and moref ids the way vcsim gives
// them to any VM.
func (inv *inventory) createVMs(ctx context.Context, specs []vmSpec, fillMiB int) error {
	if len(specs) == 0 {
		return nil
	}
	p, err := inv.placement(ctx)
	if err != nil {
		return fmt.Errorf("finding where to create VMs: %v", err)
	}
	for _, s := range specs {
		if err := inv.createVM(ctx, p, s, fillMiB); err != nil {
			return fmt.Errorf("creating VM %q: %v", s.Name, err)
		}
	}
	return nil
}

func (inv *inventory) createVM(ctx context.Context, p *placement, s vmSpec, fillMiB int) error {
	dsName := p.datastore.Name()
	config := types.VirtualMachineConfigSpec{
		Name:     s.Name,
		GuestId:  orDefault(s.GuestID, string(types.VirtualMachineGuestOsIdentifierUbuntu64Guest)),
		NumCPUs:  s.CPUs,
		MemoryMB: s.MemoryMiB,
		Files:    &types.VirtualMachineFileInfo{VmPathName: "[" + dsName + "]"},
	}
	if config.NumCPUs == 0 {
		config.NumCPUs = 1
	}
	if config.MemoryMB == 0 {
		config.MemoryMB = 1024
	}
	config.ExtraConfig = extraConfig(s)

	var devices object.VirtualDeviceList
	scsi, err := devices.CreateSCSIController("pvscsi")
	if err != nil {
		return err
	}
	devices = append(devices, scsi)
	disks := s.DisksMiB
	if len(disks) == 0 {
		disks = []int64{1}
	}
	for _, mib := range disks {
		if mib < int64(fillMiB) {
			mib = int64(fillMiB)
		}
		// An empty path makes vcsim name the files NAME.vmdk, NAME_1.vmdk, … in the VM's
		// directory, as ESXi does.
		disk := devices.CreateDisk(scsi.(types.BaseVirtualController), p.datastore.Reference(), "")
		disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo).FileName = "[" + dsName + "]"
		disk.CapacityInKB = mib * 1024
		disk.CapacityInBytes = mib << 20
		devices = append(devices, disk)
	}
	nic, err := devices.CreateEthernetCard(orDefault(s.NIC, "vmxnet3"), p.network)
	if err != nil {
		return err
	}
	devices = append(devices, nic)
	host := p.host
	if s.Passthrough {
		// The device is a host's: in vpx, place the VM on the cluster's first host.
		if host == nil {
			host = firstHost(inv.client)
		}
		// As ESXi requires for passthrough: all memory reserved.
		config.MemoryReservationLockedToMax = types.NewBool(true)
		devices = append(devices, &types.VirtualPCIPassthrough{VirtualDevice: types.VirtualDevice{
			Key:     -200,
			Backing: pciBackingFor(host.Reference()), // the host's Tesla T4, 0000:3b:00.0
		}})
	}
	if config.DeviceChange, err = devices.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd); err != nil {
		return err
	}

	task, err := p.folder.CreateVM(ctx, config, p.pool, host)
	if err != nil {
		return err
	}
	info, err := task.WaitForResult(ctx, nil)
	if err != nil {
		return err
	}
	vm := object.NewVirtualMachine(inv.client, info.Result.(types.ManagedObjectReference))
	switch s.Power {
	case "on":
		err = waitTask(ctx, vm.PowerOn)
	case "suspended":
		if err = waitTask(ctx, vm.PowerOn); err == nil {
			err = waitTask(ctx, vm.Suspend)
		}
	}
	if err != nil || (s.IP == "" && s.Tools == "" && s.Hostname == "") {
		return err
	}
	u := guestUpdate{VM: vm.Reference().Value, Tools: s.Tools}
	if s.IP != "" {
		u.IP = &s.IP
	}
	if s.Hostname != "" {
		u.Hostname = &s.Hostname
	}
	return inv.setGuest(ctx, u)
}

// extraConfig renders tags and extra_config in a stable order.
func extraConfig(s vmSpec) []types.BaseOptionValue {
	var opts []types.BaseOptionValue
	if len(s.Tags) > 0 {
		opts = append(opts, &types.OptionValue{Key: "ceso.tags", Value: strings.Join(s.Tags, ",")})
	}
	keys := make([]string, 0, len(s.ExtraConfig))
	for k := range s.ExtraConfig {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		opts = append(opts, &types.OptionValue{Key: k, Value: s.ExtraConfig[k]})
	}
	return opts
}

func waitTask(ctx context.Context, start func(context.Context) (*object.Task, error)) error {
	task, err := start(ctx)
	if err != nil {
		return err
	}
	return task.Wait(ctx)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// firstHost is the host with the lowest moref id (vpx: a cluster member).
func firstHost(c *vim25.Client) *object.HostSystem {
	var refs []types.ManagedObjectReference
	for _, e := range simulator.Map.All("HostSystem") {
		refs = append(refs, e.Reference())
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].Value < refs[j].Value })
	if len(refs) == 0 {
		return nil
	}
	return object.NewHostSystem(c, refs[0])
}
