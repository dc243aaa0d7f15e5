package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// faultKind is the fault type of a SOAP error ("" when err is nil or not a fault).
func faultKind(t *testing.T, err error) string {
	t.Helper()
	if err == nil || !soap.IsSoapFault(err) {
		return fmt.Sprintf("%v", err)
	}
	return fmt.Sprintf("%T", soap.ToSoapFault(err).VimFault())
}

type netTest struct {
	t    *testing.T
	c    *vim25.Client
	sys  types.ManagedObjectReference
	host types.ManagedObjectReference
}

func (n *netTest) add(name, vswitch string, vlan int32) error {
	_, err := methods.AddPortGroup(context.Background(), n.c, &types.AddPortGroup{This: n.sys,
		Portgrp: types.HostPortGroupSpec{Name: name, VlanId: vlan, VswitchName: vswitch}})
	return err
}

func (n *netTest) update(name string, spec types.HostPortGroupSpec) error {
	_, err := methods.UpdatePortGroup(context.Background(), n.c, &types.UpdatePortGroup{This: n.sys,
		PgName: name, Portgrp: spec})
	return err
}

func (n *netTest) remove(name string) error {
	_, err := methods.RemovePortGroup(context.Background(), n.c, &types.RemovePortGroup{This: n.sys, PgName: name})
	return err
}

// portgroups reads the network system's portgroups (name → spec) and checks that the
// host's config.network says the same.
func (n *netTest) portgroups() map[string]types.HostPortGroupSpec {
	n.t.Helper()
	ctx := context.Background()
	pc := property.DefaultCollector(n.c)
	var ns mo.HostNetworkSystem
	if err := pc.RetrieveOne(ctx, n.sys, []string{"networkInfo"}, &ns); err != nil {
		n.t.Fatal(err)
	}
	var hs mo.HostSystem
	if err := pc.RetrieveOne(ctx, n.host, []string{"config.network", "network"}, &hs); err != nil {
		n.t.Fatal(err)
	}
	out := map[string]types.HostPortGroupSpec{}
	for _, pg := range ns.NetworkInfo.Portgroup {
		out[pg.Spec.Name] = pg.Spec
		if pg.Key != pgKeyPrefix+pg.Spec.Name {
			n.t.Errorf("portgroup %q has key %q", pg.Spec.Name, pg.Key)
		}
		listed := 0
		for _, vs := range ns.NetworkInfo.Vswitch {
			for _, k := range vs.Portgroup {
				if k == pg.Key {
					listed++
					if vs.Name != pg.Spec.VswitchName || vs.Key != pg.Vswitch {
						n.t.Errorf("portgroup %q listed on %s, its spec says %s", pg.Spec.Name, vs.Name, pg.Spec.VswitchName)
					}
				}
			}
		}
		if listed != 1 {
			n.t.Errorf("portgroup %q is listed on %d vSwitches", pg.Spec.Name, listed)
		}
	}
	if len(hs.Config.Network.Portgroup) != len(ns.NetworkInfo.Portgroup) {
		n.t.Errorf("config.network has %d portgroups, networkInfo %d", len(hs.Config.Network.Portgroup), len(ns.NetworkInfo.Portgroup))
	}
	return out
}

// hostNetworks names the host's Network objects.
func (n *netTest) hostNetworks() map[string]bool {
	n.t.Helper()
	ctx := context.Background()
	pc := property.DefaultCollector(n.c)
	var hs mo.HostSystem
	if err := pc.RetrieveOne(ctx, n.host, []string{"network"}, &hs); err != nil {
		n.t.Fatal(err)
	}
	var nets []mo.Network
	if err := pc.Retrieve(ctx, hs.Network, []string{"name", "summary"}, &nets); err != nil {
		n.t.Fatal(err)
	}
	out := map[string]bool{}
	for _, x := range nets {
		out[x.Name] = true
		if x.Summary == nil || x.Summary.GetNetworkSummary().Name != x.Name {
			n.t.Errorf("network %q has summary %+v", x.Name, x.Summary)
		}
	}
	return out
}

func startNetTest(t *testing.T) *netTest {
	s := startTestSim(t, "eval")
	installNetwork()
	c := s.remote("")
	host := types.ManagedObjectReference{Type: "HostSystem", Value: "ha-host"}
	var hs mo.HostSystem
	if err := property.DefaultCollector(c).RetrieveOne(context.Background(), host,
		[]string{"configManager.networkSystem"}, &hs); err != nil {
		t.Fatal(err)
	}
	return &netTest{t: t, c: c, sys: *hs.ConfigManager.NetworkSystem, host: host}
}

