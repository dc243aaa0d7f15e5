package main

// Resource pools and distributed portgroup changes as a real host or vCenter makes them.
//
// vcsim 0.24.2 already refuses a CreateResourcePool whose cpuAllocation or
// memoryAllocation lacks one of reservation, expandableReservation, limit and shares
// (InvalidArgument spec.cpuAllocation), and a duplicate sibling name (DuplicateName). It
// does not check the name (empty, over 80 characters: InvalidName on a real host), a
// shares level outside low/normal/high/custom, a limit below the reservation, and it
// stores the shares value as sent where a host computes it from the level (a pool's CPU
// shares: low 2000, normal 4000, high 8000; memory: low 81920, normal 163840, high
// 327680); a new pool's runtime is a copy of the root pool's. Here CreateResourcePool is
// answered by the front (createPool) with those checks, naming the field, then passed to
// vcsim; the new pool gets an idle runtime (nothing reserved or used, maxUsage its
// limit or the parent's).
//
// CreateVM_Task with a pool that does not exist makes vcsim panic (a SystemError here);
// a host answers ManagedObjectNotFound. A pool of another compute resource than the
// `host` argument's: InvalidArgument "pool" (vcsim places the VM anyway).
//
// Distributed portgroups (vCenter): vcsim copies spec.configVersion as sent (so "" for a
// client that sends none), never checks nor bumps it on ReconfigureDVPortgroup_Task, and
// overwrites every field of the portgroup's config with the spec's (an unset name, port
// count or type blanks it). vCenter keeps a version ("0" at creation, one up per
// change), refuses a reconfiguration naming another version with ConcurrentAccess, and
// changes only the fields the spec sets. Destroy_Task of a portgroup that a VM's NIC
// uses fails on vCenter with ResourceInUse; vcsim destroys it and leaves it in the
// hosts' and compute resources' `network` lists. Here those calls are answered by
// dvPortgroupCall.

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// poolMu makes each pool call one step (check and change).
var poolMu sync.Mutex

const maxEntityNameRunes = 80

var poolShares = map[string]map[types.SharesLevel]int32{
	"cpu":    {types.SharesLevelLow: 2000, types.SharesLevelNormal: 4000, types.SharesLevelHigh: 8000},
	"memory": {types.SharesLevelLow: 81920, types.SharesLevelNormal: 163840, types.SharesLevelHigh: 327680},
}

// allocationFault checks one ResourceAllocationInfo of a CreateResourcePool spec and
// fills in the shares value of a named level.
func allocationFault(kind string, a *types.ResourceAllocationInfo) *netFault {
	field := "spec." + kind + "Allocation"
	switch {
	case a.Reservation == nil:
		return invalidArg(field + ".reservation")
	case a.ExpandableReservation == nil:
		return invalidArg(field + ".expandableReservation")
	case a.Limit == nil:
		return invalidArg(field + ".limit")
	case a.Shares == nil:
		return invalidArg(field + ".shares")
	case *a.Reservation < 0:
		return invalidArg(field + ".reservation")
	case *a.Limit < -1:
		return invalidArg(field + ".limit")
	case *a.Limit != -1 && *a.Limit < *a.Reservation:
		return &netFault{fmt.Sprintf("A specified parameter was not correct: %s.limit (%d is below the reservation %d)",
			field, *a.Limit, *a.Reservation), &types.InvalidArgument{InvalidProperty: field + ".limit"}}
	case a.OverheadLimit != nil:
		return invalidArg(field + ".overheadLimit")
	}
	switch a.Shares.Level {
	case types.SharesLevelCustom:
		if a.Shares.Shares < 0 {
			return invalidArg(field + ".shares.shares")
		}
	case types.SharesLevelLow, types.SharesLevelNormal, types.SharesLevelHigh:
		a.Shares.Shares = poolShares[kind][a.Shares.Level]
	default:
		return invalidArg(field + ".shares.level")
	}
	return nil
}

// createPool checks a CreateResourcePool; it answers (true) only a refused call.
func (f *front) createPool(w http.ResponseWriter, call soapCall, body []byte) bool {
	m, err := simulator.UnmarshalBody(types.TypeFunc(), body)
	if err != nil {
		return false
	}
	req, ok := m.Body.(*types.CreateResourcePool)
	if !ok {
		return false
	}
	if _, ok := simulator.Map.Get(call.This).(*simulator.ResourcePool); !ok {
		return false // vcsim answers ManagedObjectNotFound
	}
	if req.Name == "" || utf8.RuneCountInString(req.Name) > maxEntityNameRunes || !utf8.ValidString(req.Name) {
		writeFault(w, fmt.Sprintf("The name '%s' is invalid", req.Name), &types.InvalidName{Name: req.Name})
		return true
	}
	for _, k := range []struct {
		kind string
		a    *types.ResourceAllocationInfo
	}{{"cpu", &req.Spec.CpuAllocation}, {"memory", &req.Spec.MemoryAllocation}} {
		if nf := allocationFault(k.kind, k.a); nf != nil {
			writeFault(w, nf.msg, nf.fault)
			return true
		}
	}
	return false
}

