package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// The passthrough system as ESXi has it: capable devices change, others are refused,
// and a change is active only after a reboot unless applied now.
func TestUpdatePassthruConfig(t *testing.T) {
	s := startTestSim(t, "eval")
	installPCI(true)
	ctx := context.Background()
	c := s.remote("")
	var host mo.HostSystem
	hostRef := types.ManagedObjectReference{Type: "HostSystem", Value: "ha-host"}
	pc := property.DefaultCollector(c)
	if err := pc.RetrieveOne(ctx, hostRef, []string{"configManager.pciPassthruSystem"}, &host); err != nil {
		t.Fatal(err)
	}
	sys := *host.ConfigManager.PciPassthruSystem
	update := func(id string, enabled bool, now *bool) error {
		_, err := methods.UpdatePassthruConfig(ctx, c, &types.UpdatePassthruConfig{This: sys,
			Config: []types.BaseHostPciPassthruConfig{&types.HostPciPassthruConfig{Id: id, PassthruEnabled: enabled, ApplyNow: now}}})
		return err
	}
	for id, want := range map[string]string{"0000:99:00.0": "InvalidArgument", "0000:00:00.0": "HostConfigFault"} {
		err := update(id, true, nil)
		if err == nil || !soap.IsSoapFault(err) {
			t.Fatalf("%s: want fault %s, got %v", id, want, err)
		}
		if got := fmt.Sprintf("%T", soap.ToSoapFault(err).VimFault()); got != "types."+want {
			t.Errorf("%s: want %s, got %s (%v)", id, want, got, err)
		}
	}
	info := func(id string) *types.HostPciPassthruInfo {
		var h mo.HostSystem
		if err := pc.RetrieveOne(ctx, hostRef, []string{"config.pciPassthruInfo"}, &h); err != nil {
			t.Fatal(err)
		}
		for _, i := range h.Config.PciPassthruInfo {
			if i.GetHostPciPassthruInfo().Id == id {
				return i.GetHostPciPassthruInfo()
			}
		}
		t.Fatalf("no passthrough info for %s", id)
		return nil
	}
	if err := update("0000:18:00.0", true, nil); err != nil {
		t.Fatal(err)
	}
	if i := info("0000:18:00.0"); !i.PassthruEnabled || i.PassthruActive {
		t.Errorf("after enable: %+v, want enabled, not active before a reboot", i)
	}
	if n := rebootHosts(); n != 1 {
		t.Errorf("reboot activated %d devices, want 1", n)
	}
	if i := info("0000:18:00.0"); !i.PassthruActive {
		t.Errorf("after the reboot: %+v, want active", i)
	}
	if err := update("0000:18:00.0", false, types.NewBool(true)); err != nil {
		t.Fatal(err)
	}
	if i := info("0000:18:00.0"); i.PassthruEnabled || i.PassthruActive {
		t.Errorf("after disable with applyNow: %+v, want neither", i)
	}

	// QueryConfigTarget offers the active devices with this host's systemId.
	var cr mo.ComputeResource
	if err := pc.RetrieveOne(ctx, types.ManagedObjectReference{Type: "ComputeResource", Value: "ha-compute-res"},
		[]string{"environmentBrowser"}, &cr); err != nil {
		t.Fatal(err)
	}
	res, err := methods.QueryConfigTarget(ctx, c, &types.QueryConfigTarget{This: *cr.EnvironmentBrowser})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range res.Returnval.PciPassthrough {
		pt := p.(*types.VirtualMachinePciPassthroughInfo)
		ids = append(ids, pt.PciDevice.Id)
		if pt.SystemId != systemIDFor(hostRef) {
			t.Errorf("systemId %q, want the host's", pt.SystemId)
		}
	}
	if strings.Join(ids, ",") != "0000:3b:00.0,0000:af:00.0,0000:af:00.1" {
		t.Errorf("pciPassthrough = %v", ids)
	}
	if len(res.Returnval.DynamicPassthrough) != 3 {
		t.Errorf("dynamicPassthrough = %+v, want one per vendor:device", res.Returnval.DynamicPassthrough)
	}
}

func TestPCIAddressParts(t *testing.T) {
	if b, s, f := parsePCIAddress("0000:af:1f.7"); b != 0xaf || s != 0x1f || f != 7 {
		t.Errorf("got %x %x %d", b, s, f)
	}
	if systemIDFor(types.ManagedObjectReference{Value: "host-1"}) == systemIDFor(types.ManagedObjectReference{Value: "host-2"}) {
		t.Error("two hosts share a systemId")
	}
}
