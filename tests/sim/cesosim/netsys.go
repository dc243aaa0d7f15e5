package main

// Standard portgroups as a real ESXi host manages them. vcsim 0.24.2's HostNetworkSystem
// accepts any VLAN id (5000, -1), has no UpdatePortGroup, answers a duplicate name with
// DuplicateName from the network folder instead of AlreadyExists, removes portgroups that
// powered-on VMs or VMkernel NICs use, lists portgroup names (not keys) in
// vswitch[].portgroup and never updates the host's config.network or its `network` list.
//
// Here AddPortGroup, UpdatePortGroup and RemovePortGroup are answered by the front
// (netPortGroup) with the checks hostd makes:
//   - portgrp.name not empty, portgrp.vlanId 0–4095 (4095: all VLANs, a trunk), else
//     InvalidArgument naming the field;
//   - the vSwitch must exist (NotFound), the name must be new on the host (AlreadyExists);
//   - RemovePortGroup, and a rename by UpdatePortGroup, of a portgroup that a powered-on VM
//     of the host or a VMkernel NIC (a port of type "host") uses: ResourceInUse.
// The state is kept where a host shows it: the network system's networkInfo, the host's
// config.network (the same), HostSystem.network, and a Network object per portgroup
// (HaNetwork-NAME on a standalone host) created with the portgroup and removed with it
// unless a VM still refers to it.