// poolCreated gives the pool vcsim just made the shares a host computes and an idle
// runtime (vcsim copies the root pool's).
func poolCreated(parent types.ManagedObjectReference, name string, spec types.ResourceConfigSpec) {
	p, ok := simulator.Map.Get(parent).(*simulator.ResourcePool)
	if !ok {
		return
	}
	var children []types.ManagedObjectReference
	var parentRuntime types.ResourcePoolRuntimeInfo
	simulator.Map.WithLock(p, func() {
		children = append(children, p.ResourcePool.ResourcePool...)
		parentRuntime = p.Runtime
	})
	for _, ref := range children {
		child, ok := simulator.Map.Get(ref).(*simulator.ResourcePool)
		if !ok || child.Name != name {
			continue
		}
		idle := func(a types.ResourceAllocationInfo, up types.ResourcePoolResourceUsage) types.ResourcePoolResourceUsage {
			max := up.MaxUsage
			if a.Limit != nil && *a.Limit >= 0 && (*a.Limit < max || max <= 0) {
				max = *a.Limit
			}
			return types.ResourcePoolResourceUsage{UnreservedForPool: max, UnreservedForVm: max, MaxUsage: max}
		}
		simulator.Map.WithLock(child, func() {
			child.Config.CpuAllocation = spec.CpuAllocation
			child.Config.MemoryAllocation = spec.MemoryAllocation
			e := child.Self
			child.Config.Entity = &e
			child.Runtime = types.ResourcePoolRuntimeInfo{
				Cpu:           idle(spec.CpuAllocation, parentRuntime.Cpu),
				Memory:        idle(spec.MemoryAllocation, parentRuntime.Memory),
				OverallStatus: types.ManagedEntityStatusGreen,
			}
		})
	}
}

// poolCall answers CreateResourcePool: checks, then vcsim, then the fix-ups.
func (f *front) poolCall(w http.ResponseWriter, r *http.Request, call soapCall, body []byte) {
	poolMu.Lock()
	defer poolMu.Unlock()
	if f.createPool(w, call, body) {
		return
	}
	rec := f.record(r, body, call.Method)
	if rec.Code == http.StatusOK {
		if m, err := simulator.UnmarshalBody(types.TypeFunc(), body); err == nil {
			if req, ok := m.Body.(*types.CreateResourcePool); ok {
				spec := req.Spec
				// allocationFault filled in the shares of named levels
				_ = allocationFault("cpu", &spec.CpuAllocation)
				_ = allocationFault("memory", &spec.MemoryAllocation)
				poolCreated(call.This, req.Name, spec)
			}
		}
	}
	copyRecorded(w, rec)
}

// ownerOf is the compute resource a pool belongs to.
func ownerOf(pool types.ManagedObjectReference) (types.ManagedObjectReference, bool) {
	switch p := simulator.Map.Get(pool).(type) {
	case *simulator.ResourcePool:
		return p.Owner, true
	case *simulator.VirtualApp:
		return p.Owner, true
	}
	return types.ManagedObjectReference{}, false
}

// createVMPool refuses a CreateVM_Task whose pool does not exist or is not of the
// host's compute resource; it reports whether it answered.
func (f *front) createVMPool(w http.ResponseWriter, body []byte) bool {
	m, err := simulator.UnmarshalBody(types.TypeFunc(), body)
	if err != nil {
		return false
	}
	req, ok := m.Body.(*types.CreateVM_Task)
	if !ok {
		return false
	}
	owner, ok := ownerOf(req.Pool)
	if !ok {
		writeFault(w, fmt.Sprintf("The object '%s:%s' has already been deleted or has not been completely created",
			req.Pool.Type, req.Pool.Value), &types.ManagedObjectNotFound{Obj: req.Pool})
		return true
	}
	if req.Host != nil {
		hs, ok := simulator.Map.Get(*req.Host).(*simulator.HostSystem)
		if !ok || hs.Parent == nil || *hs.Parent != owner {
			writeFault(w, "A specified parameter was not correct: pool (not a resource pool of the host's compute resource)",
				&types.InvalidArgument{InvalidProperty: "pool"})
			return true
		}
	}
	return false
}