// AddPortGroup as hostd: VLAN 0–4095, a name, an existing vSwitch, a new name.
func TestAddPortGroupChecks(t *testing.T) {
	n := startNetTest(t)
	for _, tc := range []struct {
		name, vswitch string
		vlan          int32
		want          string
	}{
		{"pg-5000", "vSwitch0", 5000, "types.InvalidArgument"},
		{"pg-4096", "vSwitch0", 4096, "types.InvalidArgument"},
		{"pg-neg", "vSwitch0", -1, "types.InvalidArgument"},
		{"", "vSwitch0", 10, "types.InvalidArgument"},
		{"pg-novs", "vSwitch9", 10, "types.NotFound"},
		{"VM Network", "vSwitch0", 10, "types.AlreadyExists"},
		{"Management Network", "vSwitch0", 0, "types.AlreadyExists"},
	} {
		if got := faultKind(t, n.add(tc.name, tc.vswitch, tc.vlan)); got != tc.want {
			t.Errorf("add %q vlan %d on %s: got %s, want %s", tc.name, tc.vlan, tc.vswitch, got, tc.want)
		}
	}
	err := n.add("pg-5000", "vSwitch0", 5000)
	if f, ok := soap.ToSoapFault(err).VimFault().(types.InvalidArgument); ok && f.InvalidProperty != "portgrp.vlanId" {
		t.Errorf("invalidProperty %q, want portgrp.vlanId", f.InvalidProperty)
	}
	if _, ok := n.portgroups()["pg-5000"]; ok {
		t.Error("a refused portgroup was created")
	}
	for _, vlan := range []int32{0, 4094, 4095} {
		name := fmt.Sprintf("pg-%d", vlan)
		if err := n.add(name, "vSwitch0", vlan); err != nil {
			t.Fatalf("add %s: %v", name, err)
		}
		if got := n.portgroups()[name]; got.VlanId != vlan || got.VswitchName != "vSwitch0" {
			t.Errorf("%s: %+v", name, got)
		}
	}
	if !n.hostNetworks()["pg-4095"] {
		t.Error("the new portgroup has no Network object on the host")
	}
	if got := faultKind(t, n.add("pg-4095", "vSwitch0", 7)); got != "types.AlreadyExists" {
		t.Errorf("second add: %s", got)
	}
}

func TestUpdatePortGroup(t *testing.T) {
	n := startNetTest(t)
	if err := n.add("web", "vSwitch0", 10); err != nil {
		t.Fatal(err)
	}
	spec := types.HostPortGroupSpec{Name: "web", VlanId: 20, VswitchName: "vSwitch0"}
	if err := n.update("web", spec); err != nil {
		t.Fatal(err)
	}
	if got := n.portgroups()["web"].VlanId; got != 20 {
		t.Errorf("vlan %d after the update, want 20", got)
	}
	for _, tc := range []struct {
		pg   string
		spec types.HostPortGroupSpec
		want string
	}{
		{"nope", spec, "types.NotFound"},
		{"web", types.HostPortGroupSpec{Name: "web", VlanId: 4096, VswitchName: "vSwitch0"}, "types.InvalidArgument"},
		{"web", types.HostPortGroupSpec{Name: "web", VlanId: -5, VswitchName: "vSwitch0"}, "types.InvalidArgument"},
		{"web", types.HostPortGroupSpec{Name: "web", VlanId: 1, VswitchName: "vSwitch7"}, "types.NotFound"},
		{"web", types.HostPortGroupSpec{Name: "VM Network", VlanId: 1, VswitchName: "vSwitch0"}, "types.AlreadyExists"},
		// VM Network is used by the powered-on VMs: it cannot be renamed.
		{"VM Network", types.HostPortGroupSpec{Name: "VMs", VlanId: 0, VswitchName: "vSwitch0"}, "types.ResourceInUse"},
	} {
		if got := faultKind(t, n.update(tc.pg, tc.spec)); got != tc.want {
			t.Errorf("update %q to %+v: got %s, want %s", tc.pg, tc.spec, got, tc.want)
		}
	}
	if got := n.portgroups()["web"].VlanId; got != 20 {
		t.Errorf("a refused update changed the VLAN to %d", got)
	}
	// A second vSwitch: the portgroup moves.
	if _, err := methods.AddVirtualSwitch(context.Background(), n.c, &types.AddVirtualSwitch{This: n.sys, VswitchName: "vSwitch1"}); err != nil {
		t.Fatal(err)
	}
	if err := n.update("web", types.HostPortGroupSpec{Name: "web", VlanId: 4095, VswitchName: "vSwitch1"}); err != nil {
		t.Fatal(err)
	}
	if got := n.portgroups()["web"]; got.VswitchName != "vSwitch1" || got.VlanId != 4095 {
		t.Errorf("after the move: %+v", got)
	}
	// A rename of an unused portgroup renames its network.
	if err := n.update("web", types.HostPortGroupSpec{Name: "web2", VlanId: 4095, VswitchName: "vSwitch1"}); err != nil {
		t.Fatal(err)
	}
	nets := n.hostNetworks()
	if !nets["web2"] || nets["web"] {
		t.Errorf("networks after the rename: %v", nets)
	}
}

