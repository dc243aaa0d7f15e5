package main

// The esxcli commands that change a free host's passthrough and portgroups
// (ceso-pci and ceso-net over SSH): like the real ones, local clients of hostd, so
// they act through the same API the simulator serves (UpdatePassthruConfig,
// AddPortGroup, UpdatePortGroup, RemovePortGroup), with its checks. Argument errors,
// unknown devices and portgroups fail with "Error: …" on stderr and exit status 1.
//
//   esxcli hardware pci pcipassthru list
//   esxcli hardware pci pcipassthru set -d|--device-id ADDR -e|--enable BOOL [-a|--apply-now]
//   esxcli network vswitch standard portgroup list
//   esxcli network vswitch standard portgroup add -p|--portgroup-name PG -v|--vswitch-name VS
//   esxcli network vswitch standard portgroup set -p|--portgroup-name PG -v|--vlan-id N
//   esxcli network vswitch standard portgroup remove -p|--portgroup-name PG -v|--vswitch-name VS

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

var esxcliCommands = map[string]func(*shimHost, []string) int{
	"hardware pci pcipassthru list":             (*shimHost).passthruList,
	"hardware pci pcipassthru set":              (*shimHost).passthruSet,
	"network vswitch standard portgroup list":   (*shimHost).portgroupList,
	"network vswitch standard portgroup add":    (*shimHost).portgroupAdd,
	"network vswitch standard portgroup set":    (*shimHost).portgroupSet,
	"network vswitch standard portgroup remove": (*shimHost).portgroupRemove,
}

// esxcliOpt is one option of a command: its short and long names, and whether it is a
// flag (takes no value).
type esxcliOpt struct {
	short, long string
	flag        bool
	required    bool
}

// parseEsxcliOpts reads options as esxcli does: -x VALUE, --long=VALUE, --long VALUE;
// a flag stands alone. Unknown options, missing values and missing required options
// are errors (message returned; "" when fine).
func parseEsxcliOpts(args []string, opts []esxcliOpt) (map[string]string, string) {
	got := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		var o *esxcliOpt
		name, value, hasValue := a, "", false
		if strings.HasPrefix(a, "--") {
			if eq := strings.IndexByte(a, '='); eq >= 0 {
				name, value, hasValue = a[:eq], a[eq+1:], true
			}
		}
		for j := range opts {
			if name == "-"+opts[j].short || name == "--"+opts[j].long {
				o = &opts[j]
			}
		}
		if o == nil {
			return nil, fmt.Sprintf("Invalid option %s", a)
		}
		if o.flag {
			if hasValue {
				return nil, fmt.Sprintf("Option --%s takes no value", o.long)
			}
			got[o.long] = "true"
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, fmt.Sprintf("Missing value for option -%s|--%s", o.short, o.long)
			}
			i++
			value = args[i]
		}
		got[o.long] = value
	}
	for _, o := range opts {
		if _, ok := got[o.long]; o.required && !ok {
			return nil, fmt.Sprintf("Missing required parameter -%s|--%s", o.short, o.long)
		}
	}
	return got, ""
}

// esxcliBool reads a boolean parameter the way esxcli accepts them.
func esxcliBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true", "1", "yes", "y":
		return true, true
	case "false", "0", "no", "n":
		return false, true
	}
	return false, false
}

// theHost is the one host a local client runs on, with its config managers.
func (h *shimHost) theHost(props ...string) (*mo.HostSystem, error) {
	var hosts []mo.HostSystem
	inv := &inventory{client: h.c}
	if err := inv.retrieveAll(h.ctx, "HostSystem", append([]string{"configManager"}, props...), &hosts); err != nil {
		return nil, err
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("no host")
	}
	return &hosts[0], nil
}

func (h *shimHost) passthruList(args []string) int {
	if _, msg := parseEsxcliOpts(args, nil); msg != "" {
		return h.toolError("Error: %s", msg)
	}
	host, err := h.theHost("config.pciPassthruInfo")
	if err != nil || host.Config == nil {
		return h.toolError("Error: cannot read the host's passthrough configuration")
	}
	fmt.Fprintf(h.out, "Device ID     Enabled\n------------  -------\n")
	for _, p := range host.Config.PciPassthruInfo {
		i := p.GetHostPciPassthruInfo()
		if !i.PassthruCapable {
			continue
		}
		fmt.Fprintf(h.out, "%-12s  %7t\n", i.Id, i.PassthruEnabled)
	}
	return 0
}

func (h *shimHost) passthruSet(args []string) int {
	opt, msg := parseEsxcliOpts(args, []esxcliOpt{
		{short: "d", long: "device-id", required: true},
		{short: "e", long: "enable", required: true},
		{short: "a", long: "apply-now", flag: true},
	})
	if msg != "" {
		return h.toolError("Error: %s", msg)
	}
	enable, ok := esxcliBool(opt["enable"])
	if !ok {
		return h.toolError("Error: Invalid data constraint for parameter 'enable'. Expected a boolean value, got '%s'.", opt["enable"])
	}
	host, err := h.theHost("config.pciPassthruInfo")
	if err != nil || host.ConfigManager.PciPassthruSystem == nil || host.Config == nil {
		return h.toolError("Error: cannot read the host's passthrough configuration")
	}
	id := opt["device-id"]
	known := false
	for _, p := range host.Config.PciPassthruInfo {
		known = known || p.GetHostPciPassthruInfo().Id == id
	}
	if !known {
		return h.toolError("Error: Unable to find a PCI device with address %s", id)
	}
	cfg := &types.HostPciPassthruConfig{Id: id, PassthruEnabled: enable}
	if opt["apply-now"] != "" {
		cfg.ApplyNow = types.NewBool(true)
	}
	_, err = methods.UpdatePassthruConfig(h.ctx, h.c, &types.UpdatePassthruConfig{
		This: *host.ConfigManager.PciPassthruSystem, Config: []types.BaseHostPciPassthruConfig{cfg}})
	if err != nil {
		_, m := faultOf(err)
		return h.toolError("Error: %s", m)
	}
	return 0
}

