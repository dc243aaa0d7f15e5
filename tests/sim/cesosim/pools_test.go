package main

import (
	"strings"
	"testing"

	"github.com/vmware/govmomi/vim25/types"
)

func fullAllocation() types.ResourceAllocationInfo {
	return types.ResourceAllocationInfo{
		Reservation:           types.NewInt64(0),
		ExpandableReservation: types.NewBool(true),
		Limit:                 types.NewInt64(-1),
		Shares:                &types.SharesInfo{Level: types.SharesLevelNormal},
	}
}

// Each of the four fields missing, and each bad value, is refused naming the field.
func TestAllocationFault(t *testing.T) {
	a := fullAllocation()
	if nf := allocationFault("cpu", &a); nf != nil {
		t.Fatalf("a full allocation was refused: %s", nf.msg)
	}
	if a.Shares.Shares != 4000 {
		t.Errorf("normal CPU shares: got %d, want 4000 (the host computes them)", a.Shares.Shares)
	}
	m := fullAllocation()
	m.Shares.Level = types.SharesLevelHigh
	if allocationFault("memory", &m) != nil || m.Shares.Shares != 327680 {
		t.Errorf("high memory shares: got %d, want 327680", m.Shares.Shares)
	}
	cases := map[string]func(a *types.ResourceAllocationInfo){
		"spec.cpuAllocation.reservation":           func(a *types.ResourceAllocationInfo) { a.Reservation = nil },
		"spec.cpuAllocation.expandableReservation": func(a *types.ResourceAllocationInfo) { a.ExpandableReservation = nil },
		"spec.cpuAllocation.limit":                 func(a *types.ResourceAllocationInfo) { a.Limit = nil },
		"spec.cpuAllocation.shares":                func(a *types.ResourceAllocationInfo) { a.Shares = nil },
		"spec.cpuAllocation.shares.level":          func(a *types.ResourceAllocationInfo) { a.Shares.Level = "medium" },
		"spec.cpuAllocation.shares.shares": func(a *types.ResourceAllocationInfo) {
			a.Shares.Level = types.SharesLevelCustom
			a.Shares.Shares = -1
		},
		"spec.cpuAllocation.overheadLimit": func(a *types.ResourceAllocationInfo) { a.OverheadLimit = types.NewInt64(1) },
		"spec.cpuAllocation.limit ": func(a *types.ResourceAllocationInfo) {
			a.Reservation = types.NewInt64(200)
			a.Limit = types.NewInt64(100)
		},
	}
	for want, change := range cases {
		a := fullAllocation()
		change(&a)
		nf := allocationFault("cpu", &a)
		if nf == nil {
			t.Errorf("%s: accepted", want)
			continue
		}
		ia, ok := nf.fault.(*types.InvalidArgument)
		if !ok || ia.InvalidProperty != strings.TrimSpace(want) {
			t.Errorf("%s: got %T %+v (%s)", want, nf.fault, nf.fault, nf.msg)
		}
	}
}
