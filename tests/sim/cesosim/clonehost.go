package main

import (
	"context"
	"fmt"
	"net/http"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// vcsim 0.24.2's CloneVM_Task ignores spec.location.host: the clone always runs on the
// source's host. vCenter puts it on the host asked for, which must be a host of the
// compute resource of the pool the clone goes into (InvalidArgument otherwise), and
// answers ManagedObjectNotFound for a host that does not exist. cloneHostCheck refuses
// before anything is made; placeClone moves the finished clone to its host.

func cloneRequest(body []byte) (*types.CloneVM_Task, bool) {
	m, err := simulator.UnmarshalBody(types.TypeFunc(), body)
	if err != nil {
		return nil, false
	}
	req, ok := m.Body.(*types.CloneVM_Task)
	return req, ok
}

// cloneHostCheck reports whether it answered (with a fault).
func (f *front) cloneHostCheck(w http.ResponseWriter, body []byte) bool {
	req, ok := cloneRequest(body)
	if !ok || req.Spec.Location.Host == nil {
		return false
	}
	href := *req.Spec.Location.Host
	hs, ok := simulator.Map.Get(href).(*simulator.HostSystem)
	if !ok {
		writeFault(w, fmt.Sprintf("The object '%s:%s' has already been deleted or has not been completely created",
			href.Type, href.Value), &types.ManagedObjectNotFound{Obj: href})
		return true
	}
	pool := req.Spec.Location.Pool
	if pool == nil {
		if src, ok := simulator.Map.Get(req.This).(*simulator.VirtualMachine); ok {
			pool = src.ResourcePool
		}
	}
	if pool != nil {
		owner, ok := ownerOf(*pool) // pools.go
		if !ok || hs.Parent == nil || *hs.Parent != owner {
			writeFault(w, "A specified parameter was not correct: host (not a host of the pool's compute resource)",
				&types.InvalidArgument{InvalidProperty: "host"})
			return true
		}
	}
	return false
}

// placeClone runs the clone on the host its request named.
func placeClone(_ context.Context, clone types.ManagedObjectReference, body []byte) {
	req, ok := cloneRequest(body)
	if !ok || req.Spec.Location.Host == nil {
		return
	}
	vm, ok := simulator.Map.Get(clone).(*simulator.VirtualMachine)
	if !ok || vm.Runtime.Host == nil || *vm.Runtime.Host == *req.Spec.Location.Host {
		return
	}
	to, ok := simulator.Map.Get(*req.Spec.Location.Host).(*simulator.HostSystem)
	if !ok {
		return
	}
	if from, ok := simulator.Map.Get(*vm.Runtime.Host).(*simulator.HostSystem); ok {
		simulator.Map.RemoveReference(from, &from.Vm, clone)
	}
	simulator.Map.AddReference(to, &to.Vm, clone)
	host := to.Self
	simulator.Map.Update(vm, []types.PropertyChange{
		{Name: "runtime.host", Val: &host},
		{Name: "summary.runtime.host", Val: &host},
	})
}