// networkSystem is the host's HostNetworkSystem with its current portgroups.
func (h *shimHost) networkSystem() (*object.HostNetworkSystem, *mo.HostNetworkSystem, error) {
	host, err := h.theHost()
	if err != nil || host.ConfigManager.NetworkSystem == nil {
		return nil, nil, fmt.Errorf("cannot read the host's network configuration")
	}
	ns := object.NewHostNetworkSystem(h.c, *host.ConfigManager.NetworkSystem)
	var m mo.HostNetworkSystem
	if err := ns.Properties(h.ctx, ns.Reference(), []string{"networkInfo"}, &m); err != nil || m.NetworkInfo == nil {
		return nil, nil, fmt.Errorf("cannot read the host's network configuration")
	}
	return ns, &m, nil
}

func (h *shimHost) portgroupList(args []string) int {
	if _, msg := parseEsxcliOpts(args, nil); msg != "" {
		return h.toolError("Error: %s", msg)
	}
	_, m, err := h.networkSystem()
	if err != nil {
		return h.toolError("Error: %v", err)
	}
	fmt.Fprintf(h.out, "Name                    Virtual Switch  Active Clients  VLAN ID\n")
	fmt.Fprintf(h.out, "----------------------  --------------  --------------  -------\n")
	for _, pg := range m.NetworkInfo.Portgroup {
		fmt.Fprintf(h.out, "%-22s  %-14s  %14d  %7d\n", pg.Spec.Name, pg.Spec.VswitchName, len(pg.Port), pg.Spec.VlanId)
	}
	return 0
}

func (h *shimHost) portgroupAdd(args []string) int {
	opt, msg := parseEsxcliOpts(args, []esxcliOpt{
		{short: "p", long: "portgroup-name", required: true},
		{short: "v", long: "vswitch-name", required: true},
	})
	if msg != "" {
		return h.toolError("Error: %s", msg)
	}
	ns, _, err := h.networkSystem()
	if err != nil {
		return h.toolError("Error: %v", err)
	}
	err = ns.AddPortGroup(h.ctx, types.HostPortGroupSpec{Name: opt["portgroup-name"],
		VswitchName: opt["vswitch-name"], Policy: types.HostNetworkPolicy{}})
	return h.portgroupResult(err, opt["portgroup-name"], opt["vswitch-name"])
}

func (h *shimHost) portgroupSet(args []string) int {
	opt, msg := parseEsxcliOpts(args, []esxcliOpt{
		{short: "p", long: "portgroup-name", required: true},
		{short: "v", long: "vlan-id"},
	})
	if msg != "" {
		return h.toolError("Error: %s", msg)
	}
	vlanText, ok := opt["vlan-id"]
	if !ok {
		return h.toolError("Error: Missing required parameter -v|--vlan-id")
	}
	vlan, err := strconv.ParseInt(vlanText, 10, 32)
	if err != nil {
		return h.toolError("Error: Invalid data constraint for parameter 'vlan-id'. Expected an integer, got '%s'.", vlanText)
	}
	ns, m, err := h.networkSystem()
	if err != nil {
		return h.toolError("Error: %v", err)
	}
	name := opt["portgroup-name"]
	for _, pg := range m.NetworkInfo.Portgroup {
		if pg.Spec.Name != name {
			continue
		}
		spec := pg.Spec // the whole spec, policy included: only the VLAN changes
		spec.VlanId = int32(vlan)
		return h.portgroupResult(ns.UpdatePortGroup(h.ctx, name, spec), name, spec.VswitchName)
	}
	return h.toolError("Error: Unable to find portgroup %s", name)
}

func (h *shimHost) portgroupRemove(args []string) int {
	opt, msg := parseEsxcliOpts(args, []esxcliOpt{
		{short: "p", long: "portgroup-name", required: true},
		{short: "v", long: "vswitch-name", required: true},
	})
	if msg != "" {
		return h.toolError("Error: %s", msg)
	}
	ns, m, err := h.networkSystem()
	if err != nil {
		return h.toolError("Error: %v", err)
	}
	name, vs := opt["portgroup-name"], opt["vswitch-name"]
	for _, pg := range m.NetworkInfo.Portgroup {
		if pg.Spec.Name == name && pg.Spec.VswitchName != vs {
			return h.toolError("Error: Portgroup %s is not on virtual switch %s", name, vs)
		}
	}
	return h.portgroupResult(ns.RemovePortGroup(h.ctx, name), name, vs)
}

// portgroupResult prints a failed portgroup call as esxcli does.
func (h *shimHost) portgroupResult(err error, pg, vs string) int {
	if err == nil {
		return 0
	}
	name, msg := faultOf(err)
	switch name {
	case "AlreadyExists":
		return h.toolError("Error: A portgroup with the name %s already exists", pg)
	case "NotFound":
		if msg == "" || msg == defaultFaultMsg["NotFound"] {
			msg = fmt.Sprintf("Unable to find portgroup %s or virtual switch %s", pg, vs)
		}
	case "ResourceInUse":
		return h.toolError("Error: Sysinfo error: Busy. Unable to remove portgroup %s: it is in use", pg)
	}
	return h.toolError("Error: %s", msg)
}