func TestRemovePortGroup(t *testing.T) {
	n := startNetTest(t)
	if err := n.add("spare", "vSwitch0", 30); err != nil {
		t.Fatal(err)
	}
	for pg, want := range map[string]string{
		"nope":               "types.NotFound",
		"VM Network":         "types.ResourceInUse", // the generated VMs are on
		"Management Network": "types.ResourceInUse", // vmk0
	} {
		if got := faultKind(t, n.remove(pg)); got != want {
			t.Errorf("remove %q: got %s, want %s", pg, got, want)
		}
	}
	if err := n.remove("spare"); err != nil {
		t.Fatal(err)
	}
	if _, ok := n.portgroups()["spare"]; ok {
		t.Error("spare is still there")
	}
	if n.hostNetworks()["spare"] {
		t.Error("spare's network is still on the host")
	}
	if got := faultKind(t, n.remove("spare")); got != "types.NotFound" {
		t.Errorf("second remove: %s", got)
	}
	// Powered off, the VMs hold no port: VM Network can go (the VMs keep their backing).
	var vms []mo.VirtualMachine
	ctx := context.Background()
	pc := property.DefaultCollector(n.c)
	var host mo.HostSystem
	if err := pc.RetrieveOne(ctx, n.host, []string{"vm"}, &host); err != nil {
		t.Fatal(err)
	}
	if err := pc.Retrieve(ctx, host.Vm, []string{"name"}, &vms); err != nil {
		t.Fatal(err)
	}
	for _, vm := range vms {
		_, err := methods.PowerOffVM_Task(ctx, n.c, &types.PowerOffVM_Task{This: vm.Self})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := n.remove("VM Network"); err != nil {
		t.Errorf("remove VM Network with the VMs off: %v", err)
	}
}

// A free host refuses the calls like every API write.
func TestPortGroupFreeLicense(t *testing.T) {
	s := startTestSim(t, "free")
	installNetwork()
	c := s.remote("")
	n := &netTest{t: t, c: c, sys: types.ManagedObjectReference{Type: "HostNetworkSystem", Value: "networkSystem"}}
	var hs mo.HostSystem
	if err := property.DefaultCollector(c).RetrieveOne(context.Background(),
		types.ManagedObjectReference{Type: "HostSystem", Value: "ha-host"}, []string{"configManager.networkSystem"}, &hs); err != nil {
		t.Fatal(err)
	}
	n.sys = *hs.ConfigManager.NetworkSystem
	if got := faultKind(t, n.add("x", "vSwitch0", 1)); got != "types.RestrictedVersion" {
		t.Errorf("free host: %s", got)
	}
}

func TestDVPortgroupVlanCheck(t *testing.T) {
	id := func(v int32) types.BaseDVPortSetting {
		return &types.VMwareDVSPortSetting{Vlan: &types.VmwareDistributedVirtualSwitchVlanIdSpec{VlanId: v}}
	}
	trunk := func(a, b int32) types.BaseDVPortSetting {
		return &types.VMwareDVSPortSetting{Vlan: &types.VmwareDistributedVirtualSwitchTrunkVlanSpec{
			VlanId: []types.NumericRange{{Start: a, End: b}}}}
	}
	for _, ok := range []types.BaseDVPortSetting{nil, id(0), id(4094), trunk(0, 4094), trunk(10, 10)} {
		if f := dvVlanFault(ok); f != nil {
			t.Errorf("%+v refused: %s", ok, f.msg)
		}
	}
	for _, bad := range []types.BaseDVPortSetting{id(4095), id(5000), id(-1), trunk(0, 4095), trunk(20, 10), trunk(-1, 3)} {
		if f := dvVlanFault(bad); f == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