import (
	"fmt"
	"net/http"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// netMu makes each portgroup call one step (check and change), as hostd does.
var netMu sync.Mutex

var portGroupMethods = map[string]bool{
	"AddPortGroup":    true,
	"UpdatePortGroup": true,
	"RemovePortGroup": true,
}

const (
	pgKeyPrefix = "key-vim.host.PortGroup-"
	vsKeyPrefix = "key-vim.host.VirtualSwitch-"
)

// installNetwork gives every host's network system its host's network info (keys in
// vswitch[].portgroup, the Management Network with its VMkernel port), each host its
// own copy. Run before serving.
func installNetwork() {
	for _, e := range simulator.Map.All("HostSystem") {
		hs, ok := e.(*simulator.HostSystem)
		if !ok || hs.Config == nil || hs.Config.Network == nil || hs.ConfigManager.NetworkSystem == nil {
			continue
		}
		ns, ok := simulator.Map.Get(*hs.ConfigManager.NetworkSystem).(*simulator.HostNetworkSystem)
		if !ok {
			continue
		}
		info := copyNetworkInfo(hs.Config.Network)
		simulator.Map.WithLock(ns, func() { ns.NetworkInfo = info })
		simulator.Map.WithLock(hs, func() {
			cfg := *hs.Config
			cfg.Network = copyNetworkInfo(info)
			hs.Config = &cfg
		})
	}
}

// copyNetworkInfo copies what the portgroup calls change (vcsim's hosts share one).
func copyNetworkInfo(in *types.HostNetworkInfo) *types.HostNetworkInfo {
	out := *in
	out.Vswitch = make([]types.HostVirtualSwitch, len(in.Vswitch))
	for i, v := range in.Vswitch {
		v.Portgroup = append([]string(nil), v.Portgroup...)
		out.Vswitch[i] = v
	}
	out.Portgroup = append([]types.HostPortGroup(nil), in.Portgroup...)
	return &out
}

type netFault struct {
	msg   string
	fault types.BaseMethodFault
}

func invalidArg(field string) *netFault {
	return &netFault{"A specified parameter was not correct: " + field, &types.InvalidArgument{InvalidProperty: field}}
}

// checkSpec makes the checks of a HostPortGroupSpec that do not depend on other portgroups.
func checkSpec(info *types.HostNetworkInfo, spec *types.HostPortGroupSpec) (*types.HostVirtualSwitch, *netFault) {
	if spec.Name == "" {
		return nil, invalidArg("portgrp.name")
	}
	if spec.VlanId < 0 || spec.VlanId > 4095 {
		return nil, invalidArg("portgrp.vlanId")
	}
	for i := range info.Vswitch {
		if info.Vswitch[i].Name == spec.VswitchName {
			return &info.Vswitch[i], nil
		}
	}
	return nil, &netFault{fmt.Sprintf("The object or item referred to could not be found: vSwitch %q", spec.VswitchName),
		&types.NotFound{}}
}

func findPortGroup(info *types.HostNetworkInfo, name string) int {
	for i, pg := range info.Portgroup {
		if pg.Spec.Name == name {
			return i
		}
	}
	return -1
}

// portGroupUser names what keeps portgroup `name` of `host` busy: a VMkernel NIC, or a
// powered-on VM of the host with a NIC on it; "" when nothing does.
func portGroupUser(ctx *simulator.Context, host types.ManagedObjectReference, pg *types.HostPortGroup) string {
	for _, p := range pg.Port {
		if p.Type == "host" {
			return "a VMkernel NIC"
		}
	}
	for _, e := range ctx.Map.All("VirtualMachine") {
		vm, ok := e.(*simulator.VirtualMachine)
		if !ok {
			continue
		}
		user := ""
		ctx.Map.WithLock(vm, func() {
			if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn || vm.Config == nil ||
				vm.Runtime.Host == nil || *vm.Runtime.Host != host {
				return
			}
			for _, d := range vm.Config.Hardware.Device {
				nic, ok := d.(types.BaseVirtualEthernetCard)
				if !ok {
					continue
				}
				if b, ok := nic.GetVirtualEthernetCard().Backing.(*types.VirtualEthernetCardNetworkBackingInfo); ok &&
					b.DeviceName == pg.Spec.Name {
					user = "the virtual machine " + vm.Name
				}
			}
		})
		if user != "" {
			return user
		}
	}
	return ""
}

// networkFolder is the host's datacenter and its network folder.
func networkFolder(ctx *simulator.Context, hs *simulator.HostSystem) (*simulator.Datacenter, *simulator.Folder) {
	for p := hs.Parent; p != nil; {
		obj := ctx.Map.Get(*p)
		if dc, ok := obj.(*simulator.Datacenter); ok {
			f, _ := ctx.Map.Get(dc.NetworkFolder).(*simulator.Folder)
			return dc, f
		}
		me, ok := obj.(mo.Entity)
		if !ok {
			break
		}
		p = me.Entity().Parent
	}
	return nil, nil
}

// networkNamed finds the Network object of a standard portgroup in the folder.
func networkNamed(ctx *simulator.Context, folder *simulator.Folder, name string) *mo.Network {
	var children []types.ManagedObjectReference
	ctx.Map.WithLock(folder, func() { children = append(children, folder.ChildEntity...) })
	for _, ref := range children {
		if ref.Type != "Network" {
			continue
		}
		if n, ok := ctx.Map.Get(ref).(*mo.Network); ok && n.Name == name {
			return n
		}
	}
	return nil
}

// addNetwork makes (or, on vCenter, joins) the Network object of a new portgroup.
func addNetwork(ctx *simulator.Context, hs *simulator.HostSystem, name string) {
	dc, folder := networkFolder(ctx, hs)
	if folder == nil {
		return
	}
	n := networkNamed(ctx, folder, name)
	if n == nil {
		// As vcsim's own networks: a summary, in the folder and the datacenter's list.
		n = &mo.Network{}
		n.Name = name
		if hs.Self.Value == "ha-host" {
			n.Self = types.ManagedObjectReference{Type: "Network", Value: "HaNetwork-" + name}
		} else {
			n.Self = ctx.Map.NewEntity(n).Reference()
		}
		n.Summary = &types.NetworkSummary{Network: &n.Self, Name: name, Accessible: true}
		ctx.Map.AddReference(folder, &folder.ChildEntity, n.Self)
		ctx.Map.PutEntity(folder, n)
		ctx.Map.AddReference(dc, &dc.Network, n.Self)
	}
	ctx.Map.AddReference(n, &n.Host, hs.Self)
	ctx.Map.AddReference(hs, &hs.Network, n.Self)
}

// dropNetwork takes the host off a removed portgroup's Network object, and removes the
// object when no host has it and no VM refers to it.
func dropNetwork(ctx *simulator.Context, hs *simulator.HostSystem, name string) {
	dc, folder := networkFolder(ctx, hs)
	if folder == nil {
		return
	}
	n := networkNamed(ctx, folder, name)
	if n == nil {
		return
	}
	ctx.Map.RemoveReference(hs, &hs.Network, n.Self)
	ctx.Map.RemoveReference(n, &n.Host, hs.Self)
	used := false
	for _, e := range ctx.Map.All("VirtualMachine") {
		if vm, ok := e.(*simulator.VirtualMachine); ok {
			ctx.Map.WithLock(vm, func() {
				for _, r := range vm.Network {
					used = used || r == n.Self
				}
			})
		}
	}
	var hosts int
	ctx.Map.WithLock(n, func() { hosts = len(n.Host) })
	if hosts == 0 && !used {
		ctx.Map.RemoveReference(folder, &folder.ChildEntity, n.Self)
		ctx.Map.RemoveReference(dc, &dc.Network, n.Self)
		ctx.Map.Remove(n.Self)
	}
}

// netPortGroup answers the three portgroup calls; false leaves the call to vcsim (not a
// network system, or a body it cannot read: vcsim faults).
func (f *front) netPortGroup(w http.ResponseWriter, call soapCall, body []byte) bool {
	ns, ok := simulator.Map.Get(call.This).(*simulator.HostNetworkSystem)
	if !ok || ns.Host == nil {
		return false
	}
	m, err := simulator.UnmarshalBody(types.TypeFunc(), body)
	if err != nil {
		return false
	}
	hs, ok := simulator.Map.Get(ns.Host.Self).(*simulator.HostSystem)
	if !ok {
		return false
	}
	ctx := &simulator.Context{Map: simulator.Map}
	var res interface{}
	var nf *netFault
	netMu.Lock()
	switch req := m.Body.(type) {
	case *types.AddPortGroup:
		nf = addPortGroup(ctx, ns, hs, &req.Portgrp)
		res = &types.AddPortGroupResponse{}
	case *types.UpdatePortGroup:
		nf = updatePortGroup(ctx, ns, hs, req.PgName, &req.Portgrp)
		res = &types.UpdatePortGroupResponse{}
	case *types.RemovePortGroup:
		nf = removePortGroup(ctx, ns, hs, req.PgName)
		res = &types.RemovePortGroupResponse{}
	default:
		netMu.Unlock()
		return false
	}
	if nf == nil {
		var info *types.HostNetworkInfo
		simulator.Map.WithLock(ns, func() { info = copyNetworkInfo(ns.NetworkInfo) })
		simulator.Map.WithLock(hs, func() {
			cfg := *hs.Config
			cfg.Network = info
			hs.Config = &cfg
		})
	}
	netMu.Unlock()
	if nf != nil {
		writeFault(w, nf.msg, nf.fault)
		return true
	}
	writeResponse(w, res)
	return true
}

func addPortGroup(ctx *simulator.Context, ns *simulator.HostNetworkSystem, hs *simulator.HostSystem,
	spec *types.HostPortGroupSpec) (nf *netFault) {
	ctx.Map.WithLock(ns, func() {
		info := ns.NetworkInfo
		vs, f := checkSpec(info, spec)
		if f != nil {
			nf = f
			return
		}
		if findPortGroup(info, spec.Name) >= 0 {
			nf = &netFault{fmt.Sprintf("The specified key, name, or identifier '%s' already exists.", spec.Name),
				&types.AlreadyExists{Name: spec.Name}}
			return
		}
		key := pgKeyPrefix + spec.Name
		vs.Portgroup = append(vs.Portgroup, key)
		info.Portgroup = append(info.Portgroup, types.HostPortGroup{
			Key: key, Vswitch: vs.Key, ComputedPolicy: spec.Policy, Spec: *spec,
		})
	})
	if nf == nil {
		addNetwork(ctx, hs, spec.Name)
	}
	return nf
}

func updatePortGroup(ctx *simulator.Context, ns *simulator.HostNetworkSystem, hs *simulator.HostSystem,
	name string, spec *types.HostPortGroupSpec) (nf *netFault) {
	renamed := false
	ctx.Map.WithLock(ns, func() {
		info := ns.NetworkInfo
		i := findPortGroup(info, name)
		if i < 0 {
			nf = &netFault{fmt.Sprintf("The object or item referred to could not be found: portgroup %q", name), &types.NotFound{}}
			return
		}
		vs, f := checkSpec(info, spec)
		if f != nil {
			nf = f
			return
		}
		pg := &info.Portgroup[i]
		if spec.Name != name {
			if findPortGroup(info, spec.Name) >= 0 {
				nf = &netFault{fmt.Sprintf("The specified key, name, or identifier '%s' already exists.", spec.Name),
					&types.AlreadyExists{Name: spec.Name}}
				return
			}
			if user := portGroupUser(ctx, hs.Self, pg); user != "" {
				nf = &netFault{fmt.Sprintf("The resource '%s' is in use: %s uses it.", name, user),
					&types.ResourceInUse{Type: "Network", Name: name}}
				return
			}
			renamed = true
		}
		// Off the old vSwitch's list, onto the new one's, under the new key.
		for j := range info.Vswitch {
			info.Vswitch[j].Portgroup = removeString(info.Vswitch[j].Portgroup, pg.Key)
		}
		pg.Key = pgKeyPrefix + spec.Name
		pg.Vswitch = vs.Key
		pg.Spec = *spec
		pg.ComputedPolicy = spec.Policy
		vs.Portgroup = append(vs.Portgroup, pg.Key)
	})
	if renamed {
		dropNetwork(ctx, hs, name)
		addNetwork(ctx, hs, spec.Name)
	}
	return nf
}

func removePortGroup(ctx *simulator.Context, ns *simulator.HostNetworkSystem, hs *simulator.HostSystem,
	name string) (nf *netFault) {
	ctx.Map.WithLock(ns, func() {
		info := ns.NetworkInfo
		i := findPortGroup(info, name)
		if i < 0 {
			nf = &netFault{fmt.Sprintf("The object or item referred to could not be found: portgroup %q", name), &types.NotFound{}}
			return
		}
		pg := info.Portgroup[i]
		if user := portGroupUser(ctx, hs.Self, &pg); user != "" {
			nf = &netFault{fmt.Sprintf("The resource '%s' is in use: %s uses it.", name, user),
				&types.ResourceInUse{Type: "Network", Name: name}}
			return
		}
		for j := range info.Vswitch {
			info.Vswitch[j].Portgroup = removeString(info.Vswitch[j].Portgroup, pg.Key)
		}
		info.Portgroup = append(info.Portgroup[:i:i], info.Portgroup[i+1:]...)
	})
	if nf == nil {
		dropNetwork(ctx, hs, name)
	}
	return nf
}

func removeString(list []string, s string) []string {
	out := list[:0:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// Distributed portgroups: vCenter refuses a VLAN id outside 0–4094 in a
// VmwareDistributedVirtualSwitchVlanIdSpec (4095, all VLANs, is a trunk spec) and trunk
// ranges outside 0–4094 or backwards; vcsim takes any number.
var dvPortgroupMethods = map[string]bool{
	"CreateDVPortgroup_Task":      true,
	"AddDVPortgroup_Task":         true,
	"ReconfigureDVPortgroup_Task": true,
}

func dvVlanFault(setting types.BaseDVPortSetting) *netFault {
	s, ok := setting.(*types.VMwareDVSPortSetting)
	if !ok || s == nil || s.Vlan == nil {
		return nil
	}
	switch v := s.Vlan.(type) {
	case *types.VmwareDistributedVirtualSwitchVlanIdSpec:
		if v.VlanId < 0 || v.VlanId > 4094 {
			return invalidArg("spec.defaultPortConfig.vlan.vlanId")
		}
	case *types.VmwareDistributedVirtualSwitchTrunkVlanSpec:
		for _, r := range v.VlanId {
			if r.Start < 0 || r.End > 4094 || r.Start > r.End {
				return invalidArg("spec.defaultPortConfig.vlan.vlanId")
			}
		}
	}
	return nil
}

// dvPortgroupCheck answers a distributed portgroup call with a bad VLAN with the fault;
// false leaves the call to vcsim.
func (f *front) dvPortgroupCheck(w http.ResponseWriter, body []byte) bool {
	m, err := simulator.UnmarshalBody(types.TypeFunc(), body)
	if err != nil {
		return false
	}
	var specs []types.DVPortgroupConfigSpec
	switch req := m.Body.(type) {
	case *types.CreateDVPortgroup_Task:
		specs = append(specs, req.Spec)
	case *types.AddDVPortgroup_Task:
		specs = append(specs, req.Spec...)
	case *types.ReconfigureDVPortgroup_Task:
		specs = append(specs, req.Spec)
	default:
		return false
	}
	for _, s := range specs {
		if nf := dvVlanFault(s.DefaultPortConfig); nf != nil {
			writeFault(w, nf.msg, nf.fault)
			return true
		}
	}
	return false
}