// dvMu makes each distributed portgroup change one step.
var dvMu sync.Mutex

// versionDVPortgroups gives every distributed portgroup without a configVersion "0",
// as vCenter does at creation.
func versionDVPortgroups() {
	for _, e := range simulator.Map.All("DistributedVirtualPortgroup") {
		if pg, ok := e.(*simulator.DistributedVirtualPortgroup); ok {
			simulator.Map.WithLock(pg, func() {
				if pg.Config.ConfigVersion == "" {
					pg.Config.ConfigVersion = "0"
				}
			})
		}
	}
}

// dvPortgroupUser names a VM with a NIC on the portgroup (key), or "".
func dvPortgroupUser(ref types.ManagedObjectReference, key string) string {
	for _, e := range simulator.Map.All("VirtualMachine") {
		vm, ok := e.(*simulator.VirtualMachine)
		if !ok {
			continue
		}
		user := ""
		simulator.Map.WithLock(vm, func() {
			for _, n := range vm.Network {
				if n == ref {
					user = vm.Name
				}
			}
			if vm.Config == nil {
				return
			}
			for _, d := range vm.Config.Hardware.Device {
				nic, ok := d.(types.BaseVirtualEthernetCard)
				if !ok {
					continue
				}
				if b, ok := nic.GetVirtualEthernetCard().Backing.(*types.VirtualEthernetCardDistributedVirtualPortBackingInfo); ok &&
					b.Port.PortgroupKey == key {
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

// succeededTask answers a *_Task call with a task that ran `run` (synchronously, like
// vcsim's own tasks).
func succeededTask(w http.ResponseWriter, call soapCall, run func() types.BaseMethodFault) {
	id := call.Method[:len(call.Method)-len("_Task")]
	task := simulator.CreateTask(call.This, id, func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		return nil, run()
	})
	writeResponse(w, &taskResponse{name: call.Method + "Response", Returnval: task.Run()})
}

// dvPortgroupCall answers the distributed portgroup calls (see the top of the file);
// false leaves the call to vcsim as it is.
func (f *front) dvPortgroupCall(w http.ResponseWriter, r *http.Request, call soapCall, body []byte) bool {
	dvMu.Lock()
	defer dvMu.Unlock()
	switch call.Method {
	case "AddDVPortgroup_Task", "CreateDVPortgroup_Task":
		if f.dvPortgroupCheck(w, body) { // netsys.go: the VLAN
			return true
		}
		rec := f.record(r, body, call.Method)
		versionDVPortgroups()
		copyRecorded(w, rec)
		return true
	case "ReconfigureDVPortgroup_Task":
		if f.dvPortgroupCheck(w, body) {
			return true
		}
		pg, ok := simulator.Map.Get(call.This).(*simulator.DistributedVirtualPortgroup)
		if !ok {
			return false
		}
		m, err := simulator.UnmarshalBody(types.TypeFunc(), body)
		if err != nil {
			return false
		}
		req, ok := m.Body.(*types.ReconfigureDVPortgroup_Task)
		if !ok {
			return false
		}
		versionDVPortgroups()
		var current string
		simulator.Map.WithLock(pg, func() { current = pg.Config.ConfigVersion })
		if req.Spec.ConfigVersion != current {
			// vCenter fails the task: the spec was made from an older state.
			f.failedTask(w, call, &types.ConcurrentAccess{},
				"Cannot complete operation due to concurrent modification by another operation.")
			return true
		}
		if req.Spec.Name != "" && req.Spec.Name != pg.Name {
			if dup := dvPortgroupNamed(pg, req.Spec.Name); dup != nil {
				f.failedTask(w, call, &types.DuplicateName{Name: req.Spec.Name, Object: *dup},
					fmt.Sprintf("The name '%s' already exists.", req.Spec.Name))
				return true
			}
		}
		succeededTask(w, call, func() types.BaseMethodFault {
			simulator.Map.WithLock(pg, func() { applyDVPortgroupSpec(pg, &req.Spec) })
			return nil
		})
		return true
	case "Destroy_Task":
		if rp, ok := simulator.Map.Get(call.This).(*simulator.ResourcePool); ok {
			f.destroyPool(w, r, call, body, rp)
			return true
		}
		pg, ok := simulator.Map.Get(call.This).(*simulator.DistributedVirtualPortgroup)
		if !ok {
			return false
		}
		if user := dvPortgroupUser(pg.Self, pg.Key); user != "" {
			f.failedTask(w, call, &types.ResourceInUse{Type: "DistributedVirtualPortgroup", Name: pg.Name},
				fmt.Sprintf("The resource '%s' is in use: the virtual machine %s has a NIC on it.", pg.Name, user))
			return true
		}
		var hosts []types.ManagedObjectReference
		simulator.Map.WithLock(pg, func() { hosts = append(hosts, pg.Host...) })
		rec := f.record(r, body, call.Method)
		if _, still := simulator.Map.Get(pg.Self).(*simulator.DistributedVirtualPortgroup); !still {
			for _, h := range hosts {
				hs, ok := simulator.Map.Get(h).(*simulator.HostSystem)
				if !ok {
					continue
				}
				simulator.Map.RemoveReference(hs, &hs.Network, pg.Self)
				if hs.Parent == nil {
					continue
				}
				switch cr := simulator.Map.Get(*hs.Parent).(type) {
				case *simulator.ClusterComputeResource:
					simulator.Map.RemoveReference(cr, &cr.Network, pg.Self)
				case *mo.ComputeResource:
					simulator.Map.RemoveReference(cr, &cr.Network, pg.Self)
				}
			}
		}
		copyRecorded(w, rec)
		return true
	}
	return false
}

// dvPortgroupNamed finds another portgroup of the same switch with that name.
func dvPortgroupNamed(pg *simulator.DistributedVirtualPortgroup, name string) *types.ManagedObjectReference {
	if pg.Config.DistributedVirtualSwitch == nil {
		return nil
	}
	sw, ok := simulator.Map.Get(*pg.Config.DistributedVirtualSwitch).(*simulator.DistributedVirtualSwitch)
	if !ok {
		return nil
	}
	var refs []types.ManagedObjectReference
	simulator.Map.WithLock(sw, func() { refs = append(refs, sw.Portgroup...) })
	for _, ref := range refs {
		if other, ok := simulator.Map.Get(ref).(*simulator.DistributedVirtualPortgroup); ok &&
			other.Self != pg.Self && other.Name == name {
			return &ref
		}
	}
	return nil
}

// applyDVPortgroupSpec makes the changes a spec sets, and counts the version up.
func applyDVPortgroupSpec(pg *simulator.DistributedVirtualPortgroup, s *types.DVPortgroupConfigSpec) {
	if s.Name != "" {
		pg.Name = s.Name
		pg.Config.Name = s.Name
	}
	if s.NumPorts > 0 {
		pg.Config.NumPorts = s.NumPorts
	}
	if s.Type != "" {
		pg.Config.Type = s.Type
	}
	if s.Description != "" {
		pg.Config.Description = s.Description
	}
	if s.AutoExpand != nil {
		pg.Config.AutoExpand = s.AutoExpand
	}
	if s.Policy != nil {
		pg.Config.Policy = s.Policy
	}
	if in, ok := s.DefaultPortConfig.(*types.VMwareDVSPortSetting); ok && in != nil {
		cur, ok := pg.Config.DefaultPortConfig.(*types.VMwareDVSPortSetting)
		if !ok || cur == nil {
			pg.Config.DefaultPortConfig = in
		} else {
			next := *cur // a setting the spec leaves out stays
			if in.Vlan != nil {
				next.Vlan = in.Vlan
			}
			if in.UplinkTeamingPolicy != nil {
				next.UplinkTeamingPolicy = in.UplinkTeamingPolicy
			}
			if in.SecurityPolicy != nil {
				next.SecurityPolicy = in.SecurityPolicy
			}
			pg.Config.DefaultPortConfig = &next
		}
	}
	n, err := strconv.Atoi(pg.Config.ConfigVersion)
	if err != nil {
		n = 0
	}
	pg.Config.ConfigVersion = strconv.Itoa(n + 1)
}

// destroyPool passes Destroy_Task of a pool to vcsim, which moves the pool's VMs and child
// pools to its parent but leaves the children's `parent` naming the destroyed pool; a
// host re-parents them.
func (f *front) destroyPool(w http.ResponseWriter, r *http.Request, call soapCall, body []byte,
	rp *simulator.ResourcePool) {
	poolMu.Lock()
	defer poolMu.Unlock()
	var children []types.ManagedObjectReference
	var parent *types.ManagedObjectReference
	simulator.Map.WithLock(rp, func() {
		children = append(children, rp.ResourcePool.ResourcePool...)
		if rp.Parent != nil {
			p := *rp.Parent
			parent = &p
		}
	})
	rec := f.record(r, body, call.Method)
	if _, still := simulator.Map.Get(rp.Self).(*simulator.ResourcePool); !still && parent != nil {
		for _, ref := range children {
			if child, ok := simulator.Map.Get(ref).(*simulator.ResourcePool); ok {
				simulator.Map.WithLock(child, func() { child.Parent = parent })
			}
		}
	}
	copyRecorded(w, rec)
}
